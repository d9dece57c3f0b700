/* Per-element math shared by the CPU backend (src/cpu/) and the CUDA kernels (kernels/): the
 * likelihoods, the Langevin step, the encoder head's gradients and Adam are written once here, so both
 * backends compute the same formulas in the same order. */
#ifndef LPC_POINTWISE_H
#define LPC_POINTWISE_H

#include <math.h>

#include "lpc/config.h"
#include "lpc/likelihood.h"
#include "lpc/ops.h"

#ifdef __CUDACC__
#define LPC_HD __host__ __device__ __forceinline__
#else
#define LPC_HD static inline
#endif

#define LPC_INV_SQRT2 0.70710678118654752440
#define LPC_INV_SQRT_2PI 0.39894228040143267794

/* exp(u^2) erfc(u) for u >= 0 in double; the asymptotic series past 25, where erfc underflows */
LPC_HD double lpc_pw_erfcx(double u) {
    if (u < 25.0) return exp(u * u) * erfc(u);
    double v = 1.0 / (2.0 * u * u);
    return (1.0 - v * (1.0 - 3.0 * v * (1.0 - 5.0 * v * (1.0 - 7.0 * v)))) / (u * 1.7724538509055160273);
}

/* log N(x; mu, sigma^2) with its derivatives w.r.t. mu and log sigma; inv_var = lpc_pw_inv_var(log_sigma),
 * computed once by callers that evaluate many values with one sigma */
LPC_HD double lpc_pw_inv_var(double log_sigma) { return exp(-2.0 * log_sigma); }

LPC_HD double lpc_pw_gaussian_scaled(double x, double mu, double log_sigma, double inv_var, double *dmu,
                                     double *dlog_sigma) {
    double r = x - mu;
    *dmu = r * inv_var;
    *dlog_sigma = r * r * inv_var - 1.0;
    return -0.5 * r * r * inv_var - log_sigma - 0.5 * LPC_LOG_2PI;
}

LPC_HD double lpc_pw_gaussian(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma) {
    return lpc_pw_gaussian_scaled(x, mu, log_sigma, lpc_pw_inv_var(log_sigma), dmu, dlog_sigma);
}

/* log P([a, b]) of a standard normal, a < b, a + b >= 0 (the bin right of the mode or across it), with
 * phi(a)/P and phi(b)/P; infinite ends allowed. */
LPC_HD double lpc_pw_bin_right(double a, double b, double *pa, double *pb) {
    int b_inf = isinf(b);
    if (a >= 0.0) {
        double ratio = b_inf ? 0.0 : exp(-0.5 * (b - a) * (b + a));
        double qa = 0.5 * lpc_pw_erfcx(a * LPC_INV_SQRT2), qb = b_inf ? 0.0 : 0.5 * lpc_pw_erfcx(b * LPC_INV_SQRT2);
        double scaled = qa - qb * ratio; /* P exp(a^2 / 2) */
        *pa = LPC_INV_SQRT_2PI / scaled;
        *pb = LPC_INV_SQRT_2PI * ratio / scaled;
        return -0.5 * a * a + log(scaled);
    }
    int a_inf = isinf(a);
    double p = 0.5 * ((b_inf ? 1.0 : erf(b * LPC_INV_SQRT2)) - (a_inf ? -1.0 : erf(a * LPC_INV_SQRT2)));
    *pa = a_inf ? 0.0 : LPC_INV_SQRT_2PI * exp(-0.5 * a * a) / p;
    *pb = b_inf ? 0.0 : LPC_INV_SQRT_2PI * exp(-0.5 * b * b) / p;
    return log(p);
}

LPC_HD double lpc_pw_discretized(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma) {
    double inv_sigma = exp(-log_sigma);
    double a = x <= -1.0 + LPC_BIN_HALF_WIDTH ? -INFINITY : (x - LPC_BIN_HALF_WIDTH - mu) * inv_sigma;
    double b = x >= 1.0 - LPC_BIN_HALF_WIDTH ? INFINITY : (x + LPC_BIN_HALF_WIDTH - mu) * inv_sigma;
    int reflect = a + b < 0.0; /* mirror so that the bin lies right of the mode */
    double lo = reflect ? -b : a, hi = reflect ? -a : b, pa, pb;
    double logp = lpc_pw_bin_right(lo, hi, &pa, &pb);
    /* d log P / d mu = (phi(a) - phi(b)) / (sigma P); d log P / d log sigma = (a phi(a) - b phi(b)) / P */
    double d = (pa - pb) * inv_sigma;
    *dmu = reflect ? -d : d;
    *dlog_sigma = (isinf(lo) ? 0.0 : lo * pa) - (isinf(hi) ? 0.0 : hi * pb);
    return logp;
}

/* log p(x | mu) of the likelihood `kind` (enum lpc_likelihood) with its derivatives w.r.t. mu and log
 * sigma; inv_var = lpc_pw_inv_var(log_sigma) */
LPC_HD double lpc_pw_likelihood(int kind, double x, double mu, double log_sigma, double inv_var, double *dmu,
                                double *dlog_sigma) {
    return kind == LPC_LIK_DISCRETIZED_GAUSSIAN ? lpc_pw_discretized(x, mu, log_sigma, dmu, dlog_sigma)
                                                : lpc_pw_gaussian_scaled(x, mu, log_sigma, inv_var, dmu, dlog_sigma);
}

/* Activations (enum lpc_activation, or LPC_ACT_NONE) and their derivatives at the pre-activation x. */
LPC_HD float lpc_pw_act(float x, int act) {
    switch (act) {
    case LPC_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case LPC_ACT_LEAKY_RELU: return x > 0.0f ? x : LPC_LEAKY_RELU_SLOPE * x;
    case LPC_ACT_SILU: return x / (1.0f + expf(-x));
    default: return x;
    }
}

LPC_HD float lpc_pw_act_derivative(float x, int act) {
    switch (act) {
    case LPC_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case LPC_ACT_LEAKY_RELU: return x > 0.0f ? 1.0f : LPC_LEAKY_RELU_SLOPE;
    case LPC_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    default: return 1.0f;
    }
}

/* One Langevin coordinate (SPEC.md 2.1); returns the new z, updates *v, adds to *abs_g and *G_out. */
LPC_HD float lpc_pw_langevin(float z, float *v, float grad_lik, float xi, float step_size, float beta, float eps,
                             float bias_correction, int precond, int noise, float *g_abs, float *G_out) {
    float g = grad_lik - z; /* + grad log N(z; 0, I) */
    float G = 1.0f;
    if (precond) {
        float vn = beta * *v + (1.0f - beta) * g * g;
        *v = vn;
        G = 1.0f / (sqrtf(vn / bias_correction) + eps);
    }
    float step = step_size * G * g;
    if (noise) step += sqrtf(2.0f * step_size * G) * xi;
    *g_abs = fabsf(g);
    *G_out = G;
    return z + step;
}

/* Adam(W) for one parameter; c1, c2 are the bias corrections 1 - beta^t. */
LPC_HD void lpc_pw_adam(float *param, float *m, float *v, float g, float lr, float beta1, float beta2, float eps,
                        float weight_decay, float c1, float c2) {
    float mi = beta1 * *m + (1.0f - beta1) * g;
    float vi = beta2 * *v + (1.0f - beta2) * g * g;
    *m = mi;
    *v = vi;
    float update = (mi / c1) / (sqrtf(vi / c2) + eps);
    *param -= lr * (update + weight_decay * *param);
}

/* The encoder head's gradient for one latent coordinate (see encoder_head_backward in ops.h). Adds the
 * loss terms to *fwd, *logq, *kl; writes the (scaled) gradients w.r.t. the mean and the raw
 * log-variance. has_eps: eps, grad_lik and z0 are valid. */
LPC_HD void lpc_pw_head(double m, double raw_lv, int has_eps, double e, double grad_lik, double z0, int has_sums,
                        double A, double B, double S, double w_fwd, double w_rev, double w_vae, double scale,
                        float *d_mean, float *d_logvar, double *fwd, double *logq, double *kl) {
    int inside = raw_lv >= LPC_LOGVAR_MIN && raw_lv <= LPC_LOGVAR_MAX;
    double lv = raw_lv < LPC_LOGVAR_MIN ? LPC_LOGVAR_MIN : raw_lv > LPC_LOGVAR_MAX ? LPC_LOGVAR_MAX : raw_lv;
    double var = exp(lv), s = exp(0.5 * lv), dm = 0, dlv = 0;
    if (w_fwd != 0.0 && has_sums) {
        double sq = (B - 2.0 * m * A + S * m * m) / S; /* mean over the states of (z_t - m)^2 */
        if (sq < 0) sq = 0;
        *fwd += 0.5 * lv + 0.5 * sq / var + 0.5 * LPC_LOG_2PI;
        dm += w_fwd * (-(A / S - m) / var);
        dlv += w_fwd * (0.5 - 0.5 * sq / var);
    }
    if (has_eps) {
        *logq += -0.5 * lv - 0.5 * e * e - 0.5 * LPC_LOG_2PI;
        if (w_rev != 0.0) {
            double g = grad_lik - z0; /* grad_z log p(x, z) at z_0 */
            dm += w_rev * (-g);
            dlv += w_rev * (-0.5 - 0.5 * g * e * s);
        }
        if (w_vae != 0.0) {
            dm += w_vae * (-grad_lik + m);
            dlv += w_vae * (-0.5 * grad_lik * e * s + 0.5 * (var - 1.0));
        }
    }
    *kl += 0.5 * (m * m + var - lv - 1.0);
    *d_mean = (float)(scale * dm);
    *d_logvar = inside ? (float)(scale * dlv) : 0.0f;
}

#endif
