/* Writing images: PNG grids and single PNGs (stb_image_write) and .npz arrays (uint8 N x H x W x C, the
 * layout pytorch-fid and clean-fid read). All writes are atomic. */
#ifndef LPC_IMAGE_IO_H
#define LPC_IMAGE_IO_H

#include <stddef.h>

/* Converts floats in [-1, 1] (NCHW) to bytes (NCHW), rounding and clamping. */
void lpc_images_to_u8(unsigned char *out, const float *x, size_t count);
/* A grid of n images (uint8 NCHW, c = 1 or 3), cols per row, 2 px borders. */
int lpc_png_write_grid(const char *path, const unsigned char *images, int n, int c, int h, int w, int cols);
int lpc_png_write(const char *path, const unsigned char *image_nchw, int c, int h, int w);
/* .npz with one array arr_0 of shape [n, h, w, c], uint8. */
int lpc_npz_write(const char *path, const unsigned char *images_nchw, int n, int c, int h, int w);

#endif
