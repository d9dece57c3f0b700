/* Shared command-line handling: options of a subcommand and `--key value` config overrides. */
#ifndef LPC_CLI_H
#define LPC_CLI_H

#include "lpc/config.h"

/* An option of a subcommand that is not a config key. flag: takes no value. */
struct cli_option {
    const char *name;
    int flag;
    const char *help;
    const char *value; /* set when given (flags: "1") */
};

struct cli_command {
    const char *name, *summary, *usage;
    const char *sections; /* config sections it reads, for --help ("|"-separated), NULL: none */
    struct cli_option *options;
    int n_options;
};

/* Parses argv[1..] (after the subcommand): --config FILE first, then the rest over it. Config keys
 * are applied to cfg (and marked is_set); options to cmd->options. Exits 2 on a bad argument;
 * prints help and exits 0 on --help. */
void cli_parse(struct cli_command *cmd, struct lpc_config *cfg, int argc, char **argv);
const char *cli_value(const struct cli_command *cmd, const char *name);
void cli_print_help(const struct cli_command *cmd);
/* Finalizes the config or exits 2 with the message. */
void cli_finalize(struct lpc_config *cfg);

struct lpc_model;
/* Loads the config stored in a checkpoint, applies the command line's overrides of the keys in
 * `allowed` ("|"-separated), builds the model on the selected backend and loads its weights. Exits 2
 * on any problem. */
void cli_load_checkpoint(const char *dir, struct lpc_config *cfg, const struct lpc_config *given, const char *allowed,
                         int max_batch, struct lpc_model *m);

int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);

#endif
