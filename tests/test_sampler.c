/* Exactness of the Langevin chain driver (DESIGN.md, testing strategy 2) on targets with known
 * answers, plugged in through the lpc_target interface:
 *  (a) a scalar Gaussian N(m, 1/lambda): the unpreconditioned Euler chain's stationary variance is
 *      exactly 2 / (lambda (2 - gamma lambda)), not 1/lambda;
 *  (b) a linear-Gaussian latent model x = W z + N(0, s^2 I) with z ~ N(0, I): posterior precision
 *      L = I + W^T W / s^2, mean L^-1 W^T x / s^2; the chain's stationary mean is exactly that mean and
 *      its covariance exactly 2 (L (2I - gamma L))^-1, which approaches L^-1 as gamma -> 0;
 *  (c) with noise = false the chain converges to the posterior mode.
 * Each of n = 8192 independent chains gives one sample at the end of a chain many mixing times long,
 * so the estimates' standard errors are known: sd/sqrt(n) for means, var sqrt(2/n) for variances. */
#include <string.h>

#include "lpc/langevin.h"
#include "testutil.h"

#define N_CHAINS 8192

/* grad_lik = A (b - z) per chain, with A = W^T W / s^2 (d x d) and b = the point where the likelihood
 * peaks, written as a general linear score so the scalar case is d = 1. */
struct linear_target {
    int d;
    double A[4], Ab[2]; /* A and A b */
};

static void linear_score(void *ctx, float *grad_lik, float *logp, const float *z, int n, int param_grads) {
    const struct linear_target *t = ctx;
    (void)param_grads;
    for (int i = 0; i < n; i++) {
        for (int r = 0; r < t->d; r++) {
            double g = t->Ab[r];
            for (int c = 0; c < t->d; c++) g -= t->A[r * t->d + c] * z[i * t->d + c];
            grad_lik[i * t->d + r] = (float)g;
        }
        logp[i] = 0.0f;
    }
}

static void run_chain(struct lpc_target *tg, int d, struct lpc_chain_params *p, uint64_t seed, float *out) {
    struct lpc_chain c;
    const struct lpc_backend *be = lpc_backend_cpu();
    lpc_chain_create(&c, be, N_CHAINS, d, p->steps);
    memset(c.z, 0, sizeof(float) * N_CHAINS * d);
    struct lpc_rng rng;
    lpc_rng_init(&rng, seed, 0);
    lpc_chain_run(&c, tg, p, &rng, N_CHAINS, 0, 0);
    memcpy(out, c.z, sizeof(float) * N_CHAINS * d);
    lpc_rng_destroy(&rng);
    lpc_chain_destroy(&c);
}

static void moments(const float *z, int d, double *mean, double *cov) {
    memset(mean, 0, sizeof(double) * d);
    memset(cov, 0, sizeof(double) * d * d);
    for (int i = 0; i < N_CHAINS; i++)
        for (int r = 0; r < d; r++) mean[r] += z[i * d + r] / N_CHAINS;
    for (int i = 0; i < N_CHAINS; i++)
        for (int r = 0; r < d; r++)
            for (int c = 0; c < d; c++) cov[r * d + c] += (z[i * d + r] - mean[r]) * (z[i * d + c] - mean[c]) / (N_CHAINS - 1);
}

static void check_scalar(void) {
    /* total precision lambda = 1 (prior) + a; target mean m = a b / lambda */
    const double a = 3.0, b = 0.8, lambda = 1.0 + a, m = a * b / lambda, gamma = 0.1;
    struct linear_target t = {1, {a}, {a * b}};
    struct lpc_target tg = {&t, linear_score};
    struct lpc_chain_params p = {300, 1, (float)gamma, 0.99f, 1e-8f, 0, 1};
    float *z = malloc(sizeof(float) * N_CHAINS);
    run_chain(&tg, 1, &p, 1, z);
    double mean, var;
    moments(z, 1, &mean, &var);
    double want = 2.0 / (lambda * (2.0 - gamma * lambda)), se = want * sqrt(2.0 / N_CHAINS);
    CHECK(fabs(var - want) < 4 * se, "scalar chain variance %.5f, expected 2/(lambda(2-gamma lambda)) = %.5f (4 SE = %.4f)", var,
          want, 4 * se);
    CHECK(fabs(var - 1.0 / lambda) > 4 * se, "the Euler chain's variance %.5f differs measurably from 1/lambda = %.5f", var, 1.0 / lambda);
    CHECK(fabs(mean - m) < 4 * sqrt(want / N_CHAINS), "scalar chain mean %.5f, expected %.5f", mean, m);
    free(z);
}

/* x = W z + noise: with W = [[1, 0.5], [0.2, 1.5], [0.7, -0.4]], s = 0.8, x = (0.5, -1, 0.3) */
static void posterior(struct linear_target *t, double L[4], double mu[2]) {
    const double W[3][2] = {{1.0, 0.5}, {0.2, 1.5}, {0.7, -0.4}}, x[3] = {0.5, -1.0, 0.3}, s2 = 0.64;
    double A[4] = {0}, Wx[2] = {0};
    for (int r = 0; r < 2; r++) {
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 3; k++) A[r * 2 + c] += W[k][r] * W[k][c] / s2;
        for (int k = 0; k < 3; k++) Wx[r] += W[k][r] * x[k] / s2;
    }
    t->d = 2;
    memcpy(t->A, A, sizeof A);
    t->Ab[0] = Wx[0], t->Ab[1] = Wx[1]; /* grad log p(x|z) = W^T x / s^2 - A z */
    for (int i = 0; i < 4; i++) L[i] = A[i] + (i == 0 || i == 3);
    double det = L[0] * L[3] - L[1] * L[2];
    mu[0] = (L[3] * Wx[0] - L[1] * Wx[1]) / det;
    mu[1] = (-L[2] * Wx[0] + L[0] * Wx[1]) / det;
}

static void inverse2(const double *M, double *out) {
    double det = M[0] * M[3] - M[1] * M[2];
    out[0] = M[3] / det, out[1] = -M[1] / det, out[2] = -M[2] / det, out[3] = M[0] / det;
}

static void check_linear_gaussian(void) {
    struct linear_target t;
    double L[4], mu[2], mean[2], cov[4], want[4], exact[4];
    posterior(&t, L, mu);
    struct lpc_target tg = {&t, linear_score};
    inverse2(L, exact);
    const double gammas[2] = {0.1, 0.01};
    double dist[2];
    float *z = malloc(sizeof(float) * N_CHAINS * 2);
    for (int gi = 0; gi < 2; gi++) {
        double g = gammas[gi];
        struct lpc_chain_params p = {gi ? 1500 : 200, 1, (float)g, 0.99f, 1e-8f, 0, 1};
        run_chain(&tg, 2, &p, 11 + gi, z);
        moments(z, 2, mean, cov);
        /* the Euler chain's covariance 2 (L (2I - gamma L))^-1 */
        double M[4] = {2 * L[0] - g * (L[0] * L[0] + L[1] * L[2]), 2 * L[1] - g * (L[0] * L[1] + L[1] * L[3]),
                       2 * L[2] - g * (L[2] * L[0] + L[3] * L[2]), 2 * L[3] - g * (L[2] * L[1] + L[3] * L[3])};
        inverse2(M, want);
        for (int i = 0; i < 4; i++) want[i] *= 2;
        for (int r = 0; r < 2; r++)
            CHECK(fabs(mean[r] - mu[r]) < 4 * sqrt(want[r * 3] / N_CHAINS), "gamma %g: posterior mean[%d] %.5f, expected %.5f", g, r,
                  mean[r], mu[r]);
        for (int i = 0; i < 4; i++) {
            double se = sqrt((want[i] * want[i] + want[0] * want[3]) / N_CHAINS); /* SE of a sample covariance */
            CHECK(fabs(cov[i] - want[i]) < 4 * se, "gamma %g: covariance[%d] %.5f, expected %.5f (4 SE %.4f)", g, i, cov[i], want[i], 4 * se);
        }
        dist[gi] = 0;
        for (int i = 0; i < 4; i++) dist[gi] += (cov[i] - exact[i]) * (cov[i] - exact[i]);
        dist[gi] = sqrt(dist[gi]);
    }
    CHECK(dist[1] < 0.5 * dist[0], "smaller gamma approaches the exact posterior covariance: distance %.4f (gamma 0.01) vs %.4f (0.1)",
          dist[1], dist[0]);
    free(z);
}

static void check_mode(void) {
    struct linear_target t;
    double L[4], mu[2];
    posterior(&t, L, mu);
    struct lpc_target tg = {&t, linear_score};
    float *z = malloc(sizeof(float) * N_CHAINS * 2);
    struct lpc_chain_params p = {400, 1, 0.1f, 0.99f, 1e-8f, 0, 0};
    run_chain(&tg, 2, &p, 3, z);
    CHECK(fabs(z[0] - mu[0]) < 1e-5 && fabs(z[1] - mu[1]) < 1e-5, "noise = false: converges to the mode (%.6f, %.6f), expected (%.6f, %.6f)",
          z[0], z[1], mu[0], mu[1]);
    /* preconditioned: steps of about gamma in every coordinate, so the iterates end within a few gamma */
    struct lpc_chain_params q = {400, 1, 0.01f, 0.9f, 1e-8f, 1, 0};
    run_chain(&tg, 2, &q, 3, z);
    CHECK(fabs(z[0] - mu[0]) < 0.05 && fabs(z[1] - mu[1]) < 0.05, "noise = false, precond: near the mode (%.4f, %.4f), expected (%.4f, %.4f)",
          z[0], z[1], mu[0], mu[1]);
    free(z);
}

int main(void) {
    check_scalar();
    check_linear_gaussian();
    check_mode();
    return test_finish("test_sampler");
}
