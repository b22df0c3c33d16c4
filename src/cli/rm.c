/* slipway rm: remove containers (their directory: writable layer, logs, state). */
#include "../lib/container.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway rm [OPTIONS] CONTAINER [CONTAINER...]\n"
    "\n"
    "Remove stopped containers: their writable layer, logs and state. Prints each name given.\n"
    "\n"
    "Options:\n"
    "  -f, --force   kill (SIGKILL) and remove running containers\n"
    "  -h, --help    print this help\n";

static int
rm_one(sw_container_t *c, const char *ref, void *ctx, sw_error_t *err)
{
  int64_t bytes;
  if (sw_container_remove(c, *(bool *)ctx, &bytes, err) < 0)
    return -1;
  printf("%s\n", ref);
  return 0;
}

int
cmd_rm(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {
      {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  bool force = false;
  int c;
  while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
    switch (c) {
    case 'f':
      force = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("rm", "bad flags");
    }
  }
  if (optind >= argc)
    return sw_cli_usage_error("rm", "`rm` needs at least one container");
  return sw_cli_each_container(g, argc, argv, optind, rm_one, &force);
}
