/* Checkpoints as safetensors (SPEC.md section 7). */
#include "lpc/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/fileutil.h"
#include "lpc/safetensors.h"

#define MAX_CHECKPOINT_BYTES (16ull << 30)
#define FORMAT_NAME "lpc-checkpoint-1"

static void path_in(char *out, size_t len, const char *dir, const char *file) { snprintf(out, len, "%s/%s", dir, file); }

static struct lpc_st_tensor tensor_of(const char *name, enum lpc_st_dtype dtype, int ndim, const int64_t *shape,
                                      const void *data) {
    struct lpc_st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.dtype = dtype;
    t.ndim = ndim;
    size_t count = 1;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], count *= (size_t)shape[i];
    t.data = data;
    t.nbytes = count * lpc_st_dtype_size(dtype);
    return t;
}

static void param_shape(const struct lpc_param_info *p, int64_t *shape) {
    for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
}

int lpc_checkpoint_save(const char *dir, const struct lpc_arena *a, const struct lpc_config *cfg,
                        const struct lpc_train_state *st) {
    if (lpc_mkdirs(dir)) return -1;
    const struct lpc_param_table *t = &a->table;
    size_t bytes = t->total * sizeof(float);
    float *params = lpc_xmalloc(bytes), *m = lpc_xmalloc(bytes), *v = lpc_xmalloc(bytes);
    a->be->download(params, a->params, bytes);
    a->be->download(m, a->adam_m, bytes);
    a->be->download(v, a->adam_v, bytes);
    char *ini = lpc_config_to_ini(cfg), step_text[32], path[LPC_STRING_MAX + 64];
    snprintf(step_text, sizeof step_text, "%ld", st ? st->step : 0L);
    struct lpc_st_meta meta[] = {{"format", FORMAT_NAME}, {"config", ini}, {"step", step_text}};
    struct lpc_st_tensor *ts = lpc_xcalloc((size_t)2 * t->count + 8, sizeof *ts);
    int64_t shape[4];
    for (int i = 0; i < t->count; i++) {
        param_shape(&t->params[i], shape);
        ts[i] = tensor_of(t->params[i].name, LPC_ST_F32, t->params[i].ndim, shape, params + t->params[i].offset);
    }
    path_in(path, sizeof path, dir, "model.safetensors");
    int rc = lpc_safetensors_write(path, ts, t->count, meta, 3);
    if (rc == 0 && st) {
        int n = 0;
        char names[2 * LPC_MAX_PARAMS][LPC_ST_NAME_MAX];
        for (int i = 0; i < t->count; i++) {
            param_shape(&t->params[i], shape);
            snprintf(names[n], LPC_ST_NAME_MAX, "adam_m.%s", t->params[i].name);
            ts[n] = tensor_of(names[n], LPC_ST_F32, t->params[i].ndim, shape, m + t->params[i].offset), n++;
            snprintf(names[n], LPC_ST_NAME_MAX, "adam_v.%s", t->params[i].name);
            ts[n] = tensor_of(names[n], LPC_ST_F32, t->params[i].ndim, shape, v + t->params[i].offset), n++;
        }
        int64_t one[1] = {1}, order_shape[1] = {st->n_order};
        int64_t scalars[6] = {st->step, (int64_t)st->rng_seed, (int64_t)st->rng_offset, (int64_t)st->data_rng,
                              st->epoch, st->position};
        ts[n++] = tensor_of("step", LPC_ST_I64, 1, one, &scalars[0]);
        ts[n++] = tensor_of("rng.seed", LPC_ST_I64, 1, one, &scalars[1]);
        ts[n++] = tensor_of("rng.offset", LPC_ST_I64, 1, one, &scalars[2]);
        ts[n++] = tensor_of("data.rng", LPC_ST_I64, 1, one, &scalars[3]);
        ts[n++] = tensor_of("data.epoch", LPC_ST_I64, 1, one, &scalars[4]);
        ts[n++] = tensor_of("data.position", LPC_ST_I64, 1, one, &scalars[5]);
        ts[n++] = tensor_of("data.order", LPC_ST_I32, 1, order_shape, st->order);
        path_in(path, sizeof path, dir, "state.safetensors");
        rc = lpc_safetensors_write(path, ts, n, meta + 2, 1);
    }
    free(ts), free(ini), free(params), free(m), free(v);
    return rc;
}

static int open_model(struct lpc_st_file *f, const char *dir) {
    char path[LPC_STRING_MAX + 64];
    path_in(path, sizeof path, dir, "model.safetensors");
    if (!lpc_exists(path)) return lpc_fail("%s: no checkpoint here (expected %s)", dir, path);
    if (lpc_safetensors_read(f, path, MAX_CHECKPOINT_BYTES)) return -1;
    const char *format = lpc_safetensors_meta(f, "format");
    if (!format || strcmp(format, FORMAT_NAME) != 0) {
        lpc_safetensors_free(f);
        return lpc_fail("%s: not an lpc checkpoint (metadata 'format' is %s, expected %s)", path,
                        format ? format : "missing", FORMAT_NAME);
    }
    return 0;
}

int lpc_checkpoint_load_config(const char *dir, struct lpc_config *cfg) {
    struct lpc_st_file f;
    if (open_model(&f, dir)) return -1;
    const char *ini = lpc_safetensors_meta(&f, "config");
    lpc_config_defaults(cfg);
    int rc = ini ? lpc_config_load_ini_string(cfg, ini, f.path) : lpc_fail("%s: the config is missing from the metadata", f.path);
    if (rc == 0) memset(cfg->is_set, 1, sizeof cfg->is_set); /* every value is the run's own choice */
    lpc_safetensors_free(&f);
    return rc;
}

static int read_i64(const struct lpc_st_file *f, const char *name, int64_t *out) {
    const struct lpc_st_tensor *t;
    int64_t one[1] = {1};
    if (lpc_safetensors_expect(f, name, LPC_ST_I64, 1, one, &t)) return -1;
    memcpy(out, t->data, sizeof *out);
    return 0;
}

int lpc_checkpoint_load(const char *dir, struct lpc_arena *a, struct lpc_train_state *st) {
    struct lpc_st_file f;
    if (open_model(&f, dir)) return -1;
    const struct lpc_param_table *t = &a->table;
    size_t bytes = t->total * sizeof(float);
    float *host[3] = {lpc_xcalloc(t->total + 1, sizeof(float)), lpc_xcalloc(t->total + 1, sizeof(float)),
                      lpc_xcalloc(t->total + 1, sizeof(float))};
    int rc = 0;
    int64_t shape[4];
    if (f.count != t->count)
        rc = lpc_fail("%s: %d tensors, the config expects %d (checkpoint of a different model?)", f.path, f.count, t->count);
    for (int i = 0; rc == 0 && i < t->count; i++) {
        const struct lpc_st_tensor *x;
        param_shape(&t->params[i], shape);
        rc = lpc_safetensors_expect(&f, t->params[i].name, LPC_ST_F32, t->params[i].ndim, shape, &x);
        if (rc == 0) memcpy(host[0] + t->params[i].offset, x->data, x->nbytes);
    }
    const char *model_step = lpc_safetensors_meta(&f, "step");
    struct lpc_st_file s;
    memset(&s, 0, sizeof s);
    if (rc == 0 && st) {
        char path[LPC_STRING_MAX + 64];
        path_in(path, sizeof path, dir, "state.safetensors");
        rc = lpc_safetensors_read(&s, path, MAX_CHECKPOINT_BYTES);
        for (int i = 0; rc == 0 && i < t->count; i++) {
            const struct lpc_st_tensor *x;
            char name[LPC_ST_NAME_MAX];
            param_shape(&t->params[i], shape);
            for (int k = 0; rc == 0 && k < 2; k++) {
                snprintf(name, sizeof name, "%s.%s", k ? "adam_v" : "adam_m", t->params[i].name);
                rc = lpc_safetensors_expect(&s, name, LPC_ST_F32, t->params[i].ndim, shape, &x);
                if (rc == 0) memcpy(host[1 + k] + t->params[i].offset, x->data, x->nbytes);
            }
        }
        int64_t v[6];
        const char *names[6] = {"step", "rng.seed", "rng.offset", "data.rng", "data.epoch", "data.position"};
        for (int i = 0; rc == 0 && i < 6; i++) rc = read_i64(&s, names[i], &v[i]);
        if (rc == 0) {
            const struct lpc_st_tensor *o;
            int64_t order_shape[1] = {st->n_order};
            rc = lpc_safetensors_expect(&s, "data.order", LPC_ST_I32, 1, order_shape, &o);
            if (rc == 0) memcpy(st->order, o->data, o->nbytes);
        }
        if (rc == 0) {
            char step_text[32];
            snprintf(step_text, sizeof step_text, "%" PRId64, v[0]);
            if (!model_step || strcmp(model_step, step_text) != 0)
                rc = lpc_fail("%s: model.safetensors is from step %s but state.safetensors from step %s (mixed checkpoint)",
                              dir, model_step ? model_step : "?", step_text);
            for (long i = 0; rc == 0 && i < st->n_order; i++)
                if (st->order[i] < 0 || st->order[i] >= st->n_order)
                    rc = lpc_fail("%s: data.order holds %d, outside 0..%ld (corrupt state)", path, st->order[i], st->n_order - 1);
            if (rc == 0 && (v[5] < 0 || v[5] > st->n_order))
                rc = lpc_fail("%s: data.position %" PRId64 " is outside 0..%ld (corrupt state)", path, v[5], st->n_order);
        }
        if (rc == 0) {
            st->step = v[0], st->rng_seed = (uint64_t)v[1], st->rng_offset = (uint64_t)v[2];
            st->data_rng = (uint64_t)v[3], st->epoch = v[4], st->position = v[5];
        }
    }
    if (rc == 0) {
        a->be->upload(a->params, host[0], bytes);
        if (st) a->be->upload(a->adam_m, host[1], bytes), a->be->upload(a->adam_v, host[2], bytes);
    }
    lpc_safetensors_free(&s);
    lpc_safetensors_free(&f);
    free(host[0]), free(host[1]), free(host[2]);
    return rc;
}
