/* Evaluation of a trained model (SPEC.md section 6, `lpc eval`): ELBO, reconstruction error and the
 * importance-weighted log-likelihood bound with K samples, in nats and bits per dimension. */
#ifndef LPC_EVAL_H
#define LPC_EVAL_H

#include "lpc/data.h"
#include "lpc/model.h"

struct lpc_eval_result {
    long images;
    int samples; /* K */
    double elbo, iwae;      /* nats per image (means over images) */
    double elbo_bpd, iwae_bpd;
    double recon_mse;       /* per pixel, on the [-1, 1] scale, decoder mean at the proposal mean */
};

/* Evaluates m (weights loaded) on d. cfg supplies eval_samples, eval_proposal, the Langevin keys and
 * the seed. */
int lpc_evaluate(struct lpc_eval_result *r, struct lpc_model *m, const struct lpc_dataset *d, const struct lpc_config *cfg);

#endif
