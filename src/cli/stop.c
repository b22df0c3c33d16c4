/* slipway stop: stop running containers, as `docker stop` does: the image's STOPSIGNAL
 * (SIGTERM by default), then SIGKILL after the timeout. */
#include "../lib/container.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway stop [OPTIONS] CONTAINER [CONTAINER...]\n"
    "\n"
    "Stop running containers: send the image's STOPSIGNAL (SIGTERM by default) to the\n"
    "container's main process, and SIGKILL if it is still running after the timeout. A stopped\n"
    "container is not restarted by --restart=on-failure. Prints each name given.\n"
    "\n"
    "Options:\n"
    "  -t, --time SECONDS  seconds to wait before SIGKILL (default 10)\n"
    "  -h, --help          print this help\n";

static int
stop_one(sw_container_t *c, const char *ref, void *ctx, sw_error_t *err)
{
  if (sw_container_stop(c, *(int *)ctx, err) < 0)
    return -1;
  printf("%s\n", ref);
  return 0;
}

int
cmd_stop(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"time", required_argument, NULL, 't'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int timeout = 10, c;
  char *end;
  while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
    switch (c) {
    case 't':
      timeout = (int)strtol(optarg, &end, 10);
      if (*end != '\0' || end == optarg || timeout < 0)
        return sw_cli_usage_error("stop", "-t `%s`: a number of seconds", optarg);
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("stop", "bad flags");
    }
  }
  if (optind >= argc)
    return sw_cli_usage_error("stop", "`stop` needs at least one container");
  return sw_cli_each_container(g, argc, argv, optind, stop_one, &timeout);
}
