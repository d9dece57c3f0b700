/* Crop and resize of decoded 8-bit images (SPEC.md section 5). */
#ifndef LPC_IMAGE_PREP_H
#define LPC_IMAGE_PREP_H

/* The centred square of side crop (0: the largest that fits; clipped to the image) of a w x h image. */
void lpc_crop_box(int w, int h, int crop, int *x0, int *y0, int *side);
/* Crops the centred square of an interleaved (HWC) image and resizes it to size x size by area
 * averaging; out is CHW. */
void lpc_crop_resize(unsigned char *out, int size, const unsigned char *hwc, int w, int h, int c, int crop);

#endif
