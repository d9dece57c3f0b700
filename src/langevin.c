/* The chain driver of SPEC.md section 2.1. For t = 1..T: g_t = grad log p(x, z_{t-1}) (one forward +
 * backward of the target), v_t = beta v_{t-1} + (1 - beta) g_t^2, G_t = 1 / (sqrt(v_t / (1 - beta^t)) + eps),
 * z_t = z_{t-1} + gamma G_t g_t + sqrt(2 gamma G_t) xi_t. The Riemannian correction term of a
 * position-dependent preconditioner is omitted, as in the paper and in preconditioned SGLD. The pass
 * that computes g_{t+1} at z_t also yields the parameter gradient at z_t, so the last S states cost no
 * extra passes except the final one at z_T. */
#include "lpc/langevin.h"

#include <string.h>

void lpc_chain_create(struct lpc_chain *c, const struct lpc_backend *be, int max_n, int d, int max_steps) {
    memset(c, 0, sizeof *c);
    c->be = be;
    c->max_n = max_n, c->d = d, c->max_steps = max_steps;
    size_t nd = (size_t)max_n * d * sizeof(float);
    c->z = be->alloc(lpc_rng_advance((size_t)max_n * d) * sizeof(float)); /* also a target of normal() */
    c->z0 = be->alloc(nd);
    c->precond_v = be->alloc(nd);
    c->xi = be->alloc(lpc_rng_advance((size_t)max_steps * max_n * d) * sizeof(float));
    c->grad_lik = be->alloc(nd);
    c->grad_lik0 = be->alloc(nd);
    c->zsum = be->alloc(nd);
    c->zsq = be->alloc(nd);
    c->logp0 = be->alloc((size_t)max_n * sizeof(float));
    c->logp_last = be->alloc((size_t)max_n * sizeof(float));
    c->stats = be->alloc(2 * sizeof(float));
    c->use_graphs = be->graph_launch != NULL;
}

void lpc_chain_destroy(struct lpc_chain *c) {
    const struct lpc_backend *be = c->be;
    if (!be) return;
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graphs[i].graph) be->graph_destroy(c->graphs[i].graph);
    float *bufs[] = {c->z, c->z0, c->precond_v, c->xi, c->grad_lik, c->grad_lik0, c->zsum, c->zsq, c->logp0,
                     c->logp_last, c->stats};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) be->free(bufs[i]);
    memset(c, 0, sizeof *c);
}

/* The loop of T steps and the final pass: everything after the noise is drawn. */
static void chain_loop(struct lpc_chain *c, const struct lpc_target *target, const struct lpc_chain_params *p, int n,
                       int param_grads, int final_pass) {
    const struct lpc_backend *be = c->be;
    const size_t nd = (size_t)n * c->d;
    const int T = p->steps, first_kept = T - p->theta_samples + 1; /* states z_first_kept .. z_T */
    be->copy(c->z0, c->z, nd * sizeof(float));
    be->fill(c->precond_v, 0.0f, nd);
    be->fill(c->zsum, 0.0f, nd);
    be->fill(c->zsq, 0.0f, nd);
    be->fill(c->stats, 0.0f, 2);
    struct lpc_langevin_params lp = {p->step_size, p->beta, p->eps, p->precond, p->noise, 0, 0};
    if (be->params_fixed_begin) be->params_fixed_begin(); /* the chain only reads the target's weights */
    for (int t = 1; t <= T; t++) {
        int kept = t - 1 >= first_kept; /* is z_{t-1} one of the last S states? */
        float *logp = t == 1 ? c->logp0 : c->logp_last;
        target->score(target->ctx, c->grad_lik, logp, c->z, n, param_grads && kept);
        if (t == 1) be->copy(c->grad_lik0, c->grad_lik, nd * sizeof(float));
        lp.t = t;
        lp.accumulate = t >= first_kept;
        be->langevin_update(c->z, c->precond_v, c->stats, c->zsum, c->zsq, c->grad_lik,
                            p->noise ? c->xi + (size_t)(t - 1) * nd : NULL, nd, &lp);
    }
    if (final_pass) target->score(target->ctx, c->grad_lik, c->logp_last, c->z, n, param_grads);
    if (be->params_fixed_end) be->params_fixed_end();
}

static struct lpc_chain_graph *graph_slot(struct lpc_chain *c, const struct lpc_chain_params *p, int n, int param_grads,
                                          int final_pass) {
    for (int i = 0; i < c->n_graphs; i++) {
        struct lpc_chain_graph *g = &c->graphs[i];
        if (g->n == n && g->param_grads == param_grads && g->final_pass == final_pass && memcmp(&g->p, p, sizeof *p) == 0)
            return g;
    }
    if (c->n_graphs == (int)(sizeof c->graphs / sizeof *c->graphs)) return NULL; /* run uncaptured */
    struct lpc_chain_graph *g = &c->graphs[c->n_graphs++];
    memset(g, 0, sizeof *g);
    g->n = n, g->param_grads = param_grads, g->final_pass = final_pass, g->p = *p;
    return g;
}

void lpc_chain_run(struct lpc_chain *c, const struct lpc_target *target, const struct lpc_chain_params *p,
                   struct lpc_rng *rng, int n, int param_grads, int final_pass) {
    const struct lpc_backend *be = c->be;
    /* the noise of all T steps in one call, outside any graph: its offset changes every minibatch */
    if (p->noise) be->normal(c->xi, (size_t)p->steps * n * c->d, rng);
    struct lpc_chain_graph *g = c->use_graphs ? graph_slot(c, p, n, param_grads, final_pass) : NULL;
    if (!g || g->calls++ == 0) {
        chain_loop(c, target, p, n, param_grads, final_pass);
        return;
    }
    if (!g->graph) {
        be->graph_begin();
        chain_loop(c, target, p, n, param_grads, final_pass);
        g->graph = be->graph_end();
    }
    be->graph_launch(g->graph);
}
