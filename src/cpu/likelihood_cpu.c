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

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

double lpc_gaussian_logp(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma) {
    double inv_var = exp(-2.0 * log_sigma), r = x - mu;
    if (dmu) *dmu = r * inv_var;
    if (dlog_sigma) *dlog_sigma = r * r * inv_var - 1.0;
    return -0.5 * r * r * inv_var - log_sigma - 0.5 * LPC_LOG_2PI;
}

double lpc_erfcx(double u) {
    if (u < 25.0) return exp(u * u) * erfc(u); /* erfc(25) ~ 1e-273: still a normal double */
    /* asymptotic series 1/(u sqrt(pi)) * (1 - 1/(2u^2) + 3/(4u^4) - 15/(8u^6) + 105/(16u^8)),
     * relative error < 1e-13 for u >= 25 */
    double v = 1.0 / (2.0 * u * u);
    return (1.0 - v * (1.0 - 3.0 * v * (1.0 - 5.0 * v * (1.0 - 7.0 * v)))) / (u * 1.7724538509055160273);
}

/* Probability of [a, b] (standardised, a < b, either may be infinite) as P, with the two terms
 * phi(a)/P and phi(b)/P computed without overflow; assumes a + b >= 0 (the bin lies right of the
 * mode or straddles it). */
static double bin_log_prob_right(double a, double b, double *phi_a_over_p, double *phi_b_over_p) {
    if (a >= 0.0) {
        /* P = Q(a) - Q(b), Q(u) = 0.5 erfcx(u/sqrt2) exp(-u^2/2); factor out exp(-a^2/2) */
        double ratio = isinf(b) ? 0.0 : exp(-0.5 * (b - a) * (b + a));
        double qa = 0.5 * lpc_erfcx(a * INV_SQRT2);
        double qb = isinf(b) ? 0.0 : 0.5 * lpc_erfcx(b * INV_SQRT2);
        double scaled = qa - qb * ratio; /* P * exp(a^2/2) */
        *phi_a_over_p = INV_SQRT_2PI / scaled;
        *phi_b_over_p = INV_SQRT_2PI * ratio / scaled;
        return -0.5 * a * a + log(scaled);
    }
    /* a < 0 <= b: both halves are large, no cancellation */
    double p = 0.5 * ((isinf(b) ? 1.0 : erf(b * INV_SQRT2)) - (isinf(a) ? -1.0 : erf(a * INV_SQRT2)));
    *phi_a_over_p = isinf(a) ? 0.0 : INV_SQRT_2PI * exp(-0.5 * a * a) / p;
    *phi_b_over_p = isinf(b) ? 0.0 : INV_SQRT_2PI * exp(-0.5 * b * b) / p;
    return log(p);
}

double lpc_discretized_gaussian_logp(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma) {
    double inv_sigma = exp(-log_sigma);
    double a = x <= -1.0 + LPC_BIN_HALF_WIDTH ? -INFINITY : (x - LPC_BIN_HALF_WIDTH - mu) * inv_sigma;
    double b = x >= 1.0 - LPC_BIN_HALF_WIDTH ? INFINITY : (x + LPC_BIN_HALF_WIDTH - mu) * inv_sigma;
    int reflect = a + b < 0.0; /* mirror so that the bin lies right of the mode */
    double lo = reflect ? -b : a, hi = reflect ? -a : b;
    double pa, pb;
    double logp = bin_log_prob_right(lo, hi, &pa, &pb);
    /* d log P / d mu = (phi(a) - phi(b)) / (sigma P); d log P / d log sigma = (a phi(a) - b phi(b)) / P */
    double d_mu = (pa - pb) * inv_sigma;
    if (dmu) *dmu = reflect ? -d_mu : d_mu;
    if (dlog_sigma) *dlog_sigma = (isinf(lo) ? 0.0 : lo * pa) - (isinf(hi) ? 0.0 : hi * pb);
    return logp;
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
    const double ls = (double)*log_sigma;
#pragma omp parallel for schedule(static) if ((long)n * dim > 65536)
    for (int i = 0; i < n; i++) {
        double sum = 0, dls = 0;
        for (int j = 0; j < dim; j++) {
            size_t k = (size_t)i * dim + j;
            double dm, dl;
            sum += kind == LPC_LIK_DISCRETIZED_GAUSSIAN ? lpc_discretized_gaussian_logp(x[k], mu[k], ls, &dm, &dl)
                                                        : lpc_gaussian_logp(x[k], mu[k], ls, &dm, &dl);
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
