// The Langevin update in one kernel (SPEC.md section 4 (b)): prior gradient, second-moment
// preconditioner with bias correction, sqrt(2 gamma G) noise, the step, the sums over the kept states
// and the chain statistics (block partials in double, reduced in a fixed order by the last block to
// finish: deterministic, one launch).
// Also the encoder head's sampling and objective gradients (SPEC.md 2.1 step 4, 2.2).
#include <cuda_runtime.h>
#include <math.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

__global__ void langevin_kernel(float *z, float *v, double *partials, unsigned *done, float *stats, float *zsum, float *zsq,
                                const float *grad_lik,
                                const float *xi, size_t n, float step_size, float beta, float eps, float bias_correction,
                                int precond, int noise, int accumulate) {
    double acc_g = 0, acc_G = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g_abs, G;
        float vi = precond ? v[i] : 0.0f;
        float zn = lpc_pw_langevin(z[i], &vi, grad_lik[i], noise ? xi[i] : 0.0f, step_size, beta, eps, bias_correction,
                                   precond, noise, &g_abs, &G);
        if (precond) v[i] = vi;
        z[i] = zn;
        if (accumulate) zsum[i] += zn, zsq[i] += zn * zn;
        acc_g += g_abs, acc_G += G;
    }
    double sums[2] = {acc_g, acc_G};
    lpc_block_sums<LPC_THREADS, 2>(sums);
    /* the last block to finish adds the partials in block order: deterministic, and no second launch */
    if (threadIdx.x == 0) partials[2 * blockIdx.x] = sums[0], partials[2 * blockIdx.x + 1] = sums[1];
    if (lpc_last_to_arrive(done, gridDim.x)) { /* the whole last block reduces the partials, in a fixed order */
        const volatile double *p = partials;
        double total[2] = {0, 0};
        for (unsigned b = threadIdx.x; b < gridDim.x; b += blockDim.x) total[0] += p[2 * b], total[1] += p[2 * b + 1];
        lpc_block_sums<LPC_THREADS, 2>(total);
        if (threadIdx.x == 0) {
            stats[0] += (float)total[0];
            stats[1] += (float)total[1];
        }
    }
}

__global__ void encoder_sample_kernel(float *z, const float *head, const float *eps, int n, int d) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n * d) return;
    int i = k / d, j = k % d;
    float m = head[(size_t)i * 2 * d + j], lv = head[(size_t)i * 2 * d + d + j];
    lv = lv < LPC_LOGVAR_MIN ? LPC_LOGVAR_MIN : lv > LPC_LOGVAR_MAX ? LPC_LOGVAR_MAX : lv;
    z[k] = eps ? m + expf(0.5f * lv) * eps[k] : m;
}

// one block per sample; the latent coordinates are strided over the threads
__global__ void encoder_head_kernel(float *d_head, float *terms, const float *head, const float *eps,
                                    const float *grad_lik, const float *z0, const float *zsum, const float *zsq,
                                    float n_states, int n, int d, float w_fwd, float w_rev, float w_vae, float scale) {
    const int i = blockIdx.x;
    double fwd = 0, logq = 0, kl = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        size_t k = (size_t)i * d + j, hm = (size_t)i * 2 * d + j, hv = hm + (size_t)d;
        lpc_pw_head(head[hm], head[hv], eps != NULL, eps ? eps[k] : 0.0, eps ? grad_lik[k] : 0.0, eps ? z0[k] : 0.0,
                    zsum != NULL, zsum ? zsum[k] : 0.0, zsq ? zsq[k] : 0.0, n_states, w_fwd, w_rev, w_vae, scale,
                    &d_head[hm], &d_head[hv], &fwd, &logq, &kl);
    }
    double sums[3] = {fwd, logq, kl};
    lpc_block_sums<LPC_THREADS, 3>(sums);
    if (threadIdx.x == 0) terms[i] = (float)sums[0], terms[n + i] = (float)sums[1], terms[2 * n + i] = (float)sums[2];
}

extern "C" {
void lpc_cuda_langevin_update(float *z, float *v, float *stats, float *zsum, float *zsq, const float *grad_lik,
                              const float *xi, size_t n, const struct lpc_langevin_params *p) {
    const float bias_correction = (float)(1.0 - pow((double)p->beta, (double)p->t));
    size_t want = (n + LPC_THREADS - 1) / LPC_THREADS;
    /* one element per thread up to LPC_UPDATE_MAX_BLOCKS blocks: the grid depends on n only */
    int blocks = (int)(want < 1 ? 1 : want > LPC_UPDATE_MAX_BLOCKS ? LPC_UPDATE_MAX_BLOCKS : want);
    langevin_kernel<<<blocks, LPC_THREADS, 0, STREAM>>>(z, v, lpc_cuda.partials, lpc_cuda.done, stats, zsum, zsq, grad_lik,
                                                        xi, n, p->step_size, p->beta, p->eps, bias_correction, p->precond,
                                                        p->noise, p->accumulate);
}

void lpc_cuda_encoder_sample(float *z, const float *head, const float *eps, int n, int d) {
    int total = n * d;
    encoder_sample_kernel<<<(total + LPC_THREADS - 1) / LPC_THREADS, LPC_THREADS, 0, STREAM>>>(z, head, eps, n, d);
}

void lpc_cuda_encoder_head_backward(float *d_head, float *terms, const float *head, const float *eps,
                                    const float *grad_lik, const float *z0, const float *zsum, const float *zsq,
                                    float n_states, int n, int d, float w_fwd, float w_rev, float w_vae, float scale) {
    encoder_head_kernel<<<n, LPC_THREADS, 0, STREAM>>>(d_head, terms, head, eps, grad_lik, z0, zsum, zsq, n_states, n, d,
                                                       w_fwd, w_rev, w_vae, scale);
}
}
