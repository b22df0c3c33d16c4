/* slipway container: docker's `container` group: `ls` (= ps), `prune`, and the container
 * commands under their long names (`container rm` = `rm`, …). */
#include "../lib/container.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway container COMMAND [ARGS...]\n"
    "\n"
    "Manage containers.\n"
    "\n"
    "Commands:\n"
    "  ls, ps, list   list containers (`slipway ps`)\n"
    "  prune          remove all stopped containers and print the space freed\n"
    "  logs, stop, kill, rm, exec\n"
    "                 as `slipway logs`, `stop`, `kill`, `rm`, `exec`\n";

static int
prune(int argc, char **argv, sw_global_t *g)
{
  if (sw_cli_wants_help(argc, argv)) {
    fputs("Usage: slipway container prune [-f]\n\nRemove all stopped containers (exited, or dead: "
          "their monitor is gone) and print the space freed.\n\nOptions:\n  -f, --force   do not "
          "ask (prune never asks; accepted for docker users)\n  -h, --help    print this help\n",
          stdout);
    return 0;
  }
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "-f") != 0 && strcmp(argv[i], "--force") != 0)
      return sw_cli_usage_error("container prune", "unexpected argument `%s`", argv[i]);
  _cleanup_free_ char *cdir = sw_cli_containers_dir(g);
  _cleanup_strv_ char **ids = NULL;
  int64_t bytes = 0;
  int r = sw_container_prune(cdir, false, &ids, &bytes);
  char size[32];
  if (ids && ids[0]) {
    printf("Deleted Containers:\n");
    for (char **id = ids; *id; id++)
      printf("%s\n", *id);
    printf("\n");
  }
  sw_format_size((uint64_t)bytes, size, sizeof(size));
  printf("Total reclaimed space: %s\n", size);
  return r < 0 ? 1 : 0;
}

int
cmd_container(int argc, char **argv, sw_global_t *g)
{
  static const struct {
    const char *name;
    int (*fn)(int argc, char **argv, sw_global_t *g);
  } subs[] = {{"ls", cmd_ps},     {"ps", cmd_ps},     {"list", cmd_ps},
              {"prune", prune},   {"logs", cmd_logs}, {"stop", cmd_stop},
              {"kill", cmd_kill}, {"rm", cmd_rm},     {"exec", cmd_exec}};
  if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? SW_EXIT_USAGE : 0;
  }
  for (size_t i = 0; i < SW_ARRAY_SIZE(subs); i++)
    if (strcmp(argv[1], subs[i].name) == 0) {
      optind = 1;
      return subs[i].fn(argc - 1, argv + 1, g);
    }
  return sw_cli_usage_error("container", "unknown command `%s`", argv[1]);
}
