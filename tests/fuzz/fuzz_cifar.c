/* libFuzzer target: the CIFAR-10 loader. The input is written as test_batch.bin; inputs of the exact
 * file size are rare, so a second case repeats the input to exactly 30,730,000 bytes to reach the
 * record parser. */
#include "fuzz_common.h"
#include "lpc/data.h"

#define FILE_BYTES 30730000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    snprintf(path, sizeof path, "%s/test_batch.bin", fuzz_dir());
    fuzz_write(path, data, size);
    struct lpc_dataset d;
    memset(&d, 0, sizeof d);
    if (lpc_cifar10_load(&d, fuzz_dir(), LPC_SPLIT_TEST, 0) == 0) free(d.pixels), free(d.labels);
    if (size > 0) {
        static uint8_t *full;
        if (!full) full = malloc(FILE_BYTES);
        for (size_t i = 0; i < FILE_BYTES; i++) full[i] = data[i % size];
        fuzz_write(path, full, FILE_BYTES);
        memset(&d, 0, sizeof d);
        if (lpc_cifar10_load(&d, fuzz_dir(), LPC_SPLIT_TEST, 200) == 0) free(d.pixels), free(d.labels);
    }
    return 0;
}
