/* Checking a mask's shape against the forward and describing it as the kernels read it. */
#include "internal.h"

#include <string.h>

mhfa_status mhfa_mask_layout_make(const mhfa_context *ctx, int ndim, const int *dims, int batch,
                                  int n_heads, int n_query, int graph_size,
                                  mhfa_mask_layout *layout) {
    memset(layout, 0, sizeof *layout);
    if (ndim < 2 || ndim > 4)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_SHAPE, "mask ndim is %d; it must be 2, 3 or 4",
                         ndim);
    /* Where each given dimension goes in [batch][n_heads][n_query][graph_size]. */
    static const int place[5][4] = {{0}, {0}, {0, 3}, {0, 2, 3}, {0, 1, 2, 3}};
    const int full[4] = {batch, n_heads, n_query, graph_size};
    static const char *const names[4] = {"batch", "n_heads", "n_query", "graph_size"};
    for (int i = 0; i < 4; i++)
        layout->keep_dims[i] = 1;
    layout->ndim = ndim;
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        int axis = place[ndim][i];
        if (dims[i] != full[axis] && dims[i] != 1)
            return mhfa_fail(ctx, MHFA_ERROR_INVALID_SHAPE,
                             "mask dimension %d is %d; it must be %s (%d) or 1", i, dims[i],
                             names[axis], full[axis]);
        layout->dims[i] = dims[i];
        layout->keep_dims[axis] = dims[i];
        count *= (size_t)dims[i];
    }
    if (count > (size_t)INT32_MAX)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_SHAPE, "the mask has too many elements");
    layout->count = count;
    int stride = 1;
    for (int axis = 3; axis >= 0; axis--) {
        layout->strides[axis] = layout->keep_dims[axis] == 1 ? 0 : stride;
        stride *= layout->keep_dims[axis];
    }
    return MHFA_SUCCESS;
}
