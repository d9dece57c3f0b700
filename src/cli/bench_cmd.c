/* `lpc bench` (SPEC.md sections 6 and 8): Langevin steps/s (one step = decoder forward, backward to z
 * and the preconditioned noisy update of the whole batch, no parameter gradient), latent-sample
 * steps/s, training iterations/s (everything: warm start, T steps with the theta-gradient, encoder
 * objective, Adam) and sampling images/s, as JSON lines with the median and spread of repeated runs,
 * the FLOPs of a step counted from the layer shapes, the achieved TFLOP/s and the backend memory held
 * (memory_mib; on the GPU, device memory taken since the backend started: the peak, as lpc allocates
 * once and never frees during a run). Synthetic data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lpc/backend.h"
#include "lpc/check.h"
#include "lpc/langevin.h"
#include "lpc/train.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The SPEC.md section 8 models; `config` keeps the [model] keys. */
static void apply_preset(struct lpc_config *cfg, int *c, int *h, int *w) {
    switch (cfg->bench_model) {
    case LPC_BENCH_FASHION28: lpc_config_set(cfg, "channels", "32,64"), lpc_config_set(cfg, "latent_dim", "16"), *c = 1, *h = *w = 28; break;
    case LPC_BENCH_CIFAR32: lpc_config_set(cfg, "channels", "32,64,128"), lpc_config_set(cfg, "latent_dim", "64"), *c = 3, *h = *w = 32; break;
    case LPC_BENCH_CELEBA64: lpc_config_set(cfg, "channels", "32,64,128,256"), lpc_config_set(cfg, "latent_dim", "128"), *c = 3, *h = *w = 64; break;
    default: lpc_dataset_shape(cfg, c, h, w);
    }
}

/* Multiply-adds of one decoder forward for one sample. */
static double decoder_macs(const struct lpc_model *m) {
    double macs = (double)m->dec[0].in_size * m->dec[0].out_size;
    for (int i = 1; i <= m->n_conv; i++) {
        const struct lpc_conv_shape *s = &m->dec[i].conv;
        macs += (double)s->ci * s->h * s->w * s->co * s->k * s->k / (s->stride * s->stride);
    }
    return macs;
}

static void report(const struct lpc_backend *be, const char *what, const struct lpc_config *cfg, const char *model, double *t,
                   int reps, double units, const char *unit_name, double flops) {
    const char *device = be->name;
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double median = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    printf("{\"bench\":\"%s\",\"model\":\"%s\",\"device\":\"%s\",\"math\":\"%s\",\"batch\":%ld,\"T\":%ld,"
           "\"%s\":%.6g,\"%s_min\":%.6g,\"%s_max\":%.6g,\"seconds_median\":%.6g,\"repeats\":%d",
           what, model, device, lpc_config_choice(LPC_KEY_math, cfg->math), cfg->batch_size, cfg->langevin_steps,
           unit_name, units / median, unit_name, units / t[reps - 1], unit_name, units / t[0], median, reps);
    if (flops > 0) printf(",\"gflop_per_step\":%.6g,\"tflops\":%.6g", flops * 1e-9, flops * units / median * 1e-12);
    if (strcmp(device, "cuda") == 0)
        printf(",\"deterministic\":%s,\"conv_algo\":\"%s\"", cfg->deterministic ? "true" : "false",
               lpc_config_choice(LPC_KEY_conv_algo, cfg->conv_algo));
    printf(",\"memory_mib\":%.1f}\n", be->memory_used() / 1048576.0);
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    struct cli_command cmd = {"bench", "Benchmarks a model on synthetic data; prints one JSON line per measurement.",
                              "lpc bench [--bench_model cifar32] [--batch_size 64] [--langevin_steps 20] [--device D] [--math tf32]",
                              "model|langevin|train|bench", NULL, 0};
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    cli_parse(&cmd, &cfg, argc, argv);
    int c, h, w;
    apply_preset(&cfg, &c, &h, &w);
    if (cfg.bench_model != LPC_BENCH_CONFIG && !cfg.is_set[LPC_KEY_langevin_steps]) lpc_config_set(&cfg, "langevin_steps", "20");
    cli_finalize(&cfg);
    const struct lpc_backend *be = lpc_backend_select(&cfg);
    if (!be) lpc_die_last_error();
    lpc_backend_set_threads(&cfg);
    const char *model_name = lpc_config_choice(LPC_KEY_bench_model, cfg.bench_model);

    /* synthetic data set: random bytes, a few batches */
    struct lpc_dataset d = {0};
    snprintf(d.name, sizeof d.name, "synthetic");
    d.n = cfg.batch_size * 4, d.c = c, d.h = h, d.w = w;
    size_t bytes = (size_t)d.n * c * h * w;
    d.pixels = lpc_xmalloc(bytes);
    uint64_t s = 42;
    for (size_t i = 0; i < bytes; i++) d.pixels[i] = (unsigned char)(lpc_splitmix64(&s) >> 56);

    struct lpc_trainer tr;
    if (lpc_trainer_create(&tr, &cfg, be, &d)) lpc_die_last_error();
    struct lpc_model *m = &tr.model;
    const int B = (int)cfg.batch_size, T = (int)cfg.langevin_steps, reps = (int)cfg.bench_repeats;
    /* with graphs, the first call of a shape runs uncaptured and the second captures: neither is timed */
    const int warmup = be->graph_launch && cfg.bench_warmup < 2 ? 2 : (int)cfg.bench_warmup;
    double *t = lpc_xmalloc(sizeof(double) * (size_t)reps);
    const double step_flops = 2.0 * 2.0 * decoder_macs(m) * B; /* forward + backward-data */

    /* Langevin steps in inference mode */
    struct lpc_step_metrics mt;
    lpc_trainer_step(&tr, &mt); /* fills m->x with a batch */
    struct lpc_chain_params cp = {T, 1, (float)cfg.langevin_step_size, (float)cfg.precond_beta, (float)cfg.precond_eps,
                                  cfg.precond, cfg.noise};
    struct lpc_target target = lpc_model_target(m);
    for (int r = -warmup; r < reps; r++) {
        be->normal(tr.chain.z, (size_t)B * m->latent, &tr.rng);
        be->synchronize();
        double t0 = now_seconds();
        lpc_chain_run(&tr.chain, &target, &cp, &tr.rng, B, 0, 0);
        be->synchronize();
        if (r >= 0) t[r] = now_seconds() - t0;
    }
    report(be, "langevin", &cfg, model_name, t, reps, T, "langevin_steps_per_s", step_flops);
    for (int r = 0; r < reps; r++) t[r] /= B;
    report(be, "latent_samples", &cfg, model_name, t, reps, T, "latent_sample_steps_per_s", 0);

    /* training iterations */
    for (int r = -warmup; r < reps; r++) {
        be->synchronize();
        double t0 = now_seconds();
        if (lpc_trainer_step(&tr, &mt)) lpc_die_last_error();
        be->synchronize();
        if (r >= 0) t[r] = now_seconds() - t0;
    }
    report(be, "train", &cfg, model_name, t, reps, 1, "iters_per_s", 0);

    /* sampling: prior draws through the decoder */
    for (int r = -warmup; r < reps; r++) {
        be->synchronize();
        double t0 = now_seconds();
        be->normal(tr.chain.z, (size_t)B * m->latent, &tr.rng);
        lpc_model_decode(m, tr.chain.z, B);
        be->synchronize();
        if (r >= 0) t[r] = now_seconds() - t0;
    }
    report(be, "sample", &cfg, model_name, t, reps, B, "images_per_s", 2.0 * decoder_macs(m));
    free(t);
    lpc_trainer_destroy(&tr);
    lpc_dataset_free(&d);
    return 0;
}
