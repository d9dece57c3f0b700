/* The data-set loaders on fixtures written here in the official formats (issue "data sets"): CIFAR-10
 * binary batches, SVHN .mat files through libmatio (compressed and not), a CelebA-style folder of
 * JPEGs with its partition file, and a folder of PNGs; labels, pixel order, counts, the decoded-image
 * cache, crop and resize against hand-computed values, and bad input refused with the file named. */
#define _DEFAULT_SOURCE /* truncate() */
#include <matio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lpc/check.h"
#include "lpc/data.h"
#include "lpc/image_prep.h"
#include "testutil.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

static char dir[256];

static void sh(const char *fmt, const char *arg) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, arg, arg);
    if (system(cmd) != 0) fprintf(stderr, "command failed: %s\n", cmd);
}

static unsigned char cifar_pixel(long r, int c, int y, int x) { return (unsigned char)((r * 7 + c * 50 + y * 3 + x) % 256); }

static void check_cifar(void) {
    char d[300], path[400];
    snprintf(d, sizeof d, "%s/cifar", dir);
    sh("mkdir -p %s", d);
    snprintf(path, sizeof path, "%s/test_batch.bin", d);
    FILE *f = fopen(path, "wb");
    unsigned char rec[3073];
    for (long r = 0; r < 10000; r++) {
        rec[0] = (unsigned char)(r % 10);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) rec[1 + c * 1024 + y * 32 + x] = cifar_pixel(r, c, y, x);
        fwrite(rec, 1, sizeof rec, f);
    }
    fclose(f);
    struct lpc_dataset ds;
    memset(&ds, 0, sizeof ds);
    CHECK(lpc_cifar10_load(&ds, d, LPC_SPLIT_TEST, 0) == 0, "CIFAR-10 test batch: %s", lpc_last_error());
    CHECK(ds.n == 10000 && ds.c == 3 && ds.h == 32 && ds.w == 32, "10000 images of 3x32x32, got %ld", ds.n);
    if (ds.pixels)
        CHECK(ds.pixels[((size_t)4321 * 3 + 2) * 1024 + 17 * 32 + 5] == cifar_pixel(4321, 2, 17, 5) && ds.labels[4321] == 1,
              "record 4321: blue plane pixel (17, 5) and label in place");
    lpc_dataset_free(&ds);
    /* truncated */
    if (truncate(path, 30730000 - 1) != 0) perror("truncate");
    CHECK(lpc_cifar10_load(&ds, d, LPC_SPLIT_TEST, 0) != 0 && strstr(lpc_last_error(), "test_batch.bin") &&
              strstr(lpc_last_error(), "30730000"),
          "truncated CIFAR file: %s", lpc_last_error());
    /* the train split needs all five files */
    CHECK(lpc_cifar10_load(&ds, d, LPC_SPLIT_TRAIN, 0) != 0 && strstr(lpc_last_error(), "data_batch_1.bin"),
          "missing train batch named: %s", lpc_last_error());
}

static void write_svhn(const char *path, int n, int compress, const char *xname, int channels) {
    mat_t *mat = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
    size_t xd[4] = {32, 32, (size_t)channels, (size_t)n}, yd[2] = {(size_t)n, 1};
    unsigned char *x = malloc((size_t)32 * 32 * channels * n);
    double *y = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        y[i] = i % 10 == 0 ? 10 : i % 10;
        for (int c = 0; c < channels; c++)
            for (int col = 0; col < 32; col++)
                for (int r = 0; r < 32; r++) x[r + 32 * (col + 32 * (c + channels * (size_t)i))] = (unsigned char)(r + 2 * col + 70 * c + i);
    }
    matvar_t *vx = Mat_VarCreate(xname, MAT_C_UINT8, MAT_T_UINT8, 4, xd, x, 0);
    matvar_t *vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, yd, y, 0);
    Mat_VarWrite(mat, vx, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
    Mat_VarWrite(mat, vy, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
    Mat_VarFree(vx), Mat_VarFree(vy), Mat_Close(mat);
    free(x), free(y);
}

static void check_svhn(void) {
    char d[300], path[400];
    snprintf(d, sizeof d, "%s/svhn", dir);
    sh("mkdir -p %s", d);
    snprintf(path, sizeof path, "%s/train_32x32.mat", d);
    for (int compress = 0; compress < 2; compress++) {
        write_svhn(path, 23, compress, "X", 3);
        struct lpc_dataset ds;
        memset(&ds, 0, sizeof ds);
        CHECK(lpc_svhn_load(&ds, d, LPC_SPLIT_TRAIN, 0) == 0, "SVHN (compressed %d): %s", compress, lpc_last_error());
        CHECK(ds.n == 23 && ds.c == 3 && ds.h == 32, "23 images of 3x32x32, got %ld", ds.n);
        /* X(row 5, col 9, channel 2, image 7) = 5 + 18 + 140 + 7 lands at [7][2][5][9]; y = 10 means digit 0 */
        if (ds.pixels)
            CHECK(ds.pixels[((size_t)7 * 3 + 2) * 1024 + 5 * 32 + 9] == 170 && ds.labels[10] == 0 && ds.labels[7] == 7,
                  "column-major X transposed to row-major, label 10 -> 0 (got %d, label %d)", ds.pixels[((size_t)7 * 3 + 2) * 1024 + 5 * 32 + 9],
                  ds.labels[10]);
        lpc_dataset_free(&ds);
    }
    struct lpc_dataset ds;
    write_svhn(path, 4, 0, "images", 3);
    CHECK(lpc_svhn_load(&ds, d, LPC_SPLIT_TRAIN, 0) != 0 && strstr(lpc_last_error(), "no variable 'X'"), "wrong name: %s", lpc_last_error());
    write_svhn(path, 4, 0, "X", 1);
    CHECK(lpc_svhn_load(&ds, d, LPC_SPLIT_TRAIN, 0) != 0 && strstr(lpc_last_error(), "dimension 3"), "wrong dims: %s", lpc_last_error());
    write_svhn(path, 40, 0, "X", 3);
    if (truncate(path, 2000) != 0) perror("truncate");
    CHECK(lpc_svhn_load(&ds, d, LPC_SPLIT_TRAIN, 0) != 0 && strstr(lpc_last_error(), "train_32x32.mat"), "truncated .mat: %s",
          lpc_last_error());
    CHECK(lpc_svhn_load(&ds, d, LPC_SPLIT_TEST, 0) != 0 && strstr(lpc_last_error(), "test_32x32.mat"), "missing file named: %s",
          lpc_last_error());
}

static void check_crop_resize(void) {
    int x0, y0, s;
    lpc_crop_box(178, 218, 148, &x0, &y0, &s);
    CHECK(x0 == 15 && y0 == 35 && s == 148, "CelebA crop 148: left %d top %d (expected 15, 35)", x0, y0);
    lpc_crop_box(178, 218, 140, &x0, &y0, &s);
    CHECK(x0 == 19 && y0 == 39 && s == 140, "CelebA crop 140: left %d top %d (expected 19, 39)", x0, y0);
    /* 3x3 -> 2x2: each output box is 1.5 pixels wide: (0 + 0.5 * 90) / 1.5 = 30 and (0.5 * 90 + 180) / 1.5 = 150 */
    unsigned char img[9], out[4];
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) img[y * 3 + x] = (unsigned char)(90 * x);
    lpc_crop_resize(out, 2, img, 3, 3, 1, 0);
    CHECK(out[0] == 30 && out[1] == 150 && out[2] == 30 && out[3] == 150, "area resize 3 -> 2: %d %d %d %d, expected 30 150 30 150",
          out[0], out[1], out[2], out[3]);
    /* 4x4 -> 2x2 averages 2x2 blocks; channels stay apart (HWC in, CHW out) */
    unsigned char rgb[4 * 4 * 3], o2[2 * 2 * 3];
    for (int i = 0; i < 16; i++) rgb[i * 3] = (unsigned char)(i * 10), rgb[i * 3 + 1] = 7, rgb[i * 3 + 2] = (unsigned char)(200 - i);
    lpc_crop_resize(o2, 2, rgb, 4, 4, 3, 0);
    /* red block (0,0): pixels 0, 1, 4, 5 -> (0 + 10 + 40 + 50) / 4 = 25 */
    CHECK(o2[0] == 25 && o2[3] == 125 && o2[4] == 7 && o2[8] == 200 - 2 /* (0+1+4+5)/4 = 2.5 -> 200-2.5 = 197.5 rounds to 198 */,
          "4 -> 2 block means: %d %d %d %d", o2[0], o2[3], o2[4], o2[8]);
    /* a crop keeps the centre: 4x2 image, crop 2 -> columns 1, 2 */
    unsigned char wide[8] = {0, 100, 200, 50, 0, 100, 200, 50}, one[4];
    lpc_crop_resize(one, 2, wide, 4, 2, 1, 2);
    CHECK(one[0] == 100 && one[1] == 200, "centre crop keeps columns 1 and 2: %d %d", one[0], one[1]);
}

static void write_jpg(const char *path, int w, int h, unsigned char r, unsigned char g, unsigned char b) {
    unsigned char *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) px[i * 3] = r, px[i * 3 + 1] = g, px[i * 3 + 2] = b;
    stbi_write_jpg(path, w, h, 3, px, 95);
    free(px);
}

static void check_celeba(void) {
    char d[300], path[500];
    snprintf(d, sizeof d, "%s/celeba", dir);
    sh("mkdir -p %s/img_align_celeba", d);
    snprintf(path, sizeof path, "%s/list_eval_partition.txt", d);
    FILE *f = fopen(path, "w");
    for (int i = 1; i <= 9; i++) {
        char img[400];
        snprintf(img, sizeof img, "%s/img_align_celeba/%06d.jpg", d, i);
        write_jpg(img, 178, 218, (unsigned char)(20 * i), 100, (unsigned char)(250 - 20 * i));
        fprintf(f, "%06d.jpg %d\n", i, i <= 5 ? 0 : i <= 7 ? 1 : 2);
    }
    fclose(f);
    struct lpc_dataset ds;
    memset(&ds, 0, sizeof ds);
    CHECK(lpc_celeba_load(&ds, d, LPC_SPLIT_TRAIN, 0, 148, 16) == 0, "CelebA fixture: %s", lpc_last_error());
    CHECK(ds.n == 5 && ds.c == 3 && ds.h == 16, "train partition: 5 images of 3x16x16, got %ld", ds.n);
    /* image 3 is flat (60, 100, 190): JPEG keeps flat colours within a few levels */
    if (ds.pixels)
        CHECK(abs(ds.pixels[(size_t)2 * 768 + 0 * 256 + 77] - 60) <= 3 && abs(ds.pixels[(size_t)2 * 768 + 2 * 256 + 77] - 190) <= 3,
              "image 3 red %d (60), blue %d (190)", ds.pixels[2 * 768 + 77], ds.pixels[2 * 768 + 512 + 77]);
    unsigned char first = ds.pixels ? ds.pixels[0] : 0;
    lpc_dataset_free(&ds);
    CHECK(lpc_celeba_load(&ds, d, LPC_SPLIT_TEST, 0, 148, 16) == 0 && ds.n == 2, "test partition: 2 images, got %ld", ds.n);
    lpc_dataset_free(&ds);
    CHECK(lpc_celeba_load(&ds, d, LPC_SPLIT_VALID, 0, 148, 16) == 0 && ds.n == 2, "valid partition: 2 images, got %ld", ds.n);
    lpc_dataset_free(&ds);
    /* the cache: written once, read back, rebuilt when corrupt */
    char cache[600];
    snprintf(cache, sizeof cache, "%s/lpc-cache-0-n5-c148-s16.u8", d);
    CHECK(access(cache, R_OK) == 0, "decoded set cached at %s", cache);
    FILE *c = fopen(cache, "r+b");
    if (c) {
        fseek(c, 100, SEEK_SET);
        fputc(first ^ 0xff, c);
        fclose(c);
    }
    CHECK(lpc_celeba_load(&ds, d, LPC_SPLIT_TRAIN, 0, 148, 16) == 0 && ds.n == 5 && ds.pixels[0] == first,
          "a corrupt cache is detected and rebuilt");
    lpc_dataset_free(&ds);
    /* bad input */
    snprintf(path, sizeof path, "%s/img_align_celeba/000004.jpg", d);
    FILE *bad = fopen(path, "w");
    fputs("not a jpeg", bad);
    fclose(bad);
    sh("rm -f %s/lpc-cache-*", d);
    CHECK(lpc_celeba_load(&ds, d, LPC_SPLIT_TRAIN, 0, 148, 16) != 0 && strstr(lpc_last_error(), "000004.jpg"),
          "an unreadable JPEG is named: %s", lpc_last_error());
    snprintf(path, sizeof path, "%s/list_eval_partition.txt", d);
    unlink(path);
    CHECK(lpc_celeba_load(&ds, d, LPC_SPLIT_TRAIN, 0, 148, 16) != 0 && strstr(lpc_last_error(), "list_eval_partition.txt"),
          "missing partition file: %s", lpc_last_error());
}

static void check_folder(void) {
    char d[300], path[500];
    snprintf(d, sizeof d, "%s/folder", dir);
    sh("mkdir -p %s", d);
    struct lpc_dataset ds;
    memset(&ds, 0, sizeof ds);
    CHECK(lpc_folder_load(&ds, d, 0, 0, 8, 0) != 0 && strstr(lpc_last_error(), "no files"), "empty folder: %s", lpc_last_error());
    for (int i = 0; i < 4; i++) {
        unsigned char px[12 * 10 * 3];
        for (int k = 0; k < 12 * 10; k++) px[k * 3] = (unsigned char)(i * 50), px[k * 3 + 1] = 1, px[k * 3 + 2] = 2;
        snprintf(path, sizeof path, "%s/img%d.png", d, i);
        stbi_write_png(path, 12, 10, 3, px, 36);
    }
    CHECK(lpc_folder_load(&ds, d, 0, 0, 8, 0) == 0 && ds.n == 4 && ds.h == 8, "4 PNGs: %s", lpc_last_error());
    if (ds.pixels) CHECK(ds.pixels[(size_t)3 * 192] == 150 && ds.pixels[(size_t)3 * 192 + 64] == 1, "name order and channels kept");
    lpc_dataset_free(&ds);
    snprintf(path, sizeof path, "%s/notes.txt", d);
    FILE *f = fopen(path, "w");
    fputs("hello", f);
    fclose(f);
    CHECK(lpc_folder_load(&ds, d, 0, 0, 8, 0) != 0 && strstr(lpc_last_error(), "notes.txt"), "a non-image file is named: %s",
          lpc_last_error());
    CHECK(lpc_folder_load(&ds, d, 0, 0, 8, 1) == 0 && ds.n == 4, "skip_bad_images leaves it out");
    lpc_dataset_free(&ds);
    CHECK(lpc_folder_load(&ds, d, 0, 0, 16, 0) != 0 && strstr(lpc_last_error(), "smaller"), "images smaller than image_size: %s",
          lpc_last_error());
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lpc_test_data_%d", (int)getpid());
    sh("mkdir -p %s", dir);
    check_crop_resize();
    check_cifar();
    check_svhn();
    check_celeba();
    check_folder();
    sh("rm -rf %s", dir);
    return test_finish("test_data");
}
