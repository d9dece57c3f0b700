/* libFuzzer target: the SVHN .mat loader (libmatio underneath, then lpc's own checks of the variables'
 * names, classes and dimensions and of the labels). */
#include "fuzz_common.h"
#include "lpc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    snprintf(path, sizeof path, "%s/train_32x32.mat", fuzz_dir());
    fuzz_write(path, data, size);
    struct lpc_dataset d;
    memset(&d, 0, sizeof d);
    if (lpc_svhn_load(&d, fuzz_dir(), LPC_SPLIT_TRAIN, 0) == 0) free(d.pixels), free(d.labels);
    return 0;
}
