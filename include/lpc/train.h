/* The training loop (SPEC.md sections 2 and 3): lpc, vae and pc on any backend, with seeded data order,
 * Adam(W), gradient clipping, the NaN/Inf guard, metrics, sample grids and exact resume. */
#ifndef LPC_TRAIN_H
#define LPC_TRAIN_H

#include <stdint.h>

#include "lpc/checkpoint.h"
#include "lpc/config.h"
#include "lpc/data.h"
#include "lpc/langevin.h"
#include "lpc/model.h"
#include "lpc/rng.h"

/* What one optimiser step measured (means over the batch, per sample). */
struct lpc_step_metrics {
    double log_p_x_z0, log_p_x_zT; /* log p(x, z) at the warm start and after the chain (vae: at z_0) */
    double forward_kl, reverse_kl; /* encoder objective terms (forward: -mean_t log q(z_t|x)) */
    double kl, elbo;               /* vae */
    double loss;                   /* what the decoder minimises: -log p(x, z) averaged over the states */
    double mean_abs_grad, mean_precond;
    double grad_norm_decoder, grad_norm_encoder; /* before clipping */
};

struct lpc_trainer {
    struct lpc_config cfg;
    const struct lpc_backend *be;
    const struct lpc_dataset *data;
    struct lpc_model model;
    struct lpc_chain chain;
    struct lpc_rng rng;
    struct lpc_train_state state;
    int batch, theta_samples;
    float *eps, *d_head, *terms, *sq; /* backend buffers */
    float *host_x, *host_n; /* host staging */
    int32_t *batch_idx;
    unsigned char *batch_flip;
};

int lpc_trainer_create(struct lpc_trainer *tr, const struct lpc_config *cfg, const struct lpc_backend *be,
                       const struct lpc_dataset *data);
void lpc_trainer_destroy(struct lpc_trainer *tr);
/* One optimiser step. Returns 0, or -1 (with the message in lpc_last_error()) when a term became NaN
 * or Inf; the parameters are then still those of the last good step. */
int lpc_trainer_step(struct lpc_trainer *tr, struct lpc_step_metrics *out);
/* Writes a grid: input images beside their reconstructions, then prior samples. */
int lpc_trainer_write_samples(struct lpc_trainer *tr, const char *path);
/* The model's decoder target (for the chain and for evaluation): ctx is a struct lpc_model whose
 * x buffer holds the images. */
struct lpc_target lpc_model_target(struct lpc_model *m);

/* The whole run of `lpc train`: run directory, logging, checkpoints, Ctrl-C, resume. */
struct lpc_train_options {
    const char *resume_dir; /* NULL: a new run */
    int overwrite;
};
int lpc_train_run(struct lpc_config *cfg, const struct lpc_train_options *opt);

#endif
