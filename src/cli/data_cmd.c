/* `lpc data` (SPEC.md section 5): validate and summarise a data set, write a preview grid. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "lpc/check.h"
#include "lpc/data.h"
#include "lpc/image_io.h"

int cmd_data(int argc, char **argv) {
    struct cli_option options[] = {{"preview", 0, "where to write the preview grid (default: DATASET_preview.png)", NULL}};
    struct cli_command cmd = {"data", "Loads a data set, checks it, prints its count, shape and per-channel mean/std "
                              "(pixel values in [0, 1]) and writes a grid of its first 64 images.",
                              "lpc data [--dataset NAME] [--data_path DIR] [--split train|test] [--preview FILE.png]",
                              "data", options, 1};
    struct lpc_config cfg;
    lpc_config_defaults(&cfg);
    cli_parse(&cmd, &cfg, argc, argv);
    cli_finalize(&cfg);
    struct lpc_dataset d;
    if (lpc_dataset_load(&d, &cfg)) lpc_die_last_error();
    double mean[4], std[4];
    lpc_dataset_stats(&d, mean, std);
    printf("dataset: %s (%s split) from %s\n", d.name, lpc_config_choice(LPC_KEY_split, cfg.split), d.source);
    printf("images:  %ld\nshape:   %d x %d x %d (C x H x W)\n", d.n, d.c, d.h, d.w);
    for (int c = 0; c < d.c; c++) printf("channel %d: mean %.4f  std %.4f\n", c, mean[c], std[c]);
    if (d.labels) {
        long counts[256] = {0};
        for (long i = 0; i < d.n; i++) counts[d.labels[i]]++;
        printf("labels: ");
        for (int l = 0; l < 256; l++)
            if (counts[l]) printf(" %d:%ld", l, counts[l]);
        printf("\n");
    }
    char path[LPC_STRING_MAX + 32];
    const char *preview = cli_value(&cmd, "preview");
    if (!preview) snprintf(path, sizeof path, "%s_preview.png", d.name), preview = path;
    int n = d.n < 64 ? (int)d.n : 64;
    if (lpc_png_write_grid(preview, d.pixels, n, d.c, d.h, d.w, 8)) lpc_die_last_error();
    printf("preview: %s\n", preview);
    lpc_dataset_free(&d);
    return 0;
}
