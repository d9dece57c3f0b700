/* libFuzzer target: the safetensors reader (header length, JSON header, every entry's dtype, shape and
 * offsets). */
#include "fuzz_common.h"
#include "lpc/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", fuzz_dir());
    fuzz_write(path, data, size);
    struct lpc_st_file f;
    if (lpc_safetensors_read(&f, path, 1 << 24) == 0) {
        const struct lpc_st_tensor *t;
        int64_t shape[1] = {4};
        lpc_safetensors_expect(&f, "w", LPC_ST_F32, 1, shape, &t);
        lpc_safetensors_free(&f);
    }
    return 0;
}
