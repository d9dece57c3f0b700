/* Declarations shared by the files of the CPU backend. */
#ifndef LPC_CPU_INTERNAL_H
#define LPC_CPU_INTERNAL_H

void lpc_likelihood_cpu(float *logp, float *dmu, float *dlog_sigma, const float *x, const float *mu,
                        const float *log_sigma, int n, int dim, int kind);

void lpc_encoder_sample_cpu(float *z, const float *head, const float *eps, int n, int d);
void lpc_encoder_head_backward_cpu(float *d_head, float *terms, const float *head, const float *eps,
                                   const float *grad_lik, const float *z0, const float *zsum, const float *zsq,
                                   float n_states, int n, int d, float w_fwd, float w_rev, float w_vae, float scale);

#endif
