/* Command-line parsing shared by the subcommands (SPEC.md section 6): `--key value` and `--key=value`
 * override an INI file given by --config; unknown keys and bad values exit 2 with one line. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/backend.h"
#include "lpc/check.h"
#include "lpc/checkpoint.h"
#include "lpc/data.h"
#include "lpc/model.h"

static struct cli_option *find_option(struct cli_command *cmd, const char *name) {
    for (int i = 0; i < cmd->n_options; i++)
        if (strcmp(cmd->options[i].name, name) == 0) return &cmd->options[i];
    return NULL;
}

const char *cli_value(const struct cli_command *cmd, const char *name) {
    for (int i = 0; i < cmd->n_options; i++)
        if (strcmp(cmd->options[i].name, name) == 0) return cmd->options[i].value;
    return NULL;
}

void cli_print_help(const struct cli_command *cmd) {
    printf("usage: %s\n\n%s\n", cmd->usage, cmd->summary);
    if (cmd->n_options) {
        printf("\noptions:\n");
        for (int i = 0; i < cmd->n_options; i++)
            printf("    --%-20s %s\n", cmd->options[i].name, cmd->options[i].help);
    }
    if (cmd->sections) {
        printf("\nconfiguration (--key value, --key=value, or in an INI file given by --config FILE):\n");
        lpc_config_print_help(stdout, cmd->sections);
    }
}

/* Splits "--key=value" / "--key value"; returns the index of the last argument consumed. */
static int split_arg(int argc, char **argv, int i, char *key, size_t key_len, const char **value, int flag) {
    const char *a = argv[i] + 2, *eq = strchr(a, '=');
    if (eq) {
        snprintf(key, key_len, "%.*s", (int)(eq - a), a);
        *value = eq + 1;
        return i;
    }
    snprintf(key, key_len, "%s", a);
    if (flag) {
        *value = "1";
        return i;
    }
    if (i + 1 >= argc) lpc_die_user("--%s needs a value", key);
    *value = argv[i + 1];
    return i + 1;
}

void cli_parse(struct cli_command *cmd, struct lpc_config *cfg, int argc, char **argv) {
    char key[128];
    const char *value;
    /* --help anywhere wins */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(cmd);
            exit(0);
        }
    /* the config file first, whatever its position, so that --key value overrides it */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") != 0 && strncmp(argv[i], "--config=", 9) != 0) continue;
        if (!cmd->sections) lpc_die_user("lpc %s takes no --config", cmd->name);
        int j = split_arg(argc, argv, i, key, sizeof key, &value, 0);
        if (lpc_config_load_ini(cfg, value)) lpc_die_last_error();
        for (int k = i; k <= j; k++) argv[k] = NULL;
        i = j;
    }
    for (int i = 1; i < argc; i++) {
        if (!argv[i]) continue;
        if (strncmp(argv[i], "--", 2) != 0)
            lpc_die_user("unexpected argument '%s' (options are --key value; see lpc %s --help)", argv[i], cmd->name);
        char probe[128];
        const char *a = argv[i] + 2;
        snprintf(probe, sizeof probe, "%.*s", (int)strcspn(a, "="), a);
        struct cli_option *opt = find_option(cmd, probe);
        i = split_arg(argc, argv, i, key, sizeof key, &value, opt && opt->flag && !strchr(a, '='));
        if (opt) {
            opt->value = value;
            continue;
        }
        if (!cmd->sections) lpc_die_user("unknown option --%s (see lpc %s --help)", key, cmd->name);
        int k = lpc_config_find_key(key);
        if (k < 0) lpc_die_user("unknown key '%s' (did you mean '%s'? see lpc %s --help)", key, lpc_config_closest_key(key), cmd->name);
        if (!strstr(cmd->sections, lpc_config_keys[k].section))
            lpc_die_user("--%s does not apply to lpc %s", key, cmd->name);
        if (lpc_config_set(cfg, key, value)) lpc_die_last_error();
    }
}

void cli_finalize(struct lpc_config *cfg) {
    if (lpc_config_finalize(cfg)) lpc_die_last_error();
}

void cli_load_checkpoint(const char *dir, struct lpc_config *cfg, const struct lpc_config *given, const char *allowed,
                         int max_batch, struct lpc_model *m) {
    if (!dir) lpc_die_user("--checkpoint DIR is required (a run's checkpoint folder, e.g. runs/NAME/checkpoint)");
    if (lpc_checkpoint_load_config(dir, cfg)) lpc_die_last_error();
    for (int k = 0; k < LPC_N_KEYS; k++) {
        if (!given->is_set[k]) continue;
        const char *name = lpc_config_keys[k].name;
        size_t len = strlen(name);
        const char *hit = strstr(allowed, name);
        if (!hit || (hit != allowed && hit[-1] != '|') || (hit[len] != '|' && hit[len] != 0))
            lpc_die_user("--%s cannot be changed for a trained model (allowed here: %s)", name, allowed);
        char value[LPC_STRING_MAX + 64];
        lpc_config_set(cfg, name, lpc_config_value_string(given, k, value, sizeof value));
    }
    cli_finalize(cfg);
    const struct lpc_backend *be = lpc_backend_select(cfg);
    if (!be) lpc_die_last_error();
    lpc_backend_set_threads(cfg);
    int c, h, w;
    lpc_dataset_shape(cfg, &c, &h, &w);
    if (lpc_model_create(m, cfg, be, c, h, w, max_batch)) lpc_die_last_error();
    if (lpc_checkpoint_load(dir, &m->arena, NULL)) lpc_die_last_error();
}
