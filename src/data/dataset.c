/* Data set dispatch, batching and statistics (SPEC.md section 5). */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/data.h"
#include "lpc/fileutil.h"

const char *lpc_dataset_default_path(int dataset) {
    switch (dataset) {
    case LPC_DATASET_FASHION_MNIST: return "/usr/share/datasets/fashion-mnist";
    case LPC_DATASET_MNIST: return "/usr/share/datasets/mnist";
    case LPC_DATASET_CIFAR10: return "data/cifar-10-batches-bin";
    case LPC_DATASET_SVHN: return "data/svhn";
    case LPC_DATASET_CELEBA: return "data/celeba";
    default: return "";
    }
}

int lpc_dataset_shape(const struct lpc_config *cfg, int *c, int *h, int *w) {
    switch (cfg->dataset) {
    case LPC_DATASET_FASHION_MNIST:
    case LPC_DATASET_MNIST: *c = 1, *h = *w = 28; return 0;
    case LPC_DATASET_CIFAR10:
    case LPC_DATASET_SVHN: *c = 3, *h = *w = 32; return 0;
    default: *c = 3, *h = *w = (int)cfg->image_size; return 0;
    }
}

/* IDX files of a split: the uncompressed name or the .gz one, whichever exists. */
static void idx_path(char *out, size_t len, const char *dir, const char *base) {
    snprintf(out, len, "%s/%s.gz", dir, base);
    if (!lpc_exists(out)) snprintf(out, len, "%s/%s", dir, base);
}

int lpc_dataset_load(struct lpc_dataset *d, const struct lpc_config *cfg) {
    memset(d, 0, sizeof *d);
    const char *dir = cfg->data_path[0] ? cfg->data_path : lpc_dataset_default_path(cfg->dataset);
    switch (cfg->dataset) {
    case LPC_DATASET_FASHION_MNIST:
    case LPC_DATASET_MNIST: {
        if (!lpc_is_dir(dir)) {
            if (cfg->dataset == LPC_DATASET_FASHION_MNIST && !cfg->data_path[0])
                return lpc_fail("%s: not found; install it with: apt-get install dataset-fashion-mnist (or set data_path)", dir);
            return lpc_fail("%s: data folder not found (set data_path to the folder with the IDX files)", dir);
        }
        const char *prefix = cfg->split == LPC_SPLIT_TEST ? "t10k" : "train";
        char images[LPC_STRING_MAX + 64], labels[LPC_STRING_MAX + 64], base[64];
        snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
        idx_path(images, sizeof images, dir, base);
        snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
        idx_path(labels, sizeof labels, dir, base);
        if (lpc_idx_load(d, images, labels, cfg->limit)) return -1;
        break;
    }
    case LPC_DATASET_CIFAR10:
        if (lpc_cifar10_load(d, dir, cfg->split, cfg->limit)) return -1;
        break;
    case LPC_DATASET_SVHN:
        if (lpc_svhn_load(d, dir, cfg->split, cfg->limit)) return -1;
        break;
    case LPC_DATASET_CELEBA:
        if (lpc_celeba_load(d, dir, cfg->split, cfg->limit, (int)cfg->crop, (int)cfg->image_size)) return -1;
        break;
    default:
        if (lpc_folder_load(d, dir, cfg->limit, (int)cfg->crop, (int)cfg->image_size, cfg->skip_bad_images)) return -1;
        break;
    }
    snprintf(d->name, sizeof d->name, "%s", lpc_config_choice(LPC_KEY_dataset, cfg->dataset));
    snprintf(d->source, sizeof d->source, "%s", dir);
    return 0;
}

void lpc_dataset_free(struct lpc_dataset *d) {
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void lpc_dataset_batch(const struct lpc_dataset *d, float *out, const int32_t *indices, int n, const unsigned char *flip) {
    const size_t hw = (size_t)d->h * d->w, image = (size_t)d->c * hw;
    for (int i = 0; i < n; i++) {
        const unsigned char *src = d->pixels + (size_t)indices[i] * image;
        float *dst = out + (size_t)i * image;
        int mirror = flip && flip[i];
        for (int c = 0; c < d->c; c++)
            for (int y = 0; y < d->h; y++)
                for (int x = 0; x < d->w; x++) {
                    int sx = mirror ? d->w - 1 - x : x;
                    dst[c * hw + (size_t)y * d->w + x] = src[c * hw + (size_t)y * d->w + sx] / 127.5f - 1.0f;
                }
    }
}

void lpc_dataset_stats(const struct lpc_dataset *d, double *mean, double *std) {
    const size_t hw = (size_t)d->h * d->w;
    for (int c = 0; c < d->c; c++) {
        double s = 0, s2 = 0;
        for (long i = 0; i < d->n; i++) {
            const unsigned char *p = d->pixels + ((size_t)i * d->c + c) * hw;
            unsigned long long a = 0, a2 = 0;
            for (size_t j = 0; j < hw; j++) a += p[j], a2 += (unsigned long long)p[j] * p[j];
            s += (double)a, s2 += (double)a2;
        }
        double count = (double)d->n * (double)hw;
        double m = s / count / 255.0, m2 = s2 / count / (255.0 * 255.0);
        mean[c] = m;
        std[c] = m2 > m * m ? sqrt(m2 - m * m) : 0.0;
    }
}
