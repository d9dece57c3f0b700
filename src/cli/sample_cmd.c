/* `lpc sample` (SPEC.md section 6): N prior samples of a checkpoint as a PNG grid (.png), a folder of
 * PNGs (a directory) or .npz (uint8 N x H x W x C). A sample is the decoder's mean at z ~ N(0, I). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lpc/check.h"
#include "lpc/fileutil.h"
#include "lpc/image_io.h"
#include "lpc/model.h"
#include "lpc/rng.h"

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int cmd_sample(int argc, char **argv) {
    struct cli_option options[] = {
        {"checkpoint", 0, "checkpoint folder of a run (runs/NAME/checkpoint)", NULL},
        {"n", 0, "number of samples (default 64)", NULL},
        {"out", 0, "FILE.png: one grid; FILE.npz: uint8 N x H x W x C; otherwise a folder of PNGs", NULL},
    };
    struct cli_command cmd = {"sample", "Writes prior samples (decoder mean at z ~ N(0, I)) of a trained model.",
                              "lpc sample --checkpoint DIR --n N --out PATH [--seed S] [--device D]", "train", options, 3};
    struct lpc_config given, cfg;
    lpc_config_defaults(&given);
    cli_parse(&cmd, &given, argc, argv);
    const char *out = cli_value(&cmd, "out");
    if (!out) lpc_die_user("--out PATH is required (.png grid, .npz array, or a folder)");
    long n = 64;
    if (cli_value(&cmd, "n")) {
        char *end;
        n = strtol(cli_value(&cmd, "n"), &end, 10);
        if (*end || n < 1 || n > 10000000) lpc_die_user("--n: '%s' is not a count from 1 to 10000000", cli_value(&cmd, "n"));
    }
    struct lpc_model m;
    const int chunk = n < 256 ? (int)n : 256;
    cli_load_checkpoint(cli_value(&cmd, "checkpoint"), &cfg, &given, "seed|device|threads|math|deterministic", chunk, &m);
    const int D = m.latent, dim = m.dim;
    unsigned char *images = lpc_xmalloc((size_t)n * dim);
    float *mu = lpc_xmalloc((size_t)chunk * dim * sizeof(float));
    struct lpc_rng rng;
    lpc_rng_init(&rng, (uint64_t)cfg.seed, 0);
    float *z = m.be->alloc(lpc_rng_advance((size_t)chunk * D) * sizeof(float));
    for (long done = 0; done < n; done += chunk) {
        int k = n - done < chunk ? (int)(n - done) : chunk;
        m.be->normal(z, (size_t)k * D, &rng);
        lpc_model_decode(&m, z, k);
        m.be->download(mu, m.mu, (size_t)k * dim * sizeof(float));
        lpc_images_to_u8(images + (size_t)done * dim, mu, (size_t)k * dim);
    }
    int rc;
    if (ends_with(out, ".png")) {
        int cols = 1;
        while (cols * cols < n) cols++;
        rc = lpc_png_write_grid(out, images, (int)n, m.c, m.h, m.w, cols);
    } else if (ends_with(out, ".npz")) {
        rc = lpc_npz_write(out, images, (int)n, m.c, m.h, m.w);
    } else {
        rc = lpc_mkdirs(out);
        char path[LPC_STRING_MAX + 64];
        for (long i = 0; rc == 0 && i < n; i++) {
            snprintf(path, sizeof path, "%s/%06ld.png", out, i);
            rc = lpc_png_write(path, images + (size_t)i * dim, m.c, m.h, m.w);
        }
    }
    if (rc) lpc_die_last_error();
    printf("wrote %ld samples to %s\n", n, out);
    m.be->free(z);
    lpc_rng_destroy(&rng);
    lpc_model_destroy(&m);
    free(images), free(mu);
    return 0;
}
