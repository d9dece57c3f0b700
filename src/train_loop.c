/* The run of `lpc train` (SPEC.md section 6): run directory, resolved config, progress display,
 * metrics.jsonl, sample grids, checkpoints, Ctrl-C, the NaN/Inf guard and --resume. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lpc/backend.h"
#include "lpc/check.h"
#include "lpc/fileutil.h"
#include "lpc/train.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_duration(char *buf, size_t len, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, len, "%02ld:%02ld", t / 60, t % 60);
}

static void write_metrics(FILE *f, const struct lpc_config *c, long step, long epoch, const struct lpc_step_metrics *m) {
    fprintf(f, "{\"step\":%ld,\"epoch\":%ld,\"loss\":%.9g,\"log_p_x_z0\":%.9g,\"log_p_x_zT\":%.9g", step, epoch, m->loss,
            m->log_p_x_z0, m->log_p_x_zT);
    if (c->algo == LPC_ALGO_VAE) {
        fprintf(f, ",\"elbo\":%.9g,\"kl\":%.9g", m->elbo, m->kl);
    } else {
        if (c->encoder_objective != LPC_OBJ_NONE)
            fprintf(f, ",\"forward_kl\":%.9g,\"reverse_kl\":%.9g", m->forward_kl, m->reverse_kl);
        fprintf(f, ",\"mean_abs_grad_z\":%.9g,\"mean_precond\":%.9g", m->mean_abs_grad, m->mean_precond);
    }
    fprintf(f, ",\"grad_norm_decoder\":%.9g", m->grad_norm_decoder);
    if (c->init != LPC_INIT_PRIOR) fprintf(f, ",\"grad_norm_encoder\":%.9g", m->grad_norm_encoder);
    fprintf(f, "}\n");
    fflush(f);
}

static long total_steps(const struct lpc_config *c, long n_images) {
    return c->epochs > 0 ? c->epochs * (n_images / c->batch_size) : c->iters;
}

static void default_run_dir(char *out, size_t len, const struct lpc_config *c) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(out, len, "runs/%s-%s-%s", lpc_config_choice(LPC_KEY_algo, c->algo),
             lpc_config_choice(LPC_KEY_dataset, c->dataset), stamp);
}

static int save_checkpoint(struct lpc_trainer *tr, const char *run_dir, const char *name) {
    char dir[LPC_STRING_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", run_dir, name);
    return lpc_checkpoint_save(dir, &tr->model.arena, &tr->cfg, &tr->state);
}

static int save_samples(struct lpc_trainer *tr, const char *run_dir, char *path, size_t len) {
    snprintf(path, len, "%s/samples/step_%06ld.png", run_dir, tr->state.step);
    return lpc_trainer_write_samples(tr, path);
}

int lpc_train_run(struct lpc_config *cfg, const struct lpc_train_options *opt) {
    char run_dir[LPC_STRING_MAX], path[LPC_STRING_MAX + 128];
    if (opt->resume_dir) {
        snprintf(run_dir, sizeof run_dir, "%s", opt->resume_dir);
    } else {
        if (cfg->run_dir[0]) snprintf(run_dir, sizeof run_dir, "%s", cfg->run_dir);
        else default_run_dir(run_dir, sizeof run_dir, cfg);
        snprintf(path, sizeof path, "%s/config.ini", run_dir);
        if (lpc_exists(path) && !opt->overwrite)
            return lpc_fail("%s: a run already exists there; continue it with --resume %s, or replace it with --overwrite",
                            run_dir, run_dir);
    }
    snprintf(cfg->run_dir, sizeof cfg->run_dir, "%s", run_dir);
    {   /* the model must fit the data's shape: say so before anything else happens */
        struct lpc_param_table table;
        int c, h, w;
        lpc_dataset_shape(cfg, &c, &h, &w);
        if (lpc_model_param_table(&table, cfg, c, h, w)) return -1;
    }
    const struct lpc_backend *be = lpc_backend_select(cfg);
    if (!be) return -1;
    lpc_backend_set_threads(cfg);

    struct lpc_dataset data;
    if (lpc_dataset_load(&data, cfg)) return -1;
    struct lpc_trainer tr;
    if (lpc_trainer_create(&tr, cfg, be, &data)) {
        lpc_dataset_free(&data);
        return -1;
    }
    const long total = total_steps(cfg, data.n);
    if (opt->resume_dir) {
        snprintf(path, sizeof path, "%s/checkpoint", run_dir);
        if (lpc_checkpoint_load(path, &tr.model.arena, &tr.state)) goto fail;
        tr.rng.offset = tr.state.rng_offset;
        if (tr.state.step >= total) {
            lpc_fail("%s is already at step %ld of %ld; raise iters (or epochs) to continue it", run_dir, tr.state.step, total);
            goto fail;
        }
    }
    snprintf(path, sizeof path, "%s/samples", run_dir);
    if (lpc_mkdirs(path)) goto fail;
    snprintf(path, sizeof path, "%s/config.ini", run_dir);
    {
        char *ini = lpc_config_to_ini(cfg);
        const void *parts[1] = {ini};
        size_t sizes[1] = {strlen(ini)};
        int rc = lpc_write_file_atomic(path, parts, sizes, 1);
        free(ini);
        if (rc) goto fail;
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *metrics = fopen(path, opt->resume_dir ? "a" : "w");
    snprintf(path, sizeof path, "%s/timing.jsonl", run_dir);
    FILE *timing = fopen(path, opt->resume_dir ? "a" : "w");
    if (!metrics || !timing) {
        lpc_fail("%s: cannot write the metrics files", run_dir);
        if (metrics) fclose(metrics);
        if (timing) fclose(timing);
        goto fail;
    }

    printf("lpc train: %s on %s (%ld images %dx%dx%d), %s backend, %ld parameters\n",
           lpc_config_choice(LPC_KEY_algo, cfg->algo), data.name, data.n, data.c, data.h, data.w, be->name,
           (long)tr.model.arena.table.total);
    printf("  run directory: %s  (steps %ld -> %ld)\n", run_dir, tr.state.step, total);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const int tty = isatty(STDERR_FILENO);
    const long first = tr.state.step;
    const double langevin_per_step = cfg->algo == LPC_ALGO_VAE ? 0 : (double)cfg->langevin_steps;
    double t0 = now_seconds(), t_last = t0;
    long step_last = first;
    int rc = 0;
    char sample_path[LPC_STRING_MAX + 128] = "";
    struct lpc_step_metrics m;
    while (tr.state.step < total) {
        if (lpc_trainer_step(&tr, &m)) {
            char message[1100];
            snprintf(message, sizeof message, "%s", lpc_last_error());
            if (tty) fputc('\n', stderr);
            /* the parameters are still the last good ones: keep them without touching earlier files */
            int saved = save_checkpoint(&tr, run_dir, "checkpoint_before_failure") == 0;
            lpc_fail("%s%s%s/checkpoint_before_failure", message, saved ? "; the last good state is in " : "",
                     saved ? run_dir : "");
            rc = -1;
            break;
        }
        long s = tr.state.step;
        if (s % cfg->log_every == 0 || s == total) {
            write_metrics(metrics, cfg, s, tr.state.epoch, &m);
            double t = now_seconds(), per_step = (t - t_last) / (double)(s - step_last);
            fprintf(timing, "{\"step\":%ld,\"seconds_per_step\":%.6g,\"langevin_steps_per_s\":%.6g}\n", s, per_step,
                    langevin_per_step * cfg->batch_size / per_step);
            fflush(timing);
            t_last = t, step_last = s;
        }
        if (tty || s % cfg->log_every == 0 || s == total) {
            double elapsed = now_seconds() - t0, rate = (double)(s - first) / elapsed;
            char eta[32];
            format_duration(eta, sizeof eta, (double)(total - s) / rate);
            if (tty) {
                int width = 24, filled = (int)(width * (double)s / (double)total);
                char bar[32];
                for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
                bar[width] = 0;
                fprintf(stderr, "\r[%s] %ld/%ld  loss %.2f  log p(x,z0) %.1f  log p(x,zT) %.1f  %.2f it/s  ETA %s ",
                        bar, s, total, m.loss, m.log_p_x_z0, m.log_p_x_zT, rate, eta);
            } else {
                printf("step %ld/%ld  loss %.4f  log_p_x_z0 %.3f  log_p_x_zT %.3f  %.2f it/s  ETA %s\n", s, total, m.loss,
                       m.log_p_x_z0, m.log_p_x_zT, rate, eta);
                fflush(stdout);
            }
        }
        int last = s == total;
        if ((cfg->sample_every && s % cfg->sample_every == 0) || last) {
            if (save_samples(&tr, run_dir, sample_path, sizeof sample_path)) { rc = -1; break; }
        }
        if ((cfg->checkpoint_every && s % cfg->checkpoint_every == 0) || last || interrupted) {
            if (save_checkpoint(&tr, run_dir, "checkpoint")) { rc = -1; break; }
        }
        if (interrupted) break;
    }
    if (tty) fputc('\n', stderr);
    fclose(metrics);
    fclose(timing);
    if (rc == 0) {
        double elapsed = now_seconds() - t0;
        if (interrupted)
            printf("interrupted at step %ld; checkpoint saved. Continue with: lpc train --resume %s\n", tr.state.step, run_dir);
        else
            printf("done: %ld steps in %.1f s\n", tr.state.step - first, elapsed);
        printf("  samples:     %s\n  checkpoint:  %s/checkpoint\n  metrics:     %s/metrics.jsonl\n  config:      %s/config.ini\n",
               sample_path[0] ? sample_path : "(none)", run_dir, run_dir, run_dir);
    }
    lpc_trainer_destroy(&tr);
    lpc_dataset_free(&data);
    return rc ? -1 : (interrupted ? 130 : 0);
fail:
    lpc_trainer_destroy(&tr);
    lpc_dataset_free(&data);
    return -1;
}
