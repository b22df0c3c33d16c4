/* slipway: entry point; global flags and the subcommand table. */
#include "cli.h"

#include "../lib/userns.h"

#include <stdarg.h>

#ifndef SW_VERSION
#define SW_VERSION "0.1.0"
#endif

struct command {
  const char *name;
  int (*fn)(int argc, char **argv, sw_global_t *g);
  const char *summary;
};

static const struct command commands[] = {
#define X(name, summary) {#name, cmd_##name, summary},
    SW_COMMANDS(X)
#undef X
};

int
sw_cli_usage_error(const char *cmd, const char *fmt, ...)
{
  va_list ap;
  fputs("slipway: error: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (cmd)
    fprintf(stderr, "\nRun 'slipway %s --help' for usage.\n", cmd);
  else
    fputs("\nRun 'slipway --help' for usage.\n", stderr);
  return SW_EXIT_USAGE;
}

static void
usage(FILE *f)
{
  fputs("Usage: slipway [OPTIONS] COMMAND [ARG...]\n"
        "\n"
        "Build OCI container images from Dockerfiles, without a daemon.\n"
        "\n"
        "Options:\n"
        "      --root DIR   store directory (env SLIPWAY_ROOT, default /var/lib/slipway, or\n"
        "                   ${XDG_DATA_HOME:-~/.local/share}/slipway for a non-root user)\n"
        "  -D, --debug      print debug output\n"
        "  -h, --help       print this help\n"
        "  -v, --version    print the version\n"
        "\n"
        "Commands:\n",
        f);
  for (size_t i = 0; i < SW_ARRAY_SIZE(commands); i++)
    fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fputs("\nRun 'slipway COMMAND --help' for more information on a command.\n", f);
}

/* Commands that run as the user, outside any namespace (no mapping cost: two setuid execs, a
 * few ms; no rootless warning): those that touch neither a store nor a sandbox, and those that
 * read or write only the store's database and blobs, which belong to the user (files of
 * subordinate ids are only in snapshots, containers and tmp/ and trash/, which the store's open
 * leaves alone outside the namespace). */
static bool
outside_userns(const char *cmd)
{
  static const char *const cmds[] = {"parse",   "login",   "logout", "images",
                                     "inspect", "history", "tag"};
  for (size_t i = 0; i < SW_ARRAY_SIZE(cmds); i++)
    if (strcmp(cmd, cmds[i]) == 0)
      return true;
  return false;
}

/* root's store, or an ordinary user's own: ${XDG_DATA_HOME:-~/.local/share}/slipway. */
static const char *
default_root(char **owned)
{
  const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");

  if (geteuid() == 0)
    return "/var/lib/slipway";
  if (xdg && xdg[0] == '/')
    *owned = xasprintf("%s/slipway", xdg);
  else if (home && home[0] == '/')
    *owned = xasprintf("%s/.local/share/slipway", home);
  else
    *owned = xasprintf("/var/tmp/slipway-%u", (unsigned)geteuid());
  /* The user's alone: other users may not even list it (the store makes its root 0711). */
  sw_error_t err = NULL;
  if (sw_mkdir_p(*owned, 0700, &err) < 0)
    sw_error_release(&err); /* the store's open reports it */
  return *owned;
}

int
main(int argc, char **argv)
{
  sw_global_t g = {0};
  int i;

  g.root = getenv("SLIPWAY_ROOT");
  _cleanup_free_ char *user_root = NULL;
  if (g.root == NULL || *g.root == '\0')
    g.root = default_root(&user_root);

  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("slipway version %s\n", SW_VERSION);
      return 0;
    } else if (strcmp(a, "-D") == 0 || strcmp(a, "--debug") == 0) {
      sw_verbose = 1;
    } else if (strcmp(a, "--root") == 0) {
      if (i + 1 >= argc)
        return sw_cli_usage_error(NULL, "--root needs a directory");
      g.root = argv[++i];
    } else if (sw_str_has_prefix(a, "--root=")) {
      g.root = a + 7;
    } else {
      return sw_cli_usage_error(NULL, "unknown flag `%s`", a);
    }
  }
  /* The store's paths end up in mount options and in sandboxes that chdir: make them absolute
   * (`--root ./store` works as it reads). */
  _cleanup_free_ char *abs_root = NULL;
  if (g.root[0] != '/') {
    _cleanup_free_ char *cwd = getcwd(NULL, 0);
    if (cwd == NULL)
      return sw_cli_usage_error(NULL, "--root %s: cannot resolve a relative path: %s", g.root,
                                strerror(errno));
    abs_root = xasprintf("%s/%s", cwd, g.root);
    g.root = abs_root;
  }
  if (i >= argc) {
    usage(stderr);
    return SW_EXIT_USAGE;
  }
  if (strcmp(argv[i], "version") == 0) {
    printf("slipway version %s\n", SW_VERSION);
    return 0;
  }
  if (strcmp(argv[i], "help") == 0) {
    usage(stdout);
    return 0;
  }
  for (size_t c = 0; c < SW_ARRAY_SIZE(commands); c++)
    if (strcmp(argv[i], commands[c].name) == 0) {
      sw_error_t err = NULL;
      /* Still one thread: an ordinary user's slipway becomes root of its own user namespace,
       * and runs from here on as root does (see userns.h). */
      if (outside_userns(argv[i]))
        sw_userns_stay_outside();
      else if (!(strcmp(argv[i], "build") == 0 && sw_userns_speculate(argc, argv)) &&
               sw_userns_enter(&err) < 0)
        return sw_error_report(&err);
      optind = 1;
      g.command = commands[c].name;
      int rc = commands[c].fn(argc - i, argv + i, &g);
      sw_userns_release_output();
      return rc;
    }
  return sw_cli_usage_error(NULL, "unknown command `%s`", argv[i]);
}
