/* Importance-weighted evaluation (SPEC.md section 6, `lpc eval`).
 *
 * Proposal q(z|x): `encoder` uses the encoder's Gaussian; `langevin` (and every model without an
 * encoder) fits a diagonal Gaussian to the states of a Langevin chain started at the encoder mean (or
 * a prior draw): mean and standard deviation of its last T/2 states, the deviation widened by 1.2 so
 * the proposal's tails cover the posterior's. Both give valid lower bounds:
 *   ELBO = mean_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],
 *   IWAE = log mean_k exp(log p(x|z_k) + log p(z_k) - log q(z_k|x)).
 * Bits per dimension: for the discretized Gaussian, -log p / (dim ln 2) of the 256-level data; for
 * the continuous Gaussian, of the density rescaled to pixel units [0, 256) (a dequantised bound). */
#include "lpc/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/langevin.h"
#include "lpc/likelihood.h"
#include "lpc/train.h"

#define PROPOSAL_WIDEN 1.2

int lpc_evaluate(struct lpc_eval_result *r, struct lpc_model *m, const struct lpc_dataset *d, const struct lpc_config *cfg) {
    const struct lpc_backend *be = m->be;
    const int B = m->max_batch, D = m->latent, dim = m->dim, K = (int)cfg->eval_samples;
    memset(r, 0, sizeof *r);
    r->samples = K;
    struct lpc_rng rng;
    lpc_rng_init(&rng, (uint64_t)cfg->seed ^ 0xE7A1E7A1ull, 0);
    struct lpc_chain chain;
    const int T = (int)cfg->langevin_steps, use_chain = cfg->eval_proposal == LPC_PROPOSAL_LANGEVIN || !m->has_encoder;
    lpc_chain_create(&chain, be, B, D, T);
    float *x = lpc_xmalloc((size_t)B * dim * sizeof(float)), *head = lpc_xmalloc((size_t)B * 2 * D * sizeof(float));
    float *qm = lpc_xmalloc((size_t)B * D * sizeof(float)), *qs = lpc_xmalloc((size_t)B * D * sizeof(float));
    float *eps = lpc_xmalloc(lpc_rng_advance((size_t)B * D) * sizeof(float)), *z = lpc_xmalloc((size_t)B * D * sizeof(float));
    float *logp = lpc_xmalloc((size_t)B * sizeof(float)), *mu = lpc_xmalloc((size_t)B * dim * sizeof(float));
    double *logw = lpc_xmalloc((size_t)B * K * sizeof(double));
    int32_t *idx = lpc_xmalloc((size_t)B * sizeof(int32_t));
    double sum_elbo = 0, sum_iwae = 0, sum_sq = 0;
    for (long start = 0; start < d->n; start += B) {
        int n = d->n - start < B ? (int)(d->n - start) : B;
        for (int i = 0; i < n; i++) idx[i] = (int32_t)(start + i);
        lpc_dataset_batch(d, x, idx, n, NULL);
        be->upload(m->x, x, (size_t)n * dim * sizeof(float));
        if (m->has_encoder) {
            lpc_model_encode(m, m->x, n);
            be->download(head, m->head, (size_t)n * 2 * D * sizeof(float));
            for (int i = 0; i < n; i++)
                for (int j = 0; j < D; j++) {
                    float lv = head[(size_t)i * 2 * D + D + j];
                    lv = lv < LPC_LOGVAR_MIN ? LPC_LOGVAR_MIN : lv > LPC_LOGVAR_MAX ? LPC_LOGVAR_MAX : lv;
                    qm[(size_t)i * D + j] = head[(size_t)i * 2 * D + j];
                    qs[(size_t)i * D + j] = expf(0.5f * lv);
                }
        }
        if (use_chain) {
            if (m->has_encoder) be->upload(chain.z, qm, (size_t)n * D * sizeof(float));
            else be->normal(chain.z, (size_t)n * D, &rng);
            struct lpc_chain_params cp = {T, T / 2 > 0 ? T / 2 : 1, (float)cfg->langevin_step_size, (float)cfg->precond_beta,
                                          (float)cfg->precond_eps, cfg->precond, 1};
            struct lpc_target target = lpc_model_target(m);
            lpc_chain_run(&chain, &target, &cp, &rng, n, 0, 0);
            float *s1 = lpc_xmalloc((size_t)n * D * sizeof(float)), *s2 = lpc_xmalloc((size_t)n * D * sizeof(float));
            be->download(s1, chain.zsum, (size_t)n * D * sizeof(float));
            be->download(s2, chain.zsq, (size_t)n * D * sizeof(float));
            for (size_t k = 0; k < (size_t)n * D; k++) {
                double mean = s1[k] / cp.theta_samples, var = s2[k] / cp.theta_samples - mean * mean;
                qm[k] = (float)mean;
                qs[k] = (float)(PROPOSAL_WIDEN * sqrt(var > 1e-8 ? var : 1e-8));
            }
            free(s1), free(s2);
        }
        /* reconstruction at the proposal mean */
        be->upload(m->grad_z, qm, (size_t)n * D * sizeof(float));
        lpc_model_decode(m, m->grad_z, n);
        be->download(mu, m->mu, (size_t)n * dim * sizeof(float));
        for (size_t k = 0; k < (size_t)n * dim; k++) sum_sq += ((double)mu[k] - x[k]) * ((double)mu[k] - x[k]);
        for (int s = 0; s < K; s++) {
            lpc_rng_normal_host(&rng, eps, (size_t)n * D);
            for (size_t k = 0; k < (size_t)n * D; k++) z[k] = qm[k] + qs[k] * eps[k];
            be->upload(m->grad_z, z, (size_t)n * D * sizeof(float));
            lpc_model_decode(m, m->grad_z, n);
            lpc_model_likelihood(m, m->logp, m->x, n, 0);
            be->download(logp, m->logp, (size_t)n * sizeof(float));
            for (int i = 0; i < n; i++) {
                double lw = logp[i];
                for (int j = 0; j < D; j++) {
                    size_t k = (size_t)i * D + j;
                    lw += -0.5 * (double)z[k] * z[k] - 0.5 * LPC_LOG_2PI;                   /* log p(z) */
                    lw -= -log((double)qs[k]) - 0.5 * (double)eps[k] * eps[k] - 0.5 * LPC_LOG_2PI; /* log q(z|x) */
                }
                logw[(size_t)i * K + s] = lw;
            }
        }
        for (int i = 0; i < n; i++) {
            double mx = -INFINITY, mean = 0, acc = 0;
            for (int s = 0; s < K; s++) mx = fmax(mx, logw[(size_t)i * K + s]), mean += logw[(size_t)i * K + s] / K;
            for (int s = 0; s < K; s++) acc += exp(logw[(size_t)i * K + s] - mx);
            sum_elbo += mean;
            sum_iwae += mx + log(acc / K);
        }
    }
    r->images = d->n;
    r->elbo = sum_elbo / d->n;
    r->iwae = sum_iwae / d->n;
    r->recon_mse = sum_sq / ((double)d->n * dim);
    double shift = m->likelihood == LPC_LIK_GAUSSIAN ? dim * log(127.5) : 0.0; /* density in pixel units */
    r->elbo_bpd = (-r->elbo + shift) / (dim * log(2.0));
    r->iwae_bpd = (-r->iwae + shift) / (dim * log(2.0));
    lpc_chain_destroy(&chain);
    lpc_rng_destroy(&rng);
    free(x), free(head), free(qm), free(qs), free(eps), free(z), free(logp), free(mu), free(logw), free(idx);
    return 0;
}
