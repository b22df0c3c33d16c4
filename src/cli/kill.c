/* slipway kill: send a signal (SIGKILL by default) to running containers' main process. */
#include "../lib/container.h"
#include "cli.h"

#include <signal.h>

static const char usage_text[] =
    "Usage: slipway kill [OPTIONS] CONTAINER [CONTAINER...]\n"
    "\n"
    "Send a signal to the main process of running containers. Prints each name given.\n"
    "\n"
    "Options:\n"
    "  -s, --signal SIG  signal to send: a name (TERM, SIGHUP) or number (default KILL)\n"
    "  -h, --help        print this help\n";

static int
kill_one(sw_container_t *c, const char *ref, void *ctx, sw_error_t *err)
{
  if (sw_container_kill(c, *(int *)ctx, err) < 0)
    return -1;
  printf("%s\n", ref);
  return 0;
}

int
cmd_kill(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"signal", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int sig = SIGKILL, c;
  while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      sig = sw_signal_parse(optarg);
      if (sig < 0)
        return sw_cli_usage_error(
            "kill", "-s `%s`: not a signal (a name such as TERM, or a number)", optarg);
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("kill", "bad flags");
    }
  }
  if (optind >= argc)
    return sw_cli_usage_error("kill", "`kill` needs at least one container");
  return sw_cli_each_container(g, argc, argv, optind, kill_one, &sig);
}
