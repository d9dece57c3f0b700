/* The encoder's Gaussian head on the CPU (SPEC.md sections 2.1 step 4 and 2.2): sampling the warm
 * start and the gradients of the forward-KL, reverse-KL and VAE objectives w.r.t. the head. */
#include <math.h>

#include "cpu_internal.h"
#include "lpc/ops.h"
#include "lpc/pointwise.h"

static inline float clamp_logvar(float lv) { return lv < LPC_LOGVAR_MIN ? LPC_LOGVAR_MIN : lv > LPC_LOGVAR_MAX ? LPC_LOGVAR_MAX : lv; }

void lpc_encoder_sample_cpu(float *z, const float *head, const float *eps, int n, int d) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            float m = head[(size_t)i * 2 * d + j], lv = clamp_logvar(head[(size_t)i * 2 * d + d + j]);
            z[(size_t)i * d + j] = eps ? m + expf(0.5f * lv) * eps[(size_t)i * d + j] : m;
        }
}

void lpc_encoder_head_backward_cpu(float *d_head, float *terms, const float *head, const float *eps,
                                   const float *grad_lik, const float *z0, const float *zsum, const float *zsq,
                                   float n_states, int n, int d, float w_fwd, float w_rev, float w_vae, float scale) {
    for (int i = 0; i < n; i++) {
        double fwd = 0, logq = 0, kl = 0;
        for (int j = 0; j < d; j++) {
            size_t k = (size_t)i * d + j, hm = (size_t)i * 2 * d + j, hv = hm + (size_t)d;
            lpc_pw_head(head[hm], head[hv], eps != NULL, eps ? eps[k] : 0.0, eps ? grad_lik[k] : 0.0, eps ? z0[k] : 0.0,
                        zsum != NULL, zsum ? zsum[k] : 0.0, zsq ? zsq[k] : 0.0, n_states, w_fwd, w_rev, w_vae, scale,
                        &d_head[hm], &d_head[hv], &fwd, &logq, &kl);
        }
        terms[i] = (float)fwd;
        terms[n + i] = (float)logq;
        terms[2 * n + i] = (float)kl;
    }
}
