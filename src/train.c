/* Optimiser steps of the three algorithms (SPEC.md section 2): lpc (Langevin chain from the encoder's
 * warm start, decoder gradient averaged over the last S states, encoder trained by forward KL,
 * reverse KL or Jeffreys), pc (the same without noise and preconditioner) and vae (reparameterised
 * ELBO with analytic KL), followed by gradient clipping and Adam(W) (section 3). Backend-neutral. */
#include "lpc/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/image_io.h"
#include "lpc/likelihood.h"

static void model_score(void *ctx, float *grad_lik, float *logp, const float *z, int n, int param_grads) {
    struct lpc_model *m = ctx;
    lpc_model_score(m, grad_lik, logp, m->x, z, n, param_grads);
}

struct lpc_target lpc_model_target(struct lpc_model *m) { return (struct lpc_target){m, model_score}; }

static void shuffle(int32_t *order, long n, uint64_t *state) {
    for (long i = 0; i < n; i++) order[i] = (int32_t)i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(lpc_splitmix64(state) % (uint64_t)(i + 1));
        int32_t t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

int lpc_trainer_create(struct lpc_trainer *tr, const struct lpc_config *cfg, const struct lpc_backend *be,
                       const struct lpc_dataset *data) {
    memset(tr, 0, sizeof *tr);
    tr->cfg = *cfg;
    tr->be = be;
    tr->data = data;
    tr->batch = (int)cfg->batch_size;
    if (data->n < tr->batch)
        return lpc_fail("batch_size = %d is larger than the data set (%ld images); lower batch_size or raise limit",
                        tr->batch, data->n);
    tr->theta_samples = cfg->theta_samples ? (int)cfg->theta_samples : (int)cfg->langevin_steps;
    if (lpc_model_create(&tr->model, cfg, be, data->c, data->h, data->w, tr->batch)) return -1;
    lpc_arena_init_params(&tr->model.arena, (unsigned long long)cfg->seed);
    const int D = (int)cfg->latent_dim, B = tr->batch;
    lpc_chain_create(&tr->chain, be, B, D, cfg->algo == LPC_ALGO_VAE ? 1 : (int)cfg->langevin_steps);
    lpc_rng_init(&tr->rng, (uint64_t)cfg->seed, 0);
    tr->eps = be->alloc(lpc_rng_advance((size_t)B * D) * sizeof(float));
    tr->d_head = be->alloc((size_t)B * 2 * D * sizeof(float));
    tr->terms = be->alloc((size_t)B * 3 * sizeof(float));
    tr->sq = be->alloc((size_t)B * sizeof(float));
    tr->host_x = lpc_xmalloc((size_t)B * tr->model.dim * sizeof(float));
    tr->host_n = lpc_xmalloc((size_t)B * 3 * sizeof(float));
    tr->batch_idx = lpc_xmalloc((size_t)B * sizeof(int32_t));
    tr->batch_flip = lpc_xcalloc((size_t)B, 1);
    struct lpc_train_state *st = &tr->state;
    st->rng_seed = (uint64_t)cfg->seed;
    st->data_rng = (uint64_t)cfg->seed * 0x2545F4914F6CDD1Dull + 0x1234567ull;
    st->n_order = data->n;
    st->order = lpc_xmalloc((size_t)data->n * sizeof(int32_t));
    shuffle(st->order, data->n, &st->data_rng);
    return 0;
}

void lpc_trainer_destroy(struct lpc_trainer *tr) {
    if (!tr->be) return;
    lpc_model_destroy(&tr->model);
    lpc_chain_destroy(&tr->chain);
    lpc_rng_destroy(&tr->rng);
    tr->be->free(tr->eps), tr->be->free(tr->d_head), tr->be->free(tr->terms), tr->be->free(tr->sq);
    free(tr->host_x), free(tr->host_n), free(tr->batch_idx), free(tr->batch_flip), free(tr->state.order);
    memset(tr, 0, sizeof *tr);
}

/* Next minibatch in the epoch's order (the last partial batch of an epoch is dropped). */
static void next_batch(struct lpc_trainer *tr) {
    struct lpc_train_state *st = &tr->state;
    if (st->position + tr->batch > st->n_order) {
        shuffle(st->order, st->n_order, &st->data_rng);
        st->position = 0;
        st->epoch++;
    }
    memcpy(tr->batch_idx, st->order + st->position, (size_t)tr->batch * sizeof(int32_t));
    st->position += tr->batch;
    if (tr->cfg.flip)
        for (int i = 0; i < tr->batch; i++) tr->batch_flip[i] = (unsigned char)(lpc_splitmix64(&st->data_rng) & 1);
    lpc_dataset_batch(tr->data, tr->host_x, tr->batch_idx, tr->batch, tr->cfg.flip ? tr->batch_flip : NULL);
    tr->be->upload(tr->model.x, tr->host_x, (size_t)tr->batch * tr->model.dim * sizeof(float));
}

static double host_mean(struct lpc_trainer *tr, const float *dev, int n) {
    tr->be->download(tr->host_n, dev, (size_t)n * sizeof(float));
    double s = 0;
    for (int i = 0; i < n; i++) s += tr->host_n[i];
    return s / n;
}

/* Mean over the batch of log N(z; 0, I). */
static double prior_logp(struct lpc_trainer *tr, const float *z, int n) {
    const int D = tr->model.latent;
    tr->be->row_sum_squares(tr->sq, z, n, D);
    return -0.5 * host_mean(tr, tr->sq, n) - 0.5 * D * LPC_LOG_2PI;
}

static int check_finite(double v, const char *term, long step, const char *hint) {
    if (isfinite(v)) return 0;
    return lpc_fail("%s became %s at step %ld; %s", term, isnan(v) ? "NaN" : "Inf", step, hint);
}

/* Scales, measures and clips one network's gradient, then takes its Adam step. */
static double finish_group(struct lpc_trainer *tr, int group, float scale) {
    struct lpc_arena *a = &tr->model.arena;
    size_t off = a->table.group_offset[group], n = a->table.group_count[group];
    if (n == 0) return 0.0;
    tr->be->scale(a->grads + off, scale, n);
    return sqrt(tr->be->sum_squares(a->grads + off, n));
}

static void adam_group(struct lpc_trainer *tr, int group, double norm, double lr, long step) {
    struct lpc_arena *a = &tr->model.arena;
    size_t off = a->table.group_offset[group], n = a->table.group_count[group];
    if (n == 0) return;
    if (tr->cfg.grad_clip > 0 && norm > tr->cfg.grad_clip) tr->be->scale(a->grads + off, (float)(tr->cfg.grad_clip / norm), n);
    struct lpc_adam_params p = {(float)lr, 0.9f, 0.999f, 1e-8f, (float)tr->cfg.weight_decay, step};
    tr->be->adam_update(a->params + off, a->adam_m + off, a->adam_v + off, a->grads + off, n, &p);
}

static int step_lpc(struct lpc_trainer *tr, struct lpc_step_metrics *mt) {
    const struct lpc_config *c = &tr->cfg;
    const struct lpc_backend *be = tr->be;
    struct lpc_model *m = &tr->model;
    const int B = tr->batch, D = m->latent, S = tr->theta_samples;
    if (m->has_encoder) {
        lpc_model_encode(m, m->x, B);
        int sample = c->init == LPC_INIT_ENCODER_SAMPLE;
        if (sample) be->normal(tr->eps, (size_t)B * D, &tr->rng);
        be->encoder_sample(tr->chain.z, m->head, sample ? tr->eps : NULL, B, D);
    } else {
        be->normal(tr->chain.z, (size_t)B * D, &tr->rng);
    }
    struct lpc_chain_params cp = {(int)c->langevin_steps, S, (float)c->langevin_step_size, (float)c->precond_beta,
                                  (float)c->precond_eps, c->precond, c->noise};
    struct lpc_target target = lpc_model_target(m);
    lpc_chain_run(&tr->chain, &target, &cp, &tr->rng, B, 1, 1);

    mt->log_p_x_z0 = host_mean(tr, tr->chain.logp0, B) + prior_logp(tr, tr->chain.z0, B);
    mt->log_p_x_zT = host_mean(tr, tr->chain.logp_last, B) + prior_logp(tr, tr->chain.z, B);
    float stats[2];
    be->download(stats, tr->chain.stats, sizeof stats);
    mt->mean_abs_grad = stats[0] / ((double)c->langevin_steps * B * D);
    mt->mean_precond = stats[1] / ((double)c->langevin_steps * B * D);
    mt->loss = -mt->log_p_x_zT;
    if (check_finite(mt->log_p_x_zT, "log p(x, z_T)", tr->state.step + 1,
                     "the chain diverged: lower langevin_step_size (or enable precond)"))
        return -1;

    if (m->has_encoder) {
        int obj = c->encoder_objective;
        float w_fwd = obj == LPC_OBJ_FORWARD_KL || obj == LPC_OBJ_JEFFREYS;
        float w_rev = obj == LPC_OBJ_REVERSE_KL || obj == LPC_OBJ_JEFFREYS;
        be->encoder_head_backward(tr->d_head, tr->terms, m->head, c->init == LPC_INIT_ENCODER_SAMPLE ? tr->eps : NULL,
                                  tr->chain.grad_lik0, tr->chain.z0, tr->chain.zsum, tr->chain.zsq, (float)S, B, D,
                                  w_fwd, w_rev, 0.0f, 1.0f / B);
        mt->forward_kl = host_mean(tr, tr->terms, B);
        mt->reverse_kl = host_mean(tr, tr->terms + B, B) - mt->log_p_x_z0;
        lpc_model_encoder_backward(m, tr->d_head, B);
    }
    /* the decoder's gradient: -(1 / (B S)) sum over samples and kept states of d log p(x, z_t) / d theta */
    mt->grad_norm_decoder = finish_group(tr, LPC_GROUP_DECODER, -1.0f / ((float)B * S));
    mt->grad_norm_encoder = finish_group(tr, LPC_GROUP_ENCODER, 1.0f);
    return 0;
}

static int step_vae(struct lpc_trainer *tr, struct lpc_step_metrics *mt) {
    const struct lpc_backend *be = tr->be;
    struct lpc_model *m = &tr->model;
    const int B = tr->batch, D = m->latent;
    lpc_model_encode(m, m->x, B);
    be->normal(tr->eps, (size_t)B * D, &tr->rng);
    be->encoder_sample(tr->chain.z, m->head, tr->eps, B, D);
    lpc_model_decode(m, tr->chain.z, B);
    lpc_model_likelihood(m, m->logp, m->x, B, 1);
    lpc_model_decoder_backward(m, m->grad_z, B, 1);
    be->encoder_head_backward(tr->d_head, tr->terms, m->head, tr->eps, m->grad_z, tr->chain.z, NULL, NULL, 1.0f, B, D,
                              0.0f, 0.0f, 1.0f, 1.0f / B);
    double logp = host_mean(tr, m->logp, B);
    mt->kl = host_mean(tr, tr->terms + 2 * B, B);
    mt->elbo = logp - mt->kl;
    mt->loss = -mt->elbo;
    mt->log_p_x_z0 = mt->log_p_x_zT = logp + prior_logp(tr, tr->chain.z, B);
    if (check_finite(mt->elbo, "the ELBO", tr->state.step + 1, "lower lr or set grad_clip")) return -1;
    lpc_model_encoder_backward(m, tr->d_head, B);
    mt->grad_norm_decoder = finish_group(tr, LPC_GROUP_DECODER, -1.0f / B);
    mt->grad_norm_encoder = finish_group(tr, LPC_GROUP_ENCODER, 1.0f);
    return 0;
}

int lpc_trainer_step(struct lpc_trainer *tr, struct lpc_step_metrics *mt) {
    memset(mt, 0, sizeof *mt);
    next_batch(tr);
    lpc_arena_zero_grads(&tr->model.arena, LPC_GROUP_DECODER);
    lpc_arena_zero_grads(&tr->model.arena, LPC_GROUP_ENCODER);
    int rc = tr->cfg.algo == LPC_ALGO_VAE ? step_vae(tr, mt) : step_lpc(tr, mt);
    if (rc) return rc;
    long step = tr->state.step + 1;
    if (check_finite(mt->grad_norm_decoder, "the decoder gradient", step, "lower lr or langevin_step_size, or set grad_clip") ||
        check_finite(mt->grad_norm_encoder, "the encoder gradient", step, "lower lr_encoder, or set grad_clip") ||
        check_finite(mt->forward_kl + mt->reverse_kl, "the encoder objective", step, "lower lr_encoder or langevin_step_size"))
        return -1;
    adam_group(tr, LPC_GROUP_DECODER, mt->grad_norm_decoder, tr->cfg.lr, step);
    adam_group(tr, LPC_GROUP_ENCODER, mt->grad_norm_encoder, tr->cfg.lr_encoder, step);
    tr->state.step = step;
    tr->state.rng_offset = tr->rng.offset;
    return 0;
}

int lpc_trainer_write_samples(struct lpc_trainer *tr, const char *path) {
    const struct lpc_backend *be = tr->be;
    struct lpc_model *m = &tr->model;
    const int D = m->latent, dim = m->dim;
    const int n_rec = tr->batch >= 16 ? 16 : tr->batch >= 8 ? 8 : tr->batch, cols = n_rec < 8 ? n_rec : 8;
    const int n_prior = tr->batch < 32 ? tr->batch : 32;
    const int total = 2 * n_rec + n_prior;
    unsigned char *grid = lpc_xmalloc((size_t)total * dim);
    float *host = lpc_xmalloc((size_t)tr->batch * dim * sizeof(float));
    /* a stream of its own, so that writing samples never changes the training run */
    struct lpc_rng rng;
    lpc_rng_init(&rng, (uint64_t)tr->cfg.seed ^ 0xA5A5A5A5DEADBEEFull, 0);
    /* reconstructions of the first images of the data set, inputs above their reconstructions */
    int32_t idx[16];
    for (int i = 0; i < n_rec; i++) idx[i] = i;
    lpc_dataset_batch(tr->data, host, idx, n_rec, NULL);
    be->upload(m->x, host, (size_t)n_rec * dim * sizeof(float));
    if (m->has_encoder) {
        lpc_model_encode(m, m->x, n_rec);
        be->encoder_sample(tr->chain.z, m->head, NULL, n_rec, D);
    } else {
        be->normal(tr->chain.z, (size_t)n_rec * D, &rng);
    }
    if (tr->cfg.algo != LPC_ALGO_VAE) {
        struct lpc_chain_params cp = {(int)tr->cfg.langevin_steps, 1, (float)tr->cfg.langevin_step_size,
                                      (float)tr->cfg.precond_beta, (float)tr->cfg.precond_eps, tr->cfg.precond, 0};
        struct lpc_target target = lpc_model_target(m);
        lpc_chain_run(&tr->chain, &target, &cp, &rng, n_rec, 0, 0); /* noise-free refinement: the mode */
    }
    lpc_model_decode(m, tr->chain.z, n_rec);
    float *recon = lpc_xmalloc((size_t)n_rec * dim * sizeof(float));
    be->download(recon, m->mu, (size_t)n_rec * dim * sizeof(float));
    for (int r = 0; r < n_rec / cols; r++)
        for (int k = 0; k < cols; k++) {
            int i = r * cols + k;
            lpc_images_to_u8(grid + (size_t)(2 * r * cols + k) * dim, host + (size_t)i * dim, (size_t)dim);
            lpc_images_to_u8(grid + (size_t)((2 * r + 1) * cols + k) * dim, recon + (size_t)i * dim, (size_t)dim);
        }
    /* prior samples: the decoder's mean at z ~ N(0, I) */
    be->normal(tr->chain.z, (size_t)n_prior * D, &rng);
    lpc_model_decode(m, tr->chain.z, n_prior);
    be->download(host, m->mu, (size_t)n_prior * dim * sizeof(float));
    lpc_images_to_u8(grid + (size_t)2 * n_rec * dim, host, (size_t)n_prior * dim);
    int rc = lpc_png_write_grid(path, grid, total, m->c, m->h, m->w, cols);
    lpc_rng_destroy(&rng);
    free(grid), free(host), free(recon);
    return rc;
}
