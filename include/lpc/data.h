/* Data sets (SPEC.md section 5): every loader produces the same in-memory form, uint8 images in
 * NCHW order with their labels, after validating sizes, magic numbers and counts before it allocates.
 * Pixels u map to x = u / 127.5 - 1 when a batch is made. */
#ifndef LPC_DATA_H
#define LPC_DATA_H

#include <stdint.h>

#include "lpc/config.h"

struct lpc_dataset {
    char name[32];
    char source[LPC_STRING_MAX]; /* the folder or file it came from */
    long n;
    int c, h, w;
    unsigned char *pixels; /* n * c * h * w, NCHW */
    unsigned char *labels; /* n, or NULL */
};

/* Loads cfg->dataset, cfg->split, the first cfg->limit images. -1 with a message naming the file. */
int lpc_dataset_load(struct lpc_dataset *d, const struct lpc_config *cfg);
void lpc_dataset_free(struct lpc_dataset *d);
/* Image shape a config's data set will have, without loading it (for model construction). */
int lpc_dataset_shape(const struct lpc_config *cfg, int *c, int *h, int *w);
/* The standard folder of a data set (used when data_path is empty). */
const char *lpc_dataset_default_path(int dataset);

/* IDX (MNIST / Fashion-MNIST) image and label files, gzipped or raw. limit 0: all. */
int lpc_idx_load(struct lpc_dataset *d, const char *images_path, const char *labels_path, long limit);

/* CIFAR-10 binary batches in dir. */
int lpc_cifar10_load(struct lpc_dataset *d, const char *dir, int split, long limit);
/* SVHN *_32x32.mat files in dir. */
int lpc_svhn_load(struct lpc_dataset *d, const char *dir, int split, long limit);
/* CelebA (img_align_celeba/ and list_eval_partition.txt in dir), cached after the first decode. */
int lpc_celeba_load(struct lpc_dataset *d, const char *dir, int split, long limit, int crop, int size);
/* Every image file of a folder, in name order. */
int lpc_folder_load(struct lpc_dataset *d, const char *dir, long limit, int crop, int size, int skip_bad);
/* Decodes n image files (any size; RGB), crops and resizes them to size x size. A file that cannot
 * be used fails the load naming it, or with skip_bad is left out and counted in *skipped. */
int lpc_decode_images(struct lpc_dataset *d, char **paths, long n, int crop, int size, int skip_bad, long *skipped);

/* Batch of images as floats in [-1, 1], NCHW; flip[i] != 0 mirrors image i horizontally (flip may be NULL). */
void lpc_dataset_batch(const struct lpc_dataset *d, float *out, const int32_t *indices, int n, const unsigned char *flip);
/* Per-channel mean and standard deviation of the pixel values in [0, 1]. */
void lpc_dataset_stats(const struct lpc_dataset *d, double *mean, double *std);

#endif
