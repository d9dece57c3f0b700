// The likelihood residual and its output-layer gradient in one pass (SPEC.md section 4 (a)): one
// block per sample computes log p(x|mu) in double with the formulas of include/lpc/pointwise.h (the
// CPU reference's own), writes d log p / d mu, and reduces the sample's log-likelihood and log-sigma
// derivative in a fixed tree; a second one-block kernel adds the per-sample derivatives in order.
#include <cuda_runtime.h>

#include "block_reduce.cuh"
#include "cuda_internal.h"
#include "lpc/check.h"
#include "lpc/config.h"
#include "lpc/pointwise.h"

#define STREAM ((cudaStream_t)lpc_cuda.stream)

#define LIK_THREADS 1024 /* one block per sample: enough threads that a 64-sample batch fills the GPU */

__global__ void __launch_bounds__(LIK_THREADS) likelihood_kernel(float *logp, float *dmu, double *row_dls, const float *x, const float *mu,
                                  const float *log_sigma, int dim, int kind) {
    const size_t base = (size_t)blockIdx.x * dim;
    const double ls = (double)*log_sigma;
    double lp = 0, dls = 0;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        double dm, dl;
        lp += kind == LPC_LIK_DISCRETIZED_GAUSSIAN ? lpc_pw_discretized(x[base + j], mu[base + j], ls, &dm, &dl)
                                                   : lpc_pw_gaussian(x[base + j], mu[base + j], ls, &dm, &dl);
        dmu[base + j] = (float)dm;
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

extern "C" void lpc_cuda_likelihood(float *logp, float *dmu, float *dlog_sigma, const float *x, const float *mu,
                                    const float *log_sigma, int n, int dim, int kind) {
    double *rows = (double *)lpc_cuda_workspace((size_t)n * sizeof(double)); /* per-row log-sigma derivatives */
    likelihood_kernel<<<n, LIK_THREADS, 0, STREAM>>>(logp, dmu, rows, x, mu, log_sigma, dim, kind);
    if (dlog_sigma) add_rows_kernel<<<1, 1, 0, STREAM>>>(dlog_sigma, rows, n);
}
