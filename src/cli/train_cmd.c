/* `lpc train` (SPEC.md section 6). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lpc/check.h"
#include "lpc/checkpoint.h"
#include "lpc/train.h"

/* Keys that may change when a run is resumed: how long it runs and how it reports, not what it computes. */
static const char *resumable_keys[] = {"iters", "epochs", "log_every", "sample_every", "checkpoint_every", "threads", "device"};

int cmd_train(int argc, char **argv) {
    struct cli_option options[] = {
        {"resume", 0, "continue the run in DIR from its checkpoint (bitwise as if never stopped)", NULL},
        {"overwrite", 1, "write into an existing run directory", NULL},
    };
    struct cli_command cmd = {"train", "Trains a model and writes runs/NAME/: config.ini, metrics.jsonl, timing.jsonl, "
                              "samples/step_NNNNNN.png, checkpoint/.",
                              "lpc train [--config FILE] [--key value ...] [--resume DIR] [--overwrite]",
                              "data|model|langevin|train", options, 2};
    struct lpc_config cfg, given;
    lpc_config_defaults(&cfg);
    cli_parse(&cmd, &cfg, argc, argv);
    struct lpc_train_options opt = {cli_value(&cmd, "resume"), cli_value(&cmd, "overwrite") != NULL};
    if (opt.resume_dir) {
        given = cfg;
        char dir[LPC_STRING_MAX + 32];
        snprintf(dir, sizeof dir, "%s/checkpoint", opt.resume_dir);
        if (lpc_checkpoint_load_config(dir, &cfg)) lpc_die_last_error();
        for (int k = 0; k < LPC_N_KEYS; k++) {
            if (!given.is_set[k]) continue;
            int allowed = 0;
            for (size_t r = 0; r < sizeof resumable_keys / sizeof *resumable_keys; r++)
                allowed |= strcmp(lpc_config_keys[k].name, resumable_keys[r]) == 0;
            if (!allowed)
                lpc_die_user("--%s cannot change when resuming (only iters, epochs, log_every, sample_every, "
                             "checkpoint_every, threads and device can)", lpc_config_keys[k].name);
            char value[LPC_STRING_MAX + 64];
            lpc_config_set(&cfg, lpc_config_keys[k].name, lpc_config_value_string(&given, k, value, sizeof value));
        }
    }
    cli_finalize(&cfg);
    int rc = lpc_train_run(&cfg, &opt);
    if (rc < 0) lpc_die_last_error();
    return rc;
}
