/* The device's float32 multiply-add rate as a kernel of our own reaches it through the device's
 * OpenCL compiler: the roof that mhfa-bench --stages' GFLOP/s are read against. */
#ifndef MHFA_TOOLS_FMA_PEAK_H
#define MHFA_TOOLS_FMA_PEAK_H

#include "mhfa.h"

/* GFLOP/s (2 per multiply-add), the best of a few runs; negative on an OpenCL failure. */
double fma_peak_gflops(mhfa_context *ctx);

#endif
