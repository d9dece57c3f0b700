/* The likelihoods p(x | mu, sigma) of SPEC.md section 1, one pixel at a time, in double precision:
 * the CPU backend's reference and what the tests check the batched ops against. */
#ifndef LPC_LIKELIHOOD_H
#define LPC_LIKELIHOOD_H

#define LPC_LOG_2PI 1.8378770664093454836

/* Half of a bin of the 256-level discretisation of [-1, 1]: bins are 2/255 wide. */
#define LPC_BIN_HALF_WIDTH (1.0 / 255.0)

/* log N(x; mu, sigma^2) and its derivatives w.r.t. mu and log sigma. */
double lpc_gaussian_logp(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma);

/* log of the probability of the bin holding x under N(mu, sigma^2), the edge bins (x <= -1 + half bin,
 * x >= 1 - half bin) extended to -inf / +inf (Ho et al. 2020); computed stably in the tails. */
double lpc_discretized_gaussian_logp(double x, double mu, double log_sigma, double *dmu, double *dlog_sigma);

#endif
