/* Likelihoods of SPEC.md section 1 on the CPU: Gaussian with fixed or learned sigma, and the 256-bin
 * discretized Gaussian of Ho et al. (2020), computed stably in log space (tails through the scaled
 * complementary error function), with gradients w.r.t. the mean and log sigma. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "cpu_internal.h"
#include "lpc/config.h"
#include "lpc/likelihood.h"
#include "lpc/pointwise.h"

double lpc_gaussian_logp(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma) {
    double a, b;
    double r = lpc_pw_gaussian(x, mu, log_sigma, &a, &b);
    if (dmu) *dmu = a;
    if (dlog_sigma) *dlog_sigma = b;
    return r;
}

double lpc_discretized_gaussian_logp(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma) {
    double a, b;
    double r = lpc_pw_discretized(x, mu, log_sigma, &a, &b);
    if (dmu) *dmu = a;
    if (dlog_sigma) *dlog_sigma = b;
    return r;
}

void lpc_likelihood_cpu(float *logp, float *dmu, float *dlog_sigma, const float *x, const float *mu,
                        const float *log_sigma, int n, int dim, int kind) {
    static double *row_dls; /* per-sample sums, added in order afterwards: deterministic */
    static int row_dls_len;
    if (row_dls_len < n) {
        free(row_dls);
        row_dls = lpc_xmalloc((size_t)n * sizeof(double));
        row_dls_len = n;
    }
    const double ls = (double)*log_sigma, inv_var = lpc_pw_inv_var(ls);
#pragma omp parallel for schedule(static) if ((long)n * dim > 65536)
    for (int i = 0; i < n; i++) {
        double sum = 0, dls = 0;
        for (int j = 0; j < dim; j++) {
            size_t k = (size_t)i * dim + j;
            double dm, dl;
            sum += lpc_pw_likelihood(kind, x[k], mu[k], ls, inv_var, &dm, &dl);
            dmu[k] = (float)dm;
            dls += dl;
        }
        logp[i] = (float)sum;
        row_dls[i] = dls;
    }
    if (dlog_sigma) {
        double total = 0;
        for (int i = 0; i < n; i++) total += row_dls[i];
        *dlog_sigma += (float)total;
    }
}
