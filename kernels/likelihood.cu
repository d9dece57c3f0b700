// The likelihood residual and its output-layer gradient in one pass (SPEC.md section 4 (a)): one
// block per sample computes log p(x|mu) in double with the formulas of include/lpc/pointwise.h (the
// CPU reference's own), writes d log p / d mu, and reduces the sample's log-likelihood and log-sigma
// derivative in a fixed tree; a second one-block kernel adds the per-sample derivatives in order. The
// chain's fused output layer (kernels/conv.c, deconv_likelihood) where its direct kernel does not take
// the likelihood: the gradient times act'(pre) of the output layer, in the same pass.
#include <cuda_runtime.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define LIK_THREADS 1024 /* one block per sample: enough threads that a 64-sample batch fills the GPU */

__global__ void __launch_bounds__(LIK_THREADS)
    likelihood_kernel(float *logp, float *dmu, double *row_dls, const float *x, const float *mu, const float *pre,
                      int act, const float *log_sigma, int dim, int kind) {
    const size_t base = (size_t)blockIdx.x * dim;
    const double ls = (double)*log_sigma, inv_var = lpc_pw_inv_var(ls);
    double lp = 0, dls = 0;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        double dm, dl;
        lp += lpc_pw_likelihood(kind, x[base + j], mu[base + j], ls, inv_var, &dm, &dl);
        dmu[base + j] = pre ? (float)dm * lpc_pw_act_derivative(pre[base + j], act) : (float)dm;
        dls += dl;
    }
    double sums[2] = {lp, dls};
    lpc_block_sums<LIK_THREADS, 2>(sums);
    if (threadIdx.x == 0) logp[blockIdx.x] = (float)sums[0], row_dls[blockIdx.x] = sums[1];
}

__global__ void add_rows_kernel(float *out, const double *rows, int n) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        double s = 0;
        for (int i = 0; i < n; i++) s += rows[i];
        *out += (float)s;
    }
}

/* the likelihood kernel over n samples; returns its per-sample log-sigma derivatives (in the workspace) */
static const double *launch_likelihood(float *logp, float *dmu, const float *x, const float *mu, const float *pre,
                                       int act, const float *log_sigma, int n, int dim, int kind) {
    double *rows = (double *)lpc_cuda_workspace((size_t)n * sizeof(double));
    likelihood_kernel<<<n, LIK_THREADS, 0, STREAM>>>(logp, dmu, rows, x, mu, act == LPC_ACT_NONE ? NULL : pre, act,
                                                     log_sigma, dim, kind);
    return rows;
}

extern "C" void lpc_cuda_likelihood_act(float *logp, float *dpre, const float *x, const float *mu, const float *pre,
                                        int act, const float *log_sigma, int n, int dim, int kind) {
    launch_likelihood(logp, dpre, x, mu, pre, act, log_sigma, n, dim, kind);
}

extern "C" void lpc_cuda_likelihood(float *logp, float *dmu, float *dlog_sigma, const float *x, const float *mu,
                                    const float *log_sigma, int n, int dim, int kind) {
    const double *rows = launch_likelihood(logp, dmu, x, mu, NULL, LPC_ACT_NONE, log_sigma, n, dim, kind);
    if (dlog_sigma) add_rows_kernel<<<1, 1, 0, STREAM>>>(dlog_sigma, rows, n);
}
