// Kernel lab (bench/kernel_lab.c): the unfused sequences that lpc's fused kernels replace, one simple
// kernel per operation, the way a framework would run them. Variant 1 of each lab entry.
#include <cuda_runtime.h>
#include <math.h>

#include "cuda_internal.h"

/* on the backend's stream, like the production kernels, so that both are timed alike */
#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define THREADS 256
static unsigned blocks(size_t n) { return (unsigned)((n + THREADS - 1) / THREADS); }

__global__ void k_sub(float *g, const float *a, const float *b, size_t n) {  // g = a - b
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) g[i] = a[i] - b[i];
}
__global__ void k_ema_sq(float *v, const float *g, float beta, size_t n) {  // v = beta v + (1 - beta) g^2
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) v[i] = beta * v[i] + (1.0f - beta) * g[i] * g[i];
}
__global__ void k_precond(float *G, const float *v, float bc, float eps, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) G[i] = 1.0f / (sqrtf(v[i] / bc) + eps);
}
__global__ void k_step(float *z, const float *G, const float *g, const float *xi, float gamma, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) z[i] = z[i] + gamma * G[i] * g[i] + sqrtf(2.0f * gamma * G[i]) * xi[i];
}
// a framework-style reduction: block sums, then atomics
__global__ void k_abs_sum(float *out, const float *x, size_t n, int absolute) {
    __shared__ double s[THREADS];
    double acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        acc += absolute ? fabs((double)x[i]) : (double)x[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int k = THREADS / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(out, (float)s[0]);
}
__global__ void k_adam_m(float *m, const float *g, float b1, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) m[i] = b1 * m[i] + (1.0f - b1) * g[i];
}
__global__ void k_adam_v(float *v, const float *g, float b2, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
}
__global__ void k_adam_p(float *p, const float *m, const float *v, float lr, float c1, float c2, float eps, float wd, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) p[i] -= lr * ((m[i] / c1) / (sqrtf(v[i] / c2) + eps) + wd * p[i]);
}

extern "C" void lab_langevin_unfused(float *z, float *v, float *stats, const float *grad_lik, const float *xi, float *g,
                                     float *G, size_t n, float gamma, float beta, float eps, int t) {
    float bc = (float)(1.0 - pow((double)beta, (double)t));
    k_sub<<<blocks(n), THREADS, 0, STREAM>>>(g, grad_lik, z, n);
    k_ema_sq<<<blocks(n), THREADS, 0, STREAM>>>(v, g, beta, n);
    k_precond<<<blocks(n), THREADS, 0, STREAM>>>(G, v, bc, eps, n);
    k_step<<<blocks(n), THREADS, 0, STREAM>>>(z, G, g, xi, gamma, n);
    unsigned rb = blocks(n) < 1024 ? blocks(n) : 1024;
    k_abs_sum<<<rb, THREADS, 0, STREAM>>>(stats, g, n, 1);
    k_abs_sum<<<rb, THREADS, 0, STREAM>>>(stats + 1, G, n, 0);
}

extern "C" void lab_adam_unfused(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1, float b2,
                                 float eps, float wd, long step) {
    float c1 = (float)(1.0 - pow((double)b1, (double)step)), c2 = (float)(1.0 - pow((double)b2, (double)step));
    k_adam_m<<<blocks(n), THREADS, 0, STREAM>>>(m, g, b1, n);
    k_adam_v<<<blocks(n), THREADS, 0, STREAM>>>(v, g, b2, n);
    k_adam_p<<<blocks(n), THREADS, 0, STREAM>>>(p, m, v, lr, c1, c2, eps, wd, n);
}
