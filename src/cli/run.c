/* slipway run: placeholder until its issue lands; replaced by the real command. */
#include "cli.h"

int
cmd_run(int argc, char **argv, sw_global_t *g)
{
  (void)argc;
  (void)argv;
  (void)g;
  fputs("slipway: error: `run` is not implemented yet\n", stderr);
  return SW_EXIT_FAILURE;
}
