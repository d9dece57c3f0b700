/* Parameters in other layouts, kept while the parameters are fixed (lpc_cuda_params_fixed_begin .. _end:
 * the chain's steps, each of which reads every decoder weight twice): the channel-last path's filters
 * (kernels/conv.c) and the dense layer's weights and bias in channel-last feature order
 * (kernels/dense_fused.cu). A copy is made at its first use in a window and reused by the window's
 * later calls. Each has device memory of its own, never freed, since captured graphs keep its address.
 * Outside a window, when all slots are taken, or when a slot would have to be allocated inside a graph
 * capture, the caller makes the copy in its own scratch memory at every call. */
#include <cuda_runtime.h>

#include "cuda_internal.h"
#include "lpc/check.h"

#define MAX_FIXED_COPIES 64

struct fixed_copy {
    const float *src; /* the parameter it is a copy of */
    int form;         /* enum lpc_fixed_form */
    size_t elements;
    float *copy;
    unsigned long window; /* the window it was last made in */
};
static struct fixed_copy copies[MAX_FIXED_COPIES];
static int n_copies;
static unsigned long windows_opened, window; /* window: the current one's number, 0 outside any */

void lpc_cuda_params_fixed_begin(void) { window = ++windows_opened; }
void lpc_cuda_params_fixed_end(void) { window = 0; }

static struct fixed_copy *slot_for(const float *src, int form, size_t elements) {
    for (int i = 0; i < n_copies; i++) {
        struct fixed_copy *f = &copies[i];
        if (f->src == src && f->form == form && f->elements == elements) return f;
    }
    if (n_copies == MAX_FIXED_COPIES || lpc_cuda_capturing()) return NULL;
    struct fixed_copy *f = &copies[n_copies++];
    *f = (struct fixed_copy){src, form, elements, NULL, 0};
    LPC_CHECK_CUDA(cudaMalloc((void **)&f->copy, elements * sizeof(float)));
    return f;
}

float *lpc_cuda_fixed_copy(const float *src, int form, size_t elements, float *scratch, int *make) {
    struct fixed_copy *f = window ? slot_for(src, form, elements) : NULL;
    *make = !f || f->window != window;
    if (!f) return scratch;
    f->window = window;
    return f->copy;
}
