/* The application's mask (nonzero = masked out) turned into the keep mask (1 = may attend), 16
 * bytes a work-item in one 16-byte load and store: buffers start aligned to at least 16 bytes
 * (CL_DEVICE_MEM_BASE_ADDR_ALIGN); one byte a work-item left most of the memory bandwidth
 * unused. */

/* 1 in each byte of x that is 0, else 0. */
inline uint zero_bytes(uint x) {
    return ~(nonzero_byte_tops(x) >> 7) & 0x01010101u;
}

__kernel void mask_to_keep(__global const uchar *mask, __global uchar *keep, int count) {
    int i = get_global_id(0) * 16;
    if (i + 16 <= count) {
        const uint4 m = *(__global const uint4 *)(mask + i);
        *(__global uint4 *)(keep + i) =
            (uint4)(zero_bytes(m.x), zero_bytes(m.y), zero_bytes(m.z), zero_bytes(m.w));
    } else {
        for (; i < count; i++)
            keep[i] = mask[i] == 0 ? 1 : 0;
    }
}
