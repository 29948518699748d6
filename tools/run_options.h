/* mhfa-run's command line: what each option means, parsing and validation. */
#ifndef MHFA_TOOLS_RUN_OPTIONS_H
#define MHFA_TOOLS_RUN_OPTIONS_H

typedef struct run_options {
    const char *device;  /* NULL: MHFA_DEVICE, else the default device */
    const char *weights; /* NULL: the module's own initial weights */
    const char *prefix;  /* tensor name prefix in the weights file, NULL for none */
    const char *heatmap; /* PNG path, NULL for none */
    int batch, nodes, heads, embed, input;
    int heads_given, embed_given, input_given; /* set on the command line, not defaults */
    int json;
} run_options;

typedef enum run_options_result {
    RUN_OPTIONS_OK,
    RUN_OPTIONS_HELP,     /* --help printed the usage: exit 0 */
    RUN_OPTIONS_BAD_USAGE /* a message went to stderr: exit 2 */
} run_options_result;

/* Fills opts from argv (defaults for what is not given) and checks every value. */
run_options_result run_options_parse(int argc, char **argv, run_options *opts);

#endif
