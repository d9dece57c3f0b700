/* Centre crop and area-averaging (antialiased) resize of 8-bit images (SPEC.md section 5: celeba and
 * folder). The resize is separable: each output pixel averages the input pixels its box covers, with
 * fractional weights at the box's edges, so downscaling never aliases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpc/check.h"
#include "lpc/image_prep.h"

void lpc_crop_box(int w, int h, int crop, int *x0, int *y0, int *side) {
    int s = crop > 0 ? crop : (w < h ? w : h);
    if (s > w) s = w;
    if (s > h) s = h;
    *side = s;
    *x0 = (w - s) / 2;
    *y0 = (h - s) / 2;
}

/* weights of input samples [0, in) for output sample o of out: the overlap of [i, i+1) with
 * [o * in / out, (o + 1) * in / out), normalised */
static void area_resize_1d(float *dst, const float *src, int in, int out, int stride_src, int stride_dst, int count,
                           int step_src, int step_dst) {
    const double scale = (double)in / out;
    for (int o = 0; o < out; o++) {
        double lo = o * scale, hi = (o + 1) * scale;
        int first = (int)floor(lo), last = (int)ceil(hi) - 1;
        if (last >= in) last = in - 1;
        for (int k = 0; k < count; k++) {
            double acc = 0;
            for (int i = first; i <= last; i++) {
                double wgt = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                if (wgt > 0) acc += wgt * src[(size_t)k * step_src + (size_t)i * stride_src];
            }
            dst[(size_t)k * step_dst + (size_t)o * stride_dst] = (float)(acc / scale);
        }
    }
}

void lpc_crop_resize(unsigned char *out, int size, const unsigned char *hwc, int w, int h, int c, int crop) {
    int x0, y0, s;
    lpc_crop_box(w, h, crop, &x0, &y0, &s);
    float *tmp = lpc_xmalloc(sizeof(float) * (size_t)s * s), *rows = lpc_xmalloc(sizeof(float) * (size_t)s * size),
          *res = lpc_xmalloc(sizeof(float) * (size_t)size * size);
    for (int ch = 0; ch < c; ch++) {
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++) tmp[(size_t)y * s + x] = hwc[((size_t)(y0 + y) * w + x0 + x) * c + ch];
        /* horizontally: s rows of s -> s rows of size; then vertically: size columns of s -> size */
        area_resize_1d(rows, tmp, s, size, 1, 1, s, s, size);
        area_resize_1d(res, rows, s, size, size, size, size, 1, 1);
        for (int i = 0; i < size * size; i++) {
            float v = res[i] + 0.5f;
            out[(size_t)ch * size * size + i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(tmp), free(rows), free(res);
}
