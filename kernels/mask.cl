/* The application's mask (nonzero = masked out) turned into the keep mask (1 = may attend). */
__kernel void mask_to_keep(__global const uchar *mask, __global uchar *keep, int count) {
    int i = get_global_id(0);
    if (i < count) keep[i] = mask[i] == 0 ? 1 : 0;
}
