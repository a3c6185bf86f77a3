/* cmd_llm.c - model commands (filled in with the inference engine). */
#include "shell/shell.h"
const struct shell_cmd llm_commands[] = { { 0 } };
