/* Configuration: defaults, INI files (libinih), --key value overrides, validation (SPEC.md section 6).
 * Everything is driven by the one table LPC_CONFIG_KEYS in include/lpc/config.h. */
#include "lpc/config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"

#define LPC_KEY_INFO(section, name, type, def, lo, hi, choices, help) \
    {#section, #name, LPC_T_##type, def, lo, hi, choices, help},
const struct lpc_key_info lpc_config_keys[LPC_N_KEYS] = {LPC_CONFIG_KEYS(LPC_KEY_INFO)};
#undef LPC_KEY_INFO

#define LPC_KEY_OFFSET(section, name, ...) offsetof(struct lpc_config, name),
static const size_t key_offset[LPC_N_KEYS] = {LPC_CONFIG_KEYS(LPC_KEY_OFFSET)};
#undef LPC_KEY_OFFSET

/* Where each INTLIST keeps its count: the field that follows the array. */
#define LPC_COUNT_OFFSET_INT(name) 0
#define LPC_COUNT_OFFSET_FLOAT(name) 0
#define LPC_COUNT_OFFSET_BOOL(name) 0
#define LPC_COUNT_OFFSET_ENUM(name) 0
#define LPC_COUNT_OFFSET_STRING(name) 0
#define LPC_COUNT_OFFSET_INTLIST(name) offsetof(struct lpc_config, name##_count)
#define LPC_KEY_COUNT_OFFSET(section, name, type, ...) LPC_COUNT_OFFSET_##type(name),
static const size_t count_offset[LPC_N_KEYS] = {LPC_CONFIG_KEYS(LPC_KEY_COUNT_OFFSET)};
#undef LPC_KEY_COUNT_OFFSET

static void *field(struct lpc_config *cfg, int key) { return (char *)cfg + key_offset[key]; }
static const void *cfield(const struct lpc_config *cfg, int key) { return (const char *)cfg + key_offset[key]; }

int lpc_config_find_key(const char *name) {
    for (int k = 0; k < LPC_N_KEYS; k++)
        if (strcmp(lpc_config_keys[k].name, name) == 0) return k;
    return -1;
}

static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63) la = 63;
    if (lb > 63) lb = 63;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *lpc_config_closest_key(const char *name) {
    int best = -1, best_d = 1 << 30;
    for (int k = 0; k < LPC_N_KEYS; k++) {
        int d = edit_distance(name, lpc_config_keys[k].name);
        if (d < best_d) best_d = d, best = k;
    }
    return lpc_config_keys[best].name;
}

const char *lpc_config_choice(int key, int value) {
    /* a few rotating buffers, so that several names can appear in one printf */
    static _Thread_local char bufs[8][64];
    static _Thread_local int next;
    char *buf = bufs[next++ % 8];
    const char *s = lpc_config_keys[key].choices;
    for (int i = 0; s && i < value; i++) {
        s = strchr(s, '|');
        if (s) s++;
    }
    if (!s) return "?";
    size_t n = strcspn(s, "|");
    if (n >= sizeof bufs[0]) n = sizeof bufs[0] - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

static int choice_index(const char *choices, const char *value) {
    int i = 0;
    for (const char *s = choices; s; i++) {
        size_t n = strcspn(s, "|");
        if (strlen(value) == n && strncmp(s, value, n) == 0) return i;
        s = strchr(s, '|');
        if (s) s++;
    }
    return -1;
}

static int parse_long(const char *text, long *out) {
    char *end;
    errno = 0;
    double d = strtod(text, &end); /* accepts 1e5 for counts */
    if (end == text || *end || errno || d != floor(d) || fabs(d) > 9.2e18) return -1;
    *out = (long)d;
    return 0;
}

static int set_key(struct lpc_config *cfg, int k, const char *value) {
    const struct lpc_key_info *ki = &lpc_config_keys[k];
    char *end;
    while (*value == ' ' || *value == '\t') value++;
    switch (ki->type) {
    case LPC_T_INT: {
        long v;
        if (parse_long(value, &v))
            return lpc_fail("%s: '%s' is not an integer (allowed: %.0f to %.0f)", ki->name, value, ki->min, ki->max);
        if (v < ki->min || v > ki->max)
            return lpc_fail("%s = %ld is out of range (allowed: %.0f to %.0f)", ki->name, v, ki->min, ki->max);
        *(long *)field(cfg, k) = v;
        break;
    }
    case LPC_T_FLOAT: {
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v))
            return lpc_fail("%s: '%s' is not a number (allowed: %g to %g)", ki->name, value, ki->min, ki->max);
        if (v < ki->min || v > ki->max)
            return lpc_fail("%s = %g is out of range (allowed: %g to %g)", ki->name, v, ki->min, ki->max);
        *(double *)field(cfg, k) = v;
        break;
    }
    case LPC_T_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "on"))
            *(int *)field(cfg, k) = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "off"))
            *(int *)field(cfg, k) = 0;
        else
            return lpc_fail("%s: '%s' is not a boolean (allowed: true, false)", ki->name, value);
        break;
    case LPC_T_ENUM: {
        int i = choice_index(ki->choices, value);
        if (i < 0) return lpc_fail("%s: '%s' is not allowed (allowed: %s)", ki->name, value, ki->choices);
        *(int *)field(cfg, k) = i;
        break;
    }
    case LPC_T_STRING:
        if (strlen(value) >= LPC_STRING_MAX)
            return lpc_fail("%s: value is longer than %d characters", ki->name, LPC_STRING_MAX - 1);
        strcpy((char *)field(cfg, k), value);
        break;
    case LPC_T_INTLIST: {
        int *list = (int *)field(cfg, k), n = 0;
        const char *s = value;
        while (*s) {
            if (n == LPC_LIST_MAX)
                return lpc_fail("%s: more than %d values in '%s'", ki->name, LPC_LIST_MAX, value);
            errno = 0;
            long v = strtol(s, &end, 10);
            if (end == s || errno || (*end && *end != ','))
                return lpc_fail("%s: '%s' is not a comma-separated list of integers (e.g. 32,64,128)", ki->name,
                                value);
            if (v < ki->min || v > ki->max)
                return lpc_fail("%s: %ld is out of range (allowed: %.0f to %.0f)", ki->name, v, ki->min, ki->max);
            list[n++] = (int)v;
            s = *end ? end + 1 : end;
        }
        if (n == 0) return lpc_fail("%s: needs at least one value (e.g. 32,64)", ki->name);
        *(int *)((char *)cfg + count_offset[k]) = n;
        break;
    }
    }
    return 0;
}

int lpc_config_set(struct lpc_config *cfg, const char *key, const char *value) {
    int k = lpc_config_find_key(key);
    if (k < 0) return lpc_fail("unknown key '%s' (did you mean '%s'?)", key, lpc_config_closest_key(key));
    if (set_key(cfg, k, value)) return -1;
    cfg->is_set[k] = 1;
    return 0;
}

void lpc_config_defaults(struct lpc_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int k = 0; k < LPC_N_KEYS; k++)
        if (set_key(cfg, k, lpc_config_keys[k].default_value))
            lpc_die_internal("config", lpc_config_keys[k].name, __func__, __FILE__, __LINE__, lpc_last_error());
}

struct ini_state {
    struct lpc_config *cfg;
    const char *origin;
    int failed;
    char message[600];
};

static int config_ini_handler(void *user, const char *section, const char *name, const char *value) {
    struct ini_state *st = user;
    if (st->failed) return 1;
    int k = lpc_config_find_key(name);
    if (k < 0) {
        snprintf(st->message, sizeof st->message, "unknown key '%s' (did you mean '%s'?)", name,
                 lpc_config_closest_key(name));
    } else if (strcmp(section, lpc_config_keys[k].section) != 0) {
        snprintf(st->message, sizeof st->message, "key '%s' belongs in section [%s], not [%s]", name,
                 lpc_config_keys[k].section, section);
    } else if (lpc_config_set(st->cfg, name, value)) {
        snprintf(st->message, sizeof st->message, "%s", lpc_last_error());
    } else {
        return 1;
    }
    st->failed = 1;
    return 0;
}

static int finish_ini(struct ini_state *st, int rc) {
    if (rc == -1) return lpc_fail("%s: cannot open the config file: %s", st->origin, strerror(errno));
    if (rc == -2) return lpc_fail("%s: out of memory while reading", st->origin);
    if (rc > 0) {
        if (st->failed) return lpc_fail("%s:%d: %s", st->origin, rc, st->message);
        return lpc_fail("%s:%d: not valid INI syntax (expected [section] or key = value)", st->origin, rc);
    }
    return 0;
}

int lpc_config_load_ini(struct lpc_config *cfg, const char *path) {
    struct ini_state st = {cfg, path, 0, {0}};
    return finish_ini(&st, ini_parse(path, config_ini_handler, &st));
}

int lpc_config_load_ini_string(struct lpc_config *cfg, const char *text, const char *origin) {
    struct ini_state st = {cfg, origin, 0, {0}};
    return finish_ini(&st, ini_parse_string(text, config_ini_handler, &st));
}

int lpc_config_finalize(struct lpc_config *c) {
    if (c->algo == LPC_ALGO_PC) {
        if (!c->is_set[LPC_KEY_noise]) c->noise = 0;
        if (!c->is_set[LPC_KEY_precond]) c->precond = 0;
    }
    if (c->init == LPC_INIT_PRIOR) {
        if (c->algo == LPC_ALGO_VAE) return lpc_fail("init = prior: the vae algorithm needs its encoder (use algo = lpc)");
        if (c->is_set[LPC_KEY_encoder_objective] && c->encoder_objective != LPC_OBJ_NONE)
            return lpc_fail("encoder_objective = %s: init = prior builds no encoder; use encoder_objective = none",
                            lpc_config_choice(LPC_KEY_encoder_objective, c->encoder_objective));
        c->encoder_objective = LPC_OBJ_NONE;
    } else if (c->encoder_objective == LPC_OBJ_NONE && c->algo != LPC_ALGO_VAE) {
        return lpc_fail("encoder_objective = none leaves the warm-start encoder untrained; use init = prior, or "
                        "jeffreys, forward_kl or reverse_kl");
    }
    if (c->theta_samples > c->langevin_steps)
        return lpc_fail("theta_samples = %ld exceeds langevin_steps = %ld (allowed: 0 to langevin_steps)",
                        c->theta_samples, c->langevin_steps);
    if (c->split == LPC_SPLIT_VALID && c->dataset != LPC_DATASET_CELEBA)
        return lpc_fail("split = valid: only celeba has a validation split (allowed: train, test)");
    if (c->split == LPC_SPLIT_EXTRA && c->dataset != LPC_DATASET_SVHN)
        return lpc_fail("split = extra: only svhn has an extra split (allowed: train, test)");
    if (c->image_size != atol(lpc_config_keys[LPC_KEY_image_size].default_value) && c->dataset != LPC_DATASET_CELEBA &&
        c->dataset != LPC_DATASET_FOLDER)
        return lpc_fail("image_size = %ld: %s has a fixed image size; image_size applies to celeba and folder only",
                        c->image_size, lpc_config_choice(LPC_KEY_dataset, c->dataset));
    if (c->crop != 0 && c->crop < c->image_size && (c->dataset == LPC_DATASET_CELEBA || c->dataset == LPC_DATASET_FOLDER))
        return lpc_fail("crop = %ld is smaller than image_size = %ld (crop, then resize down)", c->crop, c->image_size);
    if (c->channels_count > 6) return lpc_fail("channels: at most 6 stride-2 layers (got %d)", c->channels_count);
    if (c->dataset == LPC_DATASET_FOLDER && !c->data_path[0])
        return lpc_fail("data_path: dataset = folder needs data_path (a directory of PNG/JPEG/BMP images)");
    return 0;
}

const char *lpc_config_value_string(const struct lpc_config *cfg, int k, char *buf, size_t len) {
    const void *f = cfield(cfg, k);
    switch (lpc_config_keys[k].type) {
    case LPC_T_INT: snprintf(buf, len, "%ld", *(const long *)f); break;
    case LPC_T_FLOAT: snprintf(buf, len, "%.17g", *(const double *)f); break;
    case LPC_T_BOOL: snprintf(buf, len, "%s", *(const int *)f ? "true" : "false"); break;
    case LPC_T_ENUM: snprintf(buf, len, "%s", lpc_config_choice(k, *(const int *)f)); break;
    case LPC_T_STRING: snprintf(buf, len, "%s", (const char *)f); break;
    case LPC_T_INTLIST: {
        const int *list = f;
        int n = *(const int *)((const char *)cfg + count_offset[k]);
        size_t used = 0;
        buf[0] = 0;
        for (int i = 0; i < n && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, i ? ",%d" : "%d", list[i]);
        break;
    }
    }
    return buf;
}

char *lpc_config_to_ini(const struct lpc_config *cfg) {
    size_t cap = 16384, used = 0;
    char *out = lpc_xmalloc(cap);
    out[0] = 0;
    const char *section = "";
    for (int k = 0; k < LPC_N_KEYS; k++) {
        char value[LPC_STRING_MAX + 64];
        lpc_config_value_string(cfg, k, value, sizeof value);
        if (strlen(value) + 700 > cap - used) out = lpc_xrealloc(out, cap *= 2);
        if (strcmp(section, lpc_config_keys[k].section) != 0) {
            section = lpc_config_keys[k].section;
            used += (size_t)snprintf(out + used, cap - used, "%s[%s]\n", used ? "\n" : "", section);
        }
        used += (size_t)snprintf(out + used, cap - used, "%s = %s\n", lpc_config_keys[k].name, value);
    }
    return out;
}

static int section_selected(const char *sections, const char *section) {
    if (!sections) return 1;
    size_t n = strlen(section);
    for (const char *s = sections; s; s = strchr(s, '|') ? strchr(s, '|') + 1 : NULL)
        if (strncmp(s, section, n) == 0 && (s[n] == '|' || s[n] == 0)) return 1;
    return 0;
}

void lpc_config_print_help(FILE *out, const char *sections) {
    const char *section = "";
    for (int k = 0; k < LPC_N_KEYS; k++) {
        const struct lpc_key_info *ki = &lpc_config_keys[k];
        if (!section_selected(sections, ki->section)) continue;
        if (strcmp(section, ki->section) != 0) fprintf(out, "\n  [%s]\n", section = ki->section);
        char allowed[160];
        switch (ki->type) {
        case LPC_T_INT: snprintf(allowed, sizeof allowed, "integer %.0f..%.0f", ki->min, ki->max); break;
        case LPC_T_FLOAT: snprintf(allowed, sizeof allowed, "number %g..%g", ki->min, ki->max); break;
        case LPC_T_BOOL: snprintf(allowed, sizeof allowed, "true|false"); break;
        case LPC_T_ENUM: snprintf(allowed, sizeof allowed, "%s", ki->choices); break;
        case LPC_T_STRING: snprintf(allowed, sizeof allowed, "text"); break;
        case LPC_T_INTLIST: snprintf(allowed, sizeof allowed, "list of integers %.0f..%.0f", ki->min, ki->max); break;
        }
        fprintf(out, "    --%-20s %s (default: %s)\n    %-22s   [%s]\n", ki->name, ki->help,
                ki->default_value[0] ? ki->default_value : "\"\"", "", allowed);
    }
}
