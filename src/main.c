/* lpc: subcommand dispatch (SPEC.md section 6). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lpc/check.h"
#include "lpc/config.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a model (LPC by default) on Fashion-MNIST or another data set"},
    {"sample", cmd_sample, "write prior samples of a checkpoint as PNG grid, PNG folder or .npz"},
    {"eval", cmd_eval, "test-set ELBO, reconstruction error and importance-weighted log-likelihood"},
    {"bench", cmd_bench, "Langevin steps/s and training iterations/s of a model, as JSON lines"},
    {"data", cmd_data, "validate and summarise a data set, write a preview grid"},
};

static void usage(FILE *out) {
    fprintf(out, "lpc: Langevin Predictive Coding for deep generative image models\n\n"
                 "usage: lpc COMMAND [--config FILE] [--key value ...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "    %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`lpc COMMAND --help` shows a command's options. Configuration keys (INI sections in brackets):\n");
    lpc_config_print_help(out, NULL);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? LPC_EXIT_USER : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    lpc_die_user("unknown command '%s' (commands: train, sample, eval, bench, data; see lpc --help)", argv[1]);
}
