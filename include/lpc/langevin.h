/* The chain driver (SPEC.md section 2.1), backend-neutral: T preconditioned Langevin steps for a
 * batch of chains, each sample its own chain, with the target's score supplied through an interface
 * (the decoder's likelihood in training; Gaussian targets with known posteriors in the tests). */
#ifndef LPC_LANGEVIN_H
#define LPC_LANGEVIN_H

#include "lpc/ops.h"
#include "lpc/rng.h"

/* The target p(x, z) = p(x | z) N(z; 0, I): score writes grad_lik = d log p(x|z)/dz [n, d] and
 * logp = log p(x|z) [n] (backend memory) at z; with param_grads it also adds d log p(x|z)/d theta to
 * the target's parameter gradients. The N(0, I) prior's gradient is added by the update itself. */
struct lpc_target {
    void *ctx;
    void (*score)(void *ctx, float *grad_lik, float *logp, const float *z, int n, int param_grads);
};

struct lpc_chain_params {
    int steps;         /* T */
    int theta_samples; /* S: parameter gradients at z_{T-S+1}, ..., z_T */
    float step_size, beta, eps;
    int precond, noise;
};

struct lpc_chain {
    const struct lpc_backend *be;
    int max_n, d;
    float *z;          /* [n, d] the chain's state: set z_0 before lpc_chain_run, holds z_T after */
    float *z0;         /* copy of z_0 */
    float *precond_v;  /* second moments */
    float *xi;         /* noise of all T steps [T, n, d] */
    float *grad_lik;   /* score at the current state */
    float *grad_lik0;  /* score at z_0 (g_1 minus the prior term), for the reverse-KL objective */
    float *zsum, *zsq; /* sums over the S states, for the forward-KL objective */
    float *logp0, *logp_last; /* log p(x | z_0), log p(x | z_T) [n] */
    float *stats;      /* [2]: sum |g|, sum G over all steps and elements */
    int max_steps;
    /* Replayable graphs of the T-step loop (backends that have them), one per kind of call. A kind
     * runs uncaptured the first time, which sets up every library plan and workspace, and is captured
     * the second time. */
    int use_graphs;
    struct lpc_chain_graph {
        int n, param_grads, final_pass, calls;
        struct lpc_chain_params p;
        void *graph;
    } graphs[8];
    int n_graphs;
};

void lpc_chain_create(struct lpc_chain *c, const struct lpc_backend *be, int max_n, int d, int max_steps);
void lpc_chain_destroy(struct lpc_chain *c);
/* Runs T steps from c->z (= z_0) for n chains; with param_grads the target accumulates its parameter
 * gradient at each of the last S states (S passes: T-1 inside the loop at most, plus the final one at
 * z_T). The final pass is skipped when final_pass is 0 (pure sampling, as benchmarked). */
void lpc_chain_run(struct lpc_chain *c, const struct lpc_target *target, const struct lpc_chain_params *p,
                   struct lpc_rng *rng, int n, int param_grads, int final_pass);

#endif
