/* safetensors reader and writer (SPEC.md section 7), header through cJSON. */
#include "lpc/safetensors.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/fileutil.h"

#define MAX_HEADER_BYTES (100u << 20) /* the format's own limit */

static const char *dtype_names[] = {"F32", "I64", "U8", "I32"};
static const size_t dtype_sizes[] = {4, 8, 1, 4};

const char *lpc_st_dtype_name(enum lpc_st_dtype d) { return dtype_names[d]; }
size_t lpc_st_dtype_size(enum lpc_st_dtype d) { return dtype_sizes[d]; }

static void shape_string(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%" PRId64 : "%" PRId64, shape[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

int lpc_safetensors_write(const char *path, const struct lpc_st_tensor *tensors, int n, const struct lpc_st_meta *meta,
                          int n_meta) {
    cJSON *root = cJSON_CreateObject();
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(m, meta[i].key, meta[i].value);
    }
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, tensors[i].name);
        cJSON_AddStringToObject(t, "dtype", dtype_names[tensors[i].dtype]);
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < tensors[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)tensors[i].shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + tensors[i].nbytes)));
        offset += tensors[i].nbytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return lpc_fail("%s: cannot build the safetensors header (out of memory)", path);
    size_t json_len = strlen(json), padded = (json_len + 7) / 8 * 8;
    char *header = lpc_xmalloc(8 + padded);
    uint64_t len64 = padded;
    for (int b = 0; b < 8; b++) header[b] = (char)((len64 >> (8 * b)) & 0xff);
    memcpy(header + 8, json, json_len);
    memset(header + 8 + json_len, ' ', padded - json_len);
    free(json);

    int n_parts = n + 1;
    const void **parts = lpc_xmalloc(sizeof(void *) * (size_t)n_parts);
    size_t *sizes = lpc_xmalloc(sizeof(size_t) * (size_t)n_parts);
    parts[0] = header, sizes[0] = 8 + padded;
    for (int i = 0; i < n; i++) parts[i + 1] = tensors[i].data, sizes[i + 1] = tensors[i].nbytes;
    int rc = lpc_write_file_atomic(path, parts, sizes, n_parts);
    free(parts);
    free(sizes);
    free(header);
    return rc;
}

void lpc_safetensors_free(struct lpc_st_file *f) {
    free(f->buf);
    free(f->tensors);
    if (f->meta)
        for (int i = 0; i < f->n_meta; i++) free((void *)f->meta[i].key), free((void *)f->meta[i].value);
    free(f->meta);
    memset(f, 0, sizeof *f);
}

static int parse_dtype(const char *s) {
    for (int i = 0; i < (int)(sizeof dtype_names / sizeof *dtype_names); i++)
        if (strcmp(s, dtype_names[i]) == 0) return i;
    return -1;
}

static int fail_entry(struct lpc_st_file *f, cJSON *root, const char *name, const char *what) {
    lpc_fail("%s: tensor '%s': %s (the file is corrupt or not a safetensors file)", f->path, name, what);
    cJSON_Delete(root);
    lpc_safetensors_free(f);
    return -1;
}

int lpc_safetensors_read(struct lpc_st_file *f, const char *path, size_t max_bytes) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->buf = lpc_read_file(path, max_bytes, &f->size);
    if (!f->buf) return -1;
    if (f->size < 8) {
        lpc_safetensors_free(f);
        return lpc_fail("%s: %zu bytes, too short for a safetensors file (truncated?)", path, f->size);
    }
    uint64_t header_len = 0;
    for (int b = 0; b < 8; b++) header_len |= (uint64_t)f->buf[b] << (8 * b);
    if (header_len > MAX_HEADER_BYTES || header_len > f->size - 8) {
        lpc_safetensors_free(f);
        return lpc_fail("%s: header length %" PRIu64 " does not fit in the file of %zu bytes (truncated or corrupt)",
                        path, header_len, f->size);
    }
    cJSON *root = cJSON_ParseWithLength((const char *)f->buf + 8, (size_t)header_len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        lpc_safetensors_free(f);
        return lpc_fail("%s: the header is not valid JSON (corrupt file)", path);
    }
    const unsigned char *data = f->buf + 8 + header_len;
    size_t data_size = f->size - 8 - (size_t)header_len;
    int n = cJSON_GetArraySize(root);
    f->tensors = lpc_xcalloc((size_t)n + 1, sizeof *f->tensors);
    size_t covered = 0;
    for (cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string ? e->string : "?";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) return fail_entry(f, root, name, "__metadata__ is not an object");
            if (f->meta) return fail_entry(f, root, name, "appears twice in the header");
            int m = cJSON_GetArraySize(e);
            f->meta = lpc_xcalloc((size_t)m + 1, sizeof *f->meta);
            for (cJSON *kv = e->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv)) return fail_entry(f, root, name, "metadata values must be strings");
                f->meta[f->n_meta].key = lpc_xstrdup(kv->string);
                f->meta[f->n_meta].value = lpc_xstrdup(kv->valuestring);
                f->n_meta++;
            }
            continue;
        }
        if (strlen(name) >= LPC_ST_NAME_MAX) return fail_entry(f, root, "(long name)", "name longer than 127 bytes");
        if (lpc_safetensors_find(f, name)) return fail_entry(f, root, name, "appears twice in the header");
        struct lpc_st_tensor *t = &f->tensors[f->count];
        snprintf(t->name, sizeof t->name, "%s", name);
        cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
            return fail_entry(f, root, name, "entry lacks dtype, shape or data_offsets");
        int d = parse_dtype(dtype->valuestring);
        if (d < 0) return fail_entry(f, root, name, "unsupported dtype");
        t->dtype = (enum lpc_st_dtype)d;
        t->ndim = cJSON_GetArraySize(shape);
        if (t->ndim > LPC_ST_MAX_DIMS) return fail_entry(f, root, name, "more than 8 dimensions");
        double elems = 1;
        int i = 0;
        for (cJSON *s = shape->child; s; s = s->next, i++) {
            if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 1e15 || s->valuedouble != (double)(int64_t)s->valuedouble)
                return fail_entry(f, root, name, "bad shape");
            t->shape[i] = (int64_t)s->valuedouble;
            elems *= s->valuedouble;
        }
        double b = cJSON_GetArrayItem(offs, 0)->valuedouble, en = cJSON_GetArrayItem(offs, 1)->valuedouble;
        if (!cJSON_IsNumber(cJSON_GetArrayItem(offs, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(offs, 1)) || b < 0 ||
            en < b || en > (double)data_size)
            return fail_entry(f, root, name, "data_offsets point outside the file (truncated?)");
        if (en - b != elems * (double)dtype_sizes[d]) return fail_entry(f, root, name, "data_offsets do not match dtype and shape");
        t->data = data + (size_t)b;
        t->nbytes = (size_t)(en - b);
        covered += t->nbytes;
        f->count++;
    }
    cJSON_Delete(root);
    if (covered != data_size) {
        lpc_safetensors_free(f);
        return lpc_fail("%s: %zu data bytes but the tensors cover %zu (truncated or corrupt)", path, data_size, covered);
    }
    return 0;
}

const struct lpc_st_tensor *lpc_safetensors_find(const struct lpc_st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *lpc_safetensors_meta(const struct lpc_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

int lpc_safetensors_expect(const struct lpc_st_file *f, const char *name, enum lpc_st_dtype dtype, int ndim,
                           const int64_t *shape, const struct lpc_st_tensor **out) {
    const struct lpc_st_tensor *t = lpc_safetensors_find(f, name);
    if (!t) return lpc_fail("%s: tensor '%s' is missing (checkpoint of a different model?)", f->path, name);
    if (t->dtype != dtype)
        return lpc_fail("%s: tensor '%s' has dtype %s, expected %s", f->path, name, dtype_names[t->dtype], dtype_names[dtype]);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        shape_string(got, sizeof got, t->ndim, t->shape);
        shape_string(want, sizeof want, ndim, shape);
        return lpc_fail("%s: tensor '%s' has shape %s, the config expects %s", f->path, name, got, want);
    }
    *out = t;
    return 0;
}
