/* `lpc eval` (SPEC.md section 6): test-set ELBO, reconstruction error and importance-weighted
 * log-likelihood of a checkpoint, as one JSON object. */
#include <stdio.h>

#include "cli/cli.h"
#include "lpc/check.h"
#include "lpc/data.h"
#include "lpc/eval.h"
#include "lpc/model.h"

int cmd_eval(int argc, char **argv) {
    struct cli_option options[] = {{"checkpoint", 0, "checkpoint folder of a run (runs/NAME/checkpoint)", NULL}};
    struct cli_command cmd = {"eval", "Evaluates a trained model on a split of its data set (test by default) and "
                              "prints JSON: ELBO and IWAE bound in nats and bits/dim, reconstruction MSE.",
                              "lpc eval --checkpoint DIR [--eval_samples K] [--eval_proposal encoder|langevin] [--limit N]",
                              "data|train|eval", options, 1};
    struct lpc_config given, cfg;
    lpc_config_defaults(&given);
    cli_parse(&cmd, &given, argc, argv);
    if (!given.is_set[LPC_KEY_split]) lpc_config_set(&given, "split", "test");
    struct lpc_model m;
    cli_load_checkpoint(cli_value(&cmd, "checkpoint"), &cfg, &given,
                        "split|limit|data_path|eval_samples|eval_proposal|seed|device|threads|math|deterministic", 100, &m);
    struct lpc_dataset d;
    if (lpc_dataset_load(&d, &cfg)) lpc_die_last_error();
    if (d.c != m.c || d.h != m.h || d.w != m.w)
        lpc_die_user("the data set's images are %dx%dx%d but the model expects %dx%dx%d", d.c, d.h, d.w, m.c, m.h, m.w);
    struct lpc_eval_result r;
    if (lpc_evaluate(&r, &m, &d, &cfg)) lpc_die_last_error();
    printf("{\"split\":\"%s\",\"images\":%ld,\"samples\":%d,\"proposal\":\"%s\",\"likelihood\":\"%s\","
           "\"elbo_nats\":%.6f,\"iwae_nats\":%.6f,\"elbo_bits_per_dim\":%.6f,\"iwae_bits_per_dim\":%.6f,"
           "\"recon_mse\":%.6g}\n",
           lpc_config_choice(LPC_KEY_split, cfg.split), r.images, r.samples,
           m.has_encoder ? lpc_config_choice(LPC_KEY_eval_proposal, cfg.eval_proposal) : "langevin",
           lpc_config_choice(LPC_KEY_likelihood, cfg.likelihood), r.elbo, r.iwae, r.elbo_bpd, r.iwae_bpd, r.recon_mse);
    lpc_dataset_free(&d);
    lpc_model_destroy(&m);
    return 0;
}
