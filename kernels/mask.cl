/* The application's mask (nonzero = masked out) turned into the keep mask (1 = may attend), 16
 * bytes a work-item in one 16-byte load and store: buffers start aligned to at least 16 bytes
 * (CL_DEVICE_MEM_BASE_ADDR_ALIGN); one byte a work-item left most of the memory bandwidth
 * unused. */

/* 1 in each byte of x that is 0, else 0: nonzero_byte_tops (common.cl) on four words at once.
 * Vector operations, not four scalars put together: Oclgrind splits the store of such a vector
 * into a store of the undefined vector it started from and four scalar stores. */
inline uint4 zero_bytes(uint4 x) {
    const uint4 tops = (((x & 0x7f7f7f7fu) + 0x7f7f7f7fu) | x) & 0x80808080u;
    return ~(tops >> 7) & 0x01010101u;
}

__kernel void mask_to_keep(__global const uchar *mask, __global uchar *keep, int count) {
    int i = get_global_id(0) * 16;
    if (i + 16 <= count) {
        *(__global uint4 *)(keep + i) = zero_bytes(*(__global const uint4 *)(mask + i));
    } else {
        for (; i < count; i++)
            keep[i] = mask[i] == 0 ? 1 : 0;
    }
}
