/* SVHN cropped digits (SPEC.md section 5): train_32x32.mat, test_32x32.mat, extra_32x32.mat, MATLAB
 * v5 files read with libmatio (compressed or not). X is uint8 32 x 32 x 3 x N, column-major (X(row,
 * col, channel, n)); y is double N x 1 with 10 meaning the digit 0. Variable names, classes and
 * dimensions are checked from the headers before the data is read. */
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lpc/check.h"
#include "lpc/data.h"

#define MAX_IMAGES 2000000L

static int check_var(matvar_t *v, const char *path, const char *name, enum matio_classes cls, int rank, const size_t *dims) {
    if (!v) return lpc_fail("%s: no variable '%s' (expected an SVHN *_32x32.mat file with X and y)", path, name);
    if (v->class_type != cls)
        return lpc_fail("%s: variable '%s' has MATLAB class %d, expected %s", path, name, (int)v->class_type,
                        cls == MAT_C_UINT8 ? "uint8" : "double");
    if (v->rank != rank) return lpc_fail("%s: variable '%s' has %d dimensions, expected %d", path, name, v->rank, rank);
    for (int i = 0; i < rank; i++)
        if (dims[i] && v->dims[i] != dims[i])
            return lpc_fail("%s: variable '%s' has size %zu in dimension %d, expected %zu", path, name, v->dims[i], i + 1, dims[i]);
    return 0;
}

int lpc_svhn_load(struct lpc_dataset *d, const char *dir, int split, long limit) {
    const char *file = split == LPC_SPLIT_TEST ? "test_32x32.mat" : split == LPC_SPLIT_EXTRA ? "extra_32x32.mat" : "train_32x32.mat";
    char path[LPC_STRING_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct stat st;
    if (stat(path, &st) != 0) return lpc_fail("%s: cannot open (expected the SVHN cropped-digits .mat files)", path);
    mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!mat) return lpc_fail("%s: not a MATLAB file that libmatio can read", path);
    matvar_t *x = Mat_VarReadInfo(mat, "X"), *y = Mat_VarReadInfo(mat, "y");
    const size_t xdims[4] = {32, 32, 3, 0};
    int rc = check_var(x, path, "X", MAT_C_UINT8, 4, xdims);
    size_t n = rc == 0 ? x->dims[3] : 0;
    const size_t ydims[2] = {n, 1};
    if (rc == 0) rc = check_var(y, path, "y", MAT_C_DOUBLE, 2, ydims);
    /* an uncompressed X holds its bytes in the file; a compressed one shrinks by far less than 1000x */
    if (rc == 0 && (n == 0 || (long)n > MAX_IMAGES || (double)n * 3072 > 1000.0 * (double)st.st_size))
        rc = lpc_fail("%s: X claims %zu images, which the file of %lld bytes cannot hold", path, n, (long long)st.st_size);
    if (x) Mat_VarFree(x);
    if (y) Mat_VarFree(y);
    x = y = NULL;
    if (rc == 0) {
        x = Mat_VarRead(mat, "X");
        y = Mat_VarRead(mat, "y");
        if (!x || !y || !x->data || !y->data) rc = lpc_fail("%s: cannot read X and y (truncated or corrupt file)", path);
    }
    if (rc == 0) {
        long count = (long)n;
        if (limit > 0 && limit < count) count = limit;
        d->n = count, d->c = 3, d->h = d->w = 32;
        d->pixels = lpc_xmalloc((size_t)count * 3072);
        d->labels = lpc_xmalloc((size_t)count);
        const unsigned char *src = x->data;
        const double *labels = y->data;
        for (long i = 0; i < count && rc == 0; i++) {
            double l = labels[i];
            if (!(l >= 1 && l <= 10 && l == (int)l)) {
                rc = lpc_fail("%s: y(%ld) = %g, expected an integer label 1..10", path, i + 1, l);
                break;
            }
            d->labels[i] = (unsigned char)((int)l % 10);
            for (int c = 0; c < 3; c++)
                for (int r = 0; r < 32; r++)
                    for (int col = 0; col < 32; col++)
                        d->pixels[(((size_t)i * 3 + c) * 32 + r) * 32 + col] = src[r + 32 * (col + 32 * (c + 3 * (size_t)i))];
        }
        if (rc) free(d->pixels), free(d->labels), d->pixels = d->labels = NULL;
    }
    if (x) Mat_VarFree(x);
    if (y) Mat_VarFree(y);
    Mat_Close(mat);
    return rc;
}
