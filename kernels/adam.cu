// Adam(W) over a flat segment of the parameter arena in one kernel (SPEC.md section 3).
#include <cuda_runtime.h>
#include <math.h>

#include "cuda_internal.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

__global__ void adam_kernel(float *param, float *m, float *v, const float *grad, size_t n, float lr, float beta1,
                            float beta2, float eps, float weight_decay, float c1, float c2) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        lpc_pw_adam(&param[i], &m[i], &v[i], grad[i], lr, beta1, beta2, eps, weight_decay, c1, c2);
}

extern "C" void lpc_cuda_adam(float *param, float *m, float *v, const float *grad, size_t n, const struct lpc_adam_params *p) {
    const float c1 = (float)(1.0 - pow((double)p->beta1, (double)p->step));
    const float c2 = (float)(1.0 - pow((double)p->beta2, (double)p->step));
    size_t blocks = (n + LPC_THREADS - 1) / LPC_THREADS;
    if (blocks > 4096) blocks = 4096;
    if (n) adam_kernel<<<(unsigned)blocks, LPC_THREADS, 0, STREAM>>>(param, m, v, grad, n, p->lr, p->beta1, p->beta2, p->eps,
                                                                     p->weight_decay, c1, c2);
}
