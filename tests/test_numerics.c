/* Closed-form checks of the likelihoods, the Langevin update, Adam and the random numbers (issue
 * "foundation": the 256 bin probabilities sum to 1; Gaussian log-density against the closed form;
 * Adam against a hand-computed sequence). */
#include <string.h>

#include "lpc/config.h"
#include "lpc/likelihood.h"
#include "lpc/ops.h"
#include "lpc/rng.h"
#include "testutil.h"

static void check_bins_sum_to_one(void) {
    const double mus[] = {-3.0, -1.0, -0.37, 0.0, 0.5, 1.0, 2.5};
    const double sigmas[] = {1e-3, 1e-2, 0.1, 1.0, 5.0};
    for (size_t a = 0; a < sizeof mus / sizeof *mus; a++)
        for (size_t b = 0; b < sizeof sigmas / sizeof *sigmas; b++) {
            double total = 0;
            for (int k = 0; k < 256; k++) total += exp(lpc_discretized_gaussian_logp(k / 127.5 - 1.0, mus[a], log(sigmas[b]), NULL, NULL));
            /* a partition of the real line: the sum is 1 up to double rounding of 256 terms */
            CHECK(fabs(total - 1.0) < 1e-9, "discretized Gaussian bins sum to %.15f (mu %g, sigma %g), expected 1", total,
                  mus[a], sigmas[b]);
        }
}

static void check_tails(void) {
    /* mu far above the lowest bin: log P = log Phi((-1 + 1/255 - mu) / sigma), whose asymptotic form is
     * -u^2/2 - log(|u| sqrt(2 pi)) - log(1 - 1/u^2 + 3/u^4) for u -> -inf */
    double mu = 5.0, sigma = 0.01, u = (-1.0 + LPC_BIN_HALF_WIDTH - mu) / sigma, dmu, dls;
    double lp = lpc_discretized_gaussian_logp(-1.0, mu, log(sigma), &dmu, &dls);
    double expected = -0.5 * u * u - log(-u * sqrt(2 * 3.14159265358979323846)) + log(1.0 - 1.0 / (u * u) + 3.0 / (u * u * u * u));
    CHECK(isfinite(lp) && fabs(lp - expected) < 1e-6 * fabs(expected), "edge-bin tail log P %.10g, expected %.10g", lp, expected);
    CHECK(isfinite(dmu) && isfinite(dls) && dmu < 0, "tail gradients finite (dmu %g, dls %g), dmu < 0 pulls mu down", dmu, dls);
    /* an interior bin 300 sigma away on either side */
    for (int side = -1; side <= 1; side += 2) {
        double x = 0.2, m = 0.2 + side * 3.0, s = 0.01;
        double v = lpc_discretized_gaussian_logp(x, m, log(s), &dmu, &dls);
        double a = (x - LPC_BIN_HALF_WIDTH - m) / s, b = (x + LPC_BIN_HALF_WIDTH - m) / s;
        double near = side < 0 ? a : -b; /* the end of the bin nearer the mean, as a positive distance */
        double approx = -0.5 * near * near - log(near * sqrt(2 * 3.14159265358979323846)); /* width >> sigma: the near tail dominates */
        CHECK(isfinite(v) && fabs(v - approx) < 1e-3 * fabs(approx), "interior tail (side %d) log P %.8g ~ %.8g", side, v, approx);
        CHECK(isfinite(dmu) && (side < 0 ? dmu > 0 : dmu < 0), "interior tail gradient %g points toward the bin", dmu);
    }
}

/* Double-precision central differences of the scalar likelihoods: h = 1e-6 gives truncation error
 * ~1e-12 and rounding error ~1e-10 relative, so 1e-6 is a safe threshold. */
static void check_scalar_gradients(void) {
    const double xs[] = {-1.0, -0.99215686, -0.2, 0.0, 0.45098039, 0.99215686, 1.0};
    const double mus[] = {-1.3, -0.5, 0.01, 0.9, 1.7};
    const double lss[] = {log(0.02), log(0.3), log(1.7)};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++)
        for (size_t j = 0; j < sizeof mus / sizeof *mus; j++)
            for (size_t k = 0; k < sizeof lss / sizeof *lss; k++)
                for (int kind = 0; kind < 2; kind++) {
                    double (*f)(double, double, double, double *, double *) =
                        kind ? lpc_discretized_gaussian_logp : lpc_gaussian_logp;
                    double dmu, dls, h = 1e-6;
                    f(xs[i], mus[j], lss[k], &dmu, &dls);
                    double ndmu = (f(xs[i], mus[j] + h, lss[k], NULL, NULL) - f(xs[i], mus[j] - h, lss[k], NULL, NULL)) / (2 * h);
                    double ndls = (f(xs[i], mus[j], lss[k] + h, NULL, NULL) - f(xs[i], mus[j], lss[k] - h, NULL, NULL)) / (2 * h);
                    CHECK(fabs(dmu - ndmu) <= 1e-6 * fmax(1.0, fabs(ndmu)), "%s d/dmu %.10g vs %.10g (x %g mu %g ls %g)",
                          kind ? "discretized" : "gaussian", dmu, ndmu, xs[i], mus[j], lss[k]);
                    CHECK(fabs(dls - ndls) <= 1e-6 * fmax(1.0, fabs(ndls)), "%s d/dlog_sigma %.10g vs %.10g (x %g mu %g ls %g)",
                          kind ? "discretized" : "gaussian", dls, ndls, xs[i], mus[j], lss[k]);
                }
}

static void check_gaussian_closed_form(void) {
    double x = 0.3, mu = -0.2, sigma = 0.25;
    double density = exp(-(x - mu) * (x - mu) / (2 * sigma * sigma)) / (sigma * sqrt(2 * 3.14159265358979323846));
    double lp = lpc_gaussian_logp(x, mu, log(sigma), NULL, NULL);
    CHECK(fabs(lp - log(density)) < 1e-12, "Gaussian log-density %.15g, closed form %.15g", lp, log(density));
    /* the batched op sums per sample */
    const struct lpc_backend *be = lpc_backend_cpu();
    float xv[4] = {0.3f, -0.1f, 0.9f, -1.0f}, mv[4] = {-0.2f, 0.0f, 1.0f, -0.5f}, ls = logf(0.25f), logp[2], dmu[4];
    be->likelihood(logp, dmu, NULL, xv, mv, &ls, 2, 2, LPC_LIK_GAUSSIAN);
    double want0 = lpc_gaussian_logp(xv[0], mv[0], ls, NULL, NULL) + lpc_gaussian_logp(xv[1], mv[1], ls, NULL, NULL);
    CHECK(fabs(logp[0] - want0) < 1e-5 * fabs(want0), "batched log p of sample 0: %.8g, expected %.8g", logp[0], want0);
    CHECK(fabsf(dmu[2] - (0.9f - 1.0f) / (0.25f * 0.25f)) < 1e-4f, "dmu = (x - mu) / sigma^2: %g", dmu[2]);
}

static void check_langevin_update(void) {
    const struct lpc_backend *be = lpc_backend_cpu();
    /* z = 0.5, grad_lik = 1.5 -> g = grad_lik - z = 1.0; beta 0.9, t = 1: v = 0.1, vhat = 0.1 / (1 - 0.9) = 1,
     * G = 1 / (1 + eps); gamma 0.1, xi = 0.3: z' = 0.5 + 0.1 G + sqrt(0.2 G) 0.3 */
    float z = 0.5f, v = 0.0f, stats[2] = {0, 0}, zs = 0, zq = 0, gl = 1.5f, xi = 0.3f;
    struct lpc_langevin_params p = {0.1f, 0.9f, 1e-8f, 1, 1, 1, 1};
    be->langevin_update(&z, &v, stats, &zs, &zq, &gl, &xi, 1, &p);
    double want = 0.5 + 0.1 + sqrt(0.2) * 0.3;
    CHECK(fabs(z - want) < 1e-6, "preconditioned noisy step gives %.8f, expected %.8f", z, want);
    CHECK(fabsf(v - 0.1f) < 1e-7f, "second moment %.8f, expected 0.1", v);
    CHECK(fabsf(stats[0] - 1.0f) < 1e-6f && fabsf(stats[1] - 1.0f) < 1e-6f, "stats |g| = %g, G = %g, expected 1, 1", stats[0], stats[1]);
    CHECK(fabsf(zs - z) < 1e-7f && fabsf(zq - z * z) < 1e-6f, "accumulated z %g and z^2 %g", zs, zq);
    /* second step t = 2, no noise, precond: g = 1.5 - z */
    float z1 = z, g2 = 1.5f - z1;
    p.t = 2, p.noise = 0, p.accumulate = 0;
    be->langevin_update(&z, &v, stats, &zs, &zq, &gl, NULL, 1, &p);
    double v2 = 0.9 * 0.1 + 0.1 * g2 * g2, G2 = 1.0 / (sqrt(v2 / (1 - 0.81)) + 1e-8);
    CHECK(fabs(z - (z1 + 0.1 * G2 * g2)) < 1e-6, "bias-corrected second step %.8f, expected %.8f", z, z1 + 0.1 * G2 * g2);
    /* precond off: G = 1 */
    float z3 = 1.0f, v3 = 0, g3 = 3.0f;
    struct lpc_langevin_params q = {0.05f, 0.99f, 1e-8f, 0, 0, 1, 0};
    be->langevin_update(&z3, &v3, stats, &zs, &zq, &g3, NULL, 1, &q);
    CHECK(fabsf(z3 - (1.0f + 0.05f * 2.0f)) < 1e-7f, "plain gradient step %.8f, expected 1.1", z3);
}

static void check_adam(void) {
    const struct lpc_backend *be = lpc_backend_cpu();
    /* constant gradient: mhat = g and vhat = g^2 exactly, so every step moves lr * g / (|g| + eps) */
    float p[2] = {1.0f, -2.0f}, m[2] = {0, 0}, v[2] = {0, 0}, g[2] = {0.5f, -4.0f};
    for (long t = 1; t <= 3; t++) {
        struct lpc_adam_params ap = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, t};
        be->adam_update(p, m, v, g, 2, &ap);
    }
    CHECK(fabsf(p[0] - 0.7f) < 1e-5f && fabsf(p[1] - (-1.7f)) < 1e-5f, "Adam with constant gradient: %.7f %.7f, expected 0.7 -1.7", p[0], p[1]);
    /* hand-computed sequence g = 1, then -1: step 1 moves -0.1 (p = 0.9); step 2: m = 0.09 - 0.1 = -0.01,
     * v = 0.000999 + 0.001 = 0.001999, mhat = -0.01 / 0.19 = -0.0526316, vhat = 0.001999 / 0.001999 = 1,
     * update = -0.0526316: p = 0.9 + 0.00526316 = 0.90526316 */
    float q = 1.0f, qm = 0, qv = 0, g1 = 1.0f, g2 = -1.0f;
    struct lpc_adam_params a1 = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1}, a2 = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 2};
    be->adam_update(&q, &qm, &qv, &g1, 1, &a1);
    CHECK(fabsf(q - 0.9f) < 1e-6f, "Adam step 1: %.7f, expected 0.9", q);
    be->adam_update(&q, &qm, &qv, &g2, 1, &a2);
    CHECK(fabsf(q - 0.90526316f) < 1e-6f, "Adam step 2: %.8f, expected 0.90526316", q);
    /* decoupled weight decay: p -= lr * wd * p on top of the Adam step */
    float w = 2.0f, wm = 0, wv = 0, wg = 0.0f;
    struct lpc_adam_params ad = {0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, 1};
    be->adam_update(&w, &wm, &wv, &wg, 1, &ad);
    CHECK(fabsf(w - 1.9f) < 1e-6f, "AdamW decay with zero gradient: %.7f, expected 1.9", w);
}

static void check_rng(void) {
    struct lpc_rng a, b;
    lpc_rng_init(&a, 7, 0);
    lpc_rng_init(&b, 7, 0);
    float x[16], y[12];
    lpc_rng_normal_host(&a, x, 16);
    lpc_rng_normal_host(&b, y, 4);   /* offset 0..3 */
    lpc_rng_normal_host(&b, y + 4, 8); /* offset 4..11 continues the same stream */
    CHECK(memcmp(x, y, 12 * sizeof(float)) == 0, "draws resume exactly from the stored offset");
    CHECK(a.offset == 16 && b.offset == 12, "offsets advance by the rounded count (16, 12): %llu %llu",
          (unsigned long long)a.offset, (unsigned long long)b.offset);
    lpc_rng_normal_host(&b, y, 3);
    CHECK(b.offset == 16, "a draw of 3 advances the offset to a multiple of 4: %llu", (unsigned long long)b.offset);
    /* moments of 1e6 draws: standard errors 1e-3 (mean) and 1.4e-3 (variance); 5 SE bounds */
    size_t n = 1000000;
    float *big = malloc(sizeof(float) * n);
    lpc_rng_normal_host(&a, big, n);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += big[i], s2 += (double)big[i] * big[i];
    CHECK(fabs(s / n) < 5e-3 && fabs(s2 / n - 1.0) < 7e-3, "normal draws: mean %.4f var %.4f", s / n, s2 / n);
    free(big);
    lpc_rng_destroy(&a), lpc_rng_destroy(&b);
}

int main(void) {
    check_bins_sum_to_one();
    check_tails();
    check_scalar_gradients();
    check_gaussian_closed_form();
    check_langevin_update();
    check_adam();
    check_rng();
    return test_finish("test_numerics");
}
