/* libFuzzer target: the IDX loader (images and labels files, gzipped or raw). The first byte of the
 * input says where the images file ends and the labels file begins. */
#include "fuzz_common.h"
#include "lpc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t split = 1 + (size - 1) * data[0] / 255;
    char images[128], labels[128];
    snprintf(images, sizeof images, "%s/images", fuzz_dir());
    snprintf(labels, sizeof labels, "%s/labels", fuzz_dir());
    fuzz_write(images, data + 1, split - 1);
    fuzz_write(labels, data + split, size - split);
    struct lpc_dataset d;
    memset(&d, 0, sizeof d);
    if (lpc_idx_load(&d, images, labels, 0) == 0) free(d.pixels), free(d.labels);
    return 0;
}
