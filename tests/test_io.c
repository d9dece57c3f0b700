/* Files: safetensors round trip (bitwise), refusal of truncated, corrupted and mismatched checkpoints
 * with the tensor named, and the IDX loader on fixtures in the official format (raw and gzipped) and
 * on the real Fashion-MNIST when it is installed. */
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "lpc/check.h"
#include "lpc/checkpoint.h"
#include "lpc/data.h"
#include "lpc/model.h"
#include "lpc/safetensors.h"
#include "testutil.h"

static char dir[256];

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static void check_safetensors(void) {
    float a[6] = {1.5f, -2.25f, 3.0f, 1e-30f, -0.0f, 7.0f};
    int64_t b[2] = {-5, 1234567890123ll};
    unsigned char c[3] = {1, 2, 255};
    struct lpc_st_tensor ts[3] = {{"a.weight", LPC_ST_F32, 2, {2, 3}, a, sizeof a},
                                  {"b", LPC_ST_I64, 1, {2}, b, sizeof b},
                                  {"c", LPC_ST_U8, 1, {3}, c, sizeof c}};
    struct lpc_st_meta meta[1] = {{"config", "[model]\nlatent_dim = 4\n"}};
    char path[300];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    CHECK(lpc_safetensors_write(path, ts, 3, meta, 1) == 0, "write: %s", lpc_last_error());
    struct lpc_st_file f;
    CHECK(lpc_safetensors_read(&f, path, 1 << 20) == 0, "read back: %s", lpc_last_error());
    const struct lpc_st_tensor *t = lpc_safetensors_find(&f, "a.weight");
    CHECK(t && t->nbytes == sizeof a && memcmp(t->data, a, sizeof a) == 0, "F32 tensor round trip is bitwise");
    t = lpc_safetensors_find(&f, "b");
    CHECK(t && memcmp(t->data, b, sizeof b) == 0, "I64 tensor round trip is bitwise");
    CHECK(lpc_safetensors_meta(&f, "config") && strcmp(lpc_safetensors_meta(&f, "config"), meta[0].value) == 0, "metadata round trip");
    int64_t wrong[2] = {3, 2};
    CHECK(lpc_safetensors_expect(&f, "a.weight", LPC_ST_F32, 2, wrong, &t) != 0 && strstr(lpc_last_error(), "'a.weight'") &&
              strstr(lpc_last_error(), "[2,3]") && strstr(lpc_last_error(), "[3,2]"),
          "a shape mismatch names the tensor and both shapes: %s", lpc_last_error());
    CHECK(lpc_safetensors_expect(&f, "a.weight", LPC_ST_I64, 2, (int64_t[]){2, 3}, &t) != 0 && strstr(lpc_last_error(), "dtype"),
          "a dtype mismatch is refused: %s", lpc_last_error());
    lpc_safetensors_free(&f);

    size_t n;
    unsigned char *bytes = read_bytes(path, &n);
    /* truncated: every prefix is refused cleanly */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    int refused = 0;
    for (size_t cut = 0; cut < n; cut += 7) {
        write_bytes(bad, bytes, cut);
        refused += lpc_safetensors_read(&f, bad, 1 << 20) != 0;
    }
    CHECK(refused == (int)((n + 6) / 7), "all %zu truncated prefixes refused (%d were)", (n + 6) / 7, refused);
    /* a header length larger than the file */
    unsigned char *copy = malloc(n);
    memcpy(copy, bytes, n);
    copy[3] = 0x7f;
    write_bytes(bad, copy, n);
    CHECK(lpc_safetensors_read(&f, bad, 1 << 20) != 0 && strstr(lpc_last_error(), "header length"), "huge header length: %s", lpc_last_error());
    /* corrupted JSON */
    memcpy(copy, bytes, n);
    copy[8] = '[';
    write_bytes(bad, copy, n);
    CHECK(lpc_safetensors_read(&f, bad, 1 << 20) != 0, "corrupted header refused: %s", lpc_last_error());
    /* offsets pointing outside the data: rewrite "b"'s end offset */
    memcpy(copy, bytes, n);
    char *hdr = (char *)copy + 8, *pos = strstr(hdr, "\"b\"");
    char *offs = pos ? strstr(pos, "data_offsets\":[24,40]") : NULL;
    CHECK(offs != NULL, "fixture header lays out b at [24,40]");
    if (offs) {
        memcpy(offs, "data_offsets\":[24,48]", 21);
        write_bytes(bad, copy, n);
        CHECK(lpc_safetensors_read(&f, bad, 1 << 20) != 0 && strstr(lpc_last_error(), "'b'"), "bad offsets name the tensor: %s",
              lpc_last_error());
    }
    free(copy), free(bytes);
    /* a key twice in the header (the metadata, or a tensor): ambiguous, refused, nothing leaked */
    const char *twice[] = {"{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\"}}",
                           "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"};
    const size_t data_bytes[] = {0, 8};
    for (int i = 0; i < 2; i++) {
        const size_t len = strlen(twice[i]), total = 8 + len + data_bytes[i];
        unsigned char *file = calloc(total, 1);
        for (int byte = 0; byte < 8; byte++) file[byte] = (unsigned char)((uint64_t)len >> (8 * byte));
        memcpy(file + 8, twice[i], len);
        write_bytes(bad, file, total);
        CHECK(lpc_safetensors_read(&f, bad, 1 << 20) != 0 && strstr(lpc_last_error(), "appears twice"),
              "a key twice in the header refused: %s", lpc_last_error());
        free(file);
    }
}

static void check_checkpoint(void) {
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    lpc_config_set(&cfg, "channels", "4,8");
    lpc_config_set(&cfg, "latent_dim", "3");
    lpc_config_set(&cfg, "learn_sigma", "true");
    struct lpc_model m;
    CHECK(lpc_model_create(&m, &cfg, lpc_backend_cpu(), 1, 8, 8, 2) == 0, "model: %s", lpc_last_error());
    lpc_arena_init_params(&m.arena, 5);
    for (int k = 0; k < m.arena.table.count; k++) /* tensors only: the alignment padding stays zero */
        for (size_t i = m.arena.table.params[k].offset; i < m.arena.table.params[k].offset + m.arena.table.params[k].count; i++)
            m.arena.adam_m[i] = (float)i, m.arena.adam_v[i] = (float)(2 * i);
    int32_t order[5] = {4, 2, 0, 1, 3};
    struct lpc_train_state st = {17, 1, 96, 0xabcdefull, 2, 3, order, 5};
    char ck[300];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(lpc_checkpoint_save(ck, &m.arena, &cfg, &st) == 0, "save: %s", lpc_last_error());
    struct lpc_model m2;
    lpc_model_create(&m2, &cfg, lpc_backend_cpu(), 1, 8, 8, 2);
    int32_t order2[5];
    struct lpc_train_state st2 = {0};
    st2.order = order2, st2.n_order = 5;
    CHECK(lpc_checkpoint_load(ck, &m2.arena, &st2) == 0, "load: %s", lpc_last_error());
    size_t bytes = m.arena.table.total * sizeof(float);
    CHECK(memcmp(m.arena.params, m2.arena.params, bytes) == 0 && memcmp(m.arena.adam_m, m2.arena.adam_m, bytes) == 0 &&
              memcmp(m.arena.adam_v, m2.arena.adam_v, bytes) == 0,
          "parameters and Adam moments come back bitwise");
    CHECK(st2.step == 17 && st2.rng_offset == 96 && st2.data_rng == 0xabcdefull && st2.epoch == 2 && st2.position == 3 &&
              memcmp(order, order2, sizeof order) == 0,
          "training state comes back exactly");
    struct lpc_config back;
    CHECK(lpc_checkpoint_load_config(ck, &back) == 0 && back.latent_dim == 3 && back.channels[1] == 8 && back.learn_sigma,
          "the config is stored in the metadata");
    /* a checkpoint of another architecture: the differing tensor is named */
    struct lpc_config other = cfg;
    lpc_config_set(&other, "channels", "4,16");
    struct lpc_model m3;
    lpc_model_create(&m3, &other, lpc_backend_cpu(), 1, 8, 8, 2);
    CHECK(lpc_checkpoint_load(ck, &m3.arena, NULL) != 0 && strstr(lpc_last_error(), "decoder.fc.weight"),
          "mismatched checkpoint names the tensor: %s", lpc_last_error());
    /* a truncated model file */
    char mf[320];
    snprintf(mf, sizeof mf, "%s/model.safetensors", ck);
    size_t n;
    unsigned char *b = read_bytes(mf, &n);
    write_bytes(mf, b, n - 5);
    CHECK(lpc_checkpoint_load(ck, &m2.arena, NULL) != 0 && strstr(lpc_last_error(), "model.safetensors"),
          "truncated checkpoint refused: %s", lpc_last_error());
    free(b);
    lpc_model_destroy(&m), lpc_model_destroy(&m2), lpc_model_destroy(&m3);
}

static void be32(unsigned char *p, uint32_t v) { p[0] = v >> 24, p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v; }

/* IDX files for n images of h x w with pixel (i, y, x) = (i * 31 + y * 7 + x) % 256, label i % 10 */
static void write_idx(const char *images, const char *labels, uint32_t n, uint32_t h, uint32_t w, uint32_t claimed, int gz) {
    size_t isz = 16 + (size_t)n * h * w;
    unsigned char *ib = malloc(isz), *lb = malloc(8 + n);
    be32(ib, 0x803), be32(ib + 4, claimed), be32(ib + 8, h), be32(ib + 12, w);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++) ib[16 + ((size_t)i * h + y) * w + x] = (unsigned char)((i * 31 + y * 7 + x) % 256);
    be32(lb, 0x801), be32(lb + 4, claimed);
    for (uint32_t i = 0; i < n; i++) lb[8 + i] = (unsigned char)(i % 10);
    if (gz) {
        gzFile f = gzopen(images, "wb");
        gzwrite(f, ib, (unsigned)isz), gzclose(f);
        f = gzopen(labels, "wb");
        gzwrite(f, lb, 8 + n), gzclose(f);
    } else {
        write_bytes(images, ib, isz);
        write_bytes(labels, lb, 8 + n);
    }
    free(ib), free(lb);
}

static void check_idx(void) {
    char im[300], lb[300];
    for (int gz = 0; gz < 2; gz++) {
        snprintf(im, sizeof im, "%s/im%d", dir, gz), snprintf(lb, sizeof lb, "%s/lb%d", dir, gz);
        write_idx(im, lb, 12, 5, 3, 12, gz);
        struct lpc_dataset d;
        memset(&d, 0, sizeof d);
        CHECK(lpc_idx_load(&d, im, lb, 0) == 0, "IDX fixture (gz %d): %s", gz, lpc_last_error());
        CHECK(d.n == 12 && d.c == 1 && d.h == 5 && d.w == 3, "shape 12 x 1 x 5 x 3, got %ld x %d x %d x %d", d.n, d.c, d.h, d.w);
        CHECK(d.pixels && d.pixels[(7 * 5 + 4) * 3 + 2] == (7 * 31 + 4 * 7 + 2) % 256 && d.labels[7] == 7,
              "pixel (7, 4, 2) and label 7 in place");
        lpc_dataset_free(&d);
        CHECK(lpc_idx_load(&d, im, lb, 5) == 0 && d.n == 5, "limit takes the first 5");
        lpc_dataset_free(&d);
        /* header claims far more images than the file holds: refused before allocating them */
        write_idx(im, lb, 12, 5, 3, 100000000, gz);
        CHECK(lpc_idx_load(&d, im, lb, 0) != 0 && strstr(lpc_last_error(), "100000000"), "oversized count refused: %s", lpc_last_error());
    }
    /* truncated raw file */
    write_idx(im, lb, 12, 5, 3, 12, 0);
    size_t n;
    unsigned char *b = read_bytes(im, &n);
    write_bytes(im, b, n - 10);
    struct lpc_dataset d;
    CHECK(lpc_idx_load(&d, im, lb, 0) != 0 && strstr(lpc_last_error(), "truncated"), "truncated IDX refused: %s", lpc_last_error());
    /* wrong magic: a labels file given as images */
    write_idx(im, lb, 12, 5, 3, 12, 0);
    CHECK(lpc_idx_load(&d, lb, lb, 0) != 0 && strstr(lpc_last_error(), "magic"), "wrong magic refused: %s", lpc_last_error());
    /* header only, shorter than a header */
    write_bytes(im, b, 6);
    CHECK(lpc_idx_load(&d, im, lb, 0) != 0, "6-byte file refused: %s", lpc_last_error());
    free(b);
}

static void check_fashion_mnist(void) {
    const char *path = "/usr/share/datasets/fashion-mnist";
    if (access(path, R_OK) != 0) {
        printf("skipping the real Fashion-MNIST checks: %s is not installed (apt-get install dataset-fashion-mnist)\n", path);
        return;
    }
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    for (int split = 0; split < 2; split++) {
        cfg.split = split;
        struct lpc_dataset d;
        CHECK(lpc_dataset_load(&d, &cfg) == 0, "Fashion-MNIST: %s", lpc_last_error());
        long want = split ? 10000 : 60000, counts[10] = {0};
        CHECK(d.n == want && d.c == 1 && d.h == 28 && d.w == 28, "%s split: %ld images of %dx%d, expected %ld of 28x28",
              split ? "test" : "train", d.n, d.h, d.w, want);
        for (long i = 0; i < d.n; i++) counts[d.labels[i] < 10 ? d.labels[i] : 0]++;
        for (int c = 0; c < 10; c++) CHECK(counts[c] == want / 10, "class %d: %ld images, expected %ld", c, counts[c], want / 10);
        lpc_dataset_free(&d);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lpc_test_io_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    check_safetensors();
    check_checkpoint();
    check_idx();
    check_fashion_mnist();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return test_finish("test_io");
}
