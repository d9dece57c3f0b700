/* The encoder's Gaussian head on the CPU (SPEC.md sections 2.1 step 4 and 2.2): sampling the warm
 * start and the gradients of the forward-KL, reverse-KL and VAE objectives w.r.t. the head. */
#include <math.h>

#include "cpu_internal.h"
#include "lpc/likelihood.h"
#include "lpc/ops.h"

static inline float clamp_logvar(float lv, int *inside) {
    *inside = lv >= LPC_LOGVAR_MIN && lv <= LPC_LOGVAR_MAX;
    return lv < LPC_LOGVAR_MIN ? LPC_LOGVAR_MIN : lv > LPC_LOGVAR_MAX ? LPC_LOGVAR_MAX : lv;
}

void lpc_encoder_sample_cpu(float *z, const float *head, const float *eps, int n, int d) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            int inside;
            float m = head[(size_t)i * 2 * d + j], lv = clamp_logvar(head[(size_t)i * 2 * d + d + j], &inside);
            z[(size_t)i * d + j] = eps ? m + expf(0.5f * lv) * eps[(size_t)i * d + j] : m;
        }
}

void lpc_encoder_head_backward_cpu(float *d_head, float *terms, const float *head, const float *eps,
                                   const float *grad_lik, const float *z0, const float *zsum, const float *zsq,
                                   float n_states, int n, int d, float w_fwd, float w_rev, float w_vae, float scale) {
    const double half_log_2pi = 0.5 * LPC_LOG_2PI;
    for (int i = 0; i < n; i++) {
        double fwd = 0, logq = 0, kl = 0;
        for (int j = 0; j < d; j++) {
            size_t k = (size_t)i * d + j, hm = (size_t)i * 2 * d + j, hv = hm + (size_t)d;
            int inside;
            double m = head[hm], lv = clamp_logvar(head[hv], &inside);
            double var = exp(lv), s = exp(0.5 * lv);
            double dm = 0, dlv = 0;
            if (w_fwd != 0.0f) {
                double S = n_states, A = zsum[k], B = zsq[k];
                double sq = (B - 2.0 * m * A + S * m * m) / S; /* mean_t (z_t - m)^2 */
                if (sq < 0) sq = 0;
                fwd += 0.5 * lv + 0.5 * sq / var + half_log_2pi;
                dm += w_fwd * (-(A / S - m) / var);
                dlv += w_fwd * (0.5 - 0.5 * sq / var);
            }
            if (eps) {
                double e = eps[k];
                logq += -0.5 * lv - 0.5 * e * e - half_log_2pi;
                if (w_rev != 0.0f) {
                    double g = (double)grad_lik[k] - z0[k]; /* grad_z log p(x, z) at z_0 */
                    dm += w_rev * (-g);
                    dlv += w_rev * (-0.5 - 0.5 * g * e * s);
                }
                if (w_vae != 0.0f) {
                    double g = grad_lik[k];
                    dm += w_vae * (-g + m);
                    dlv += w_vae * (-0.5 * g * e * s + 0.5 * (var - 1.0));
                }
            }
            kl += 0.5 * (m * m + var - lv - 1.0);
            d_head[hm] = (float)(scale * dm);
            d_head[hv] = inside ? (float)(scale * dlv) : 0.0f;
        }
        terms[i] = (float)fwd;
        terms[n + i] = (float)logq;
        terms[2 * n + i] = (float)kl;
    }
}
