/* Decoding folders of image files (SPEC.md section 5: celeba, folder): PNG, JPEG and BMP through
 * stb_image on all cores, each image centre-cropped and area-resized to image_size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/data.h"
#include "lpc/image_prep.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wshadow"
#endif
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_FAILURE_STRINGS
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define MAX_SIDE 16384

int lpc_decode_images(struct lpc_dataset *d, char **paths, long n, int crop, int size, int skip_bad, long *skipped) {
    const size_t image = (size_t)3 * size * size;
    unsigned char *pixels = lpc_xmalloc(image * (size_t)(n > 0 ? n : 1));
    unsigned char *bad = lpc_xcalloc((size_t)(n > 0 ? n : 1), 1); /* 1: unreadable, 2: too small */
#pragma omp parallel for schedule(dynamic, 16)
    for (long i = 0; i < n; i++) {
        int w, h, comp;
        if (!stbi_info(paths[i], &w, &h, &comp) || w > MAX_SIDE || h > MAX_SIDE) {
            bad[i] = 1;
            continue;
        }
        unsigned char *hwc = stbi_load(paths[i], &w, &h, &comp, 3);
        if (!hwc) {
            bad[i] = 1;
            continue;
        }
        if ((crop > 0 && (w < crop || h < crop)) || (w < size || h < size)) bad[i] = 2;
        else lpc_crop_resize(pixels + image * (size_t)i, size, hwc, w, h, 3, crop);
        stbi_image_free(hwc);
    }
    long kept = 0, dropped = 0;
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i++) {
        if (!bad[i]) {
            if (kept != i) memmove(pixels + image * (size_t)kept, pixels + image * (size_t)i, image);
            kept++;
        } else if (skip_bad) {
            dropped++;
        } else {
            rc = lpc_fail("%s: %s (use --skip_bad_images true to leave such files out)", paths[i],
                          bad[i] == 1 ? "not a readable PNG, JPEG or BMP image"
                                      : "smaller than the crop or image_size");
        }
    }
    free(bad);
    if (rc == 0 && kept == 0) rc = lpc_fail("%s: no readable images (%ld skipped)", n ? paths[0] : "folder", dropped);
    if (rc) {
        free(pixels);
        return rc;
    }
    d->n = kept, d->c = 3, d->h = d->w = size;
    d->pixels = pixels;
    d->labels = NULL;
    if (skipped) *skipped = dropped;
    return 0;
}
