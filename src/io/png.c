/* PNG output through stb_image_write (SPEC.md sections 5 and 6: preview grids, sample grids and
 * folders of samples). Encoded into memory, then written atomically. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/fileutil.h"
#include "lpc/image_io.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

void lpc_images_to_u8(unsigned char *out, const float *x, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float v = (x[i] + 1.0f) * 127.5f;
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        out[i] = (unsigned char)lrintf(v);
    }
}

struct membuf {
    unsigned char *data;
    size_t len, cap;
};

static void append(void *context, void *data, int size) {
    struct membuf *b = context;
    if (b->len + (size_t)size > b->cap) {
        b->cap = (b->len + (size_t)size) * 2;
        b->data = lpc_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += (size_t)size;
}

static int write_hwc(const char *path, const unsigned char *hwc, int c, int h, int w) {
    struct membuf b = {0};
    if (!stbi_write_png_to_func(append, &b, w, h, c, hwc, w * c)) {
        free(b.data);
        return lpc_fail("%s: PNG encoding failed", path);
    }
    const void *parts[1] = {b.data};
    size_t sizes[1] = {b.len};
    int rc = lpc_write_file_atomic(path, parts, sizes, 1);
    free(b.data);
    return rc;
}

int lpc_png_write_grid(const char *path, const unsigned char *images, int n, int c, int h, int w, int cols) {
    const int pad = 2;
    if (cols < 1) cols = 1;
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int gw = cols * (w + pad) + pad, gh = rows * (h + pad) + pad;
    unsigned char *grid = lpc_xcalloc((size_t)gw * gh * c, 1);
    for (int i = 0; i < n; i++) {
        int ox = pad + (i % cols) * (w + pad), oy = pad + (i / cols) * (h + pad);
        const unsigned char *img = images + (size_t)i * c * h * w;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    grid[((size_t)(oy + y) * gw + ox + x) * c + ch] = img[((size_t)ch * h + y) * w + x];
    }
    int rc = write_hwc(path, grid, c, gh, gw);
    free(grid);
    return rc;
}

int lpc_png_write(const char *path, const unsigned char *image_nchw, int c, int h, int w) {
    unsigned char *hwc = lpc_xmalloc((size_t)c * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h * w; i++) hwc[(size_t)i * c + ch] = image_nchw[(size_t)ch * h * w + i];
    int rc = write_hwc(path, hwc, c, h, w);
    free(hwc);
    return rc;
}
