/* Parameter arenas generated from the parameter table (DESIGN.md "Conventions"). */
#include "lpc/arena.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/rng.h"

#define ALIGN_FLOATS 16 /* 64 bytes: each tensor starts on a cache line / vector boundary */

int lpc_param_table_add(struct lpc_param_table *t, const char *name, int group, int ndim, const int *shape,
                        int fan_in, float init_value) {
    if (t->count == LPC_MAX_PARAMS) lpc_die_internal("arena", "lpc_param_table_add", __func__, __FILE__, __LINE__, "too many tensors");
    if (t->count > 0 && group < t->params[t->count - 1].group)
        lpc_die_internal("arena", "lpc_param_table_add", __func__, __FILE__, __LINE__, "groups out of order");
    struct lpc_param_info *p = &t->params[t->count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->group = group;
    p->ndim = ndim;
    p->count = 1;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i], p->count *= (size_t)shape[i];
    p->fan_in = fan_in;
    p->init_value = init_value;
    p->offset = t->total;
    t->total += (p->count + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    /* groups are contiguous and in order: this group ends here, the later (still empty) ones start here */
    if (t->count == 0 || t->params[t->count - 1].group != group) t->group_offset[group] = p->offset;
    t->group_count[group] = t->total - t->group_offset[group];
    for (int g = group + 1; g < LPC_N_GROUPS; g++) t->group_offset[g] = t->total, t->group_count[g] = 0;
    return t->count++;
}

int lpc_param_table_find(const struct lpc_param_table *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->params[i].name, name) == 0) return i;
    return -1;
}

void lpc_arena_create(struct lpc_arena *a, const struct lpc_backend *be, const struct lpc_param_table *t) {
    memset(a, 0, sizeof *a);
    a->be = be;
    a->table = *t;
    size_t bytes = (t->total ? t->total : 1) * sizeof(float);
    a->params = be->alloc(bytes);
    a->grads = be->alloc(bytes);
    a->adam_m = be->alloc(bytes);
    a->adam_v = be->alloc(bytes);
}

void lpc_arena_destroy(struct lpc_arena *a) {
    if (!a->be) return;
    a->be->free(a->params);
    a->be->free(a->grads);
    a->be->free(a->adam_m);
    a->be->free(a->adam_v);
    memset(a, 0, sizeof *a);
}

void lpc_arena_init_params(struct lpc_arena *a, unsigned long long seed) {
    const struct lpc_param_table *t = &a->table;
    float *host = lpc_xcalloc(t->total + 4, sizeof(float));
    struct lpc_rng rng;
    lpc_rng_init(&rng, seed ^ 0x5EED1A17EC0DE5ull, 0); /* a stream of its own, apart from the noise */
    for (int i = 0; i < t->count; i++) {
        const struct lpc_param_info *p = &t->params[i];
        float *dst = host + p->offset;
        if (p->fan_in > 0) {
            float *u = lpc_xmalloc(lpc_rng_advance(p->count) * sizeof(float));
            lpc_rng_uniform_host(&rng, u, p->count);
            float bound = 1.0f / sqrtf((float)p->fan_in);
            for (size_t j = 0; j < p->count; j++) dst[j] = bound * (2.0f * u[j] - 1.0f);
            free(u);
        } else {
            for (size_t j = 0; j < p->count; j++) dst[j] = p->init_value;
        }
    }
    lpc_rng_destroy(&rng);
    a->be->upload(a->params, host, t->total * sizeof(float));
    free(host);
    a->be->fill(a->grads, 0.0f, t->total);
    a->be->fill(a->adam_m, 0.0f, t->total);
    a->be->fill(a->adam_v, 0.0f, t->total);
}

float *lpc_arena_param(const struct lpc_arena *a, int index) { return a->params + a->table.params[index].offset; }
float *lpc_arena_grad(const struct lpc_arena *a, int index) { return a->grads + a->table.params[index].offset; }

void lpc_arena_zero_grads(struct lpc_arena *a, int group) {
    a->be->fill(a->grads + a->table.group_offset[group], 0.0f, a->table.group_count[group]);
}
