/* slipway debug: helpers for looking inside the frontend. `debug expand` runs BuildKit-style
 * word expansion (shellword.c) on one word, as a Dockerfile instruction would. */
#include "cli.h"
#include "../lib/shellword.h"

static void
debug_usage(FILE *f)
{
  fputs("Usage: slipway debug expand [--env K=V]... [--escape C] [--words] WORD\n"
        "\n"
        "Expand WORD as a Dockerfile instruction does (BuildKit's shell lexer): $V, ${V},\n"
        "${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?msg} ${V?msg} ${V#p} ${V##p} ${V%p} ${V%%p}\n"
        "${V/p/r} ${V//p/r}, single and double quotes, escapes. No command substitution.\n"
        "\n"
        "Options:\n"
        "  -e, --env K=V     set variable K to V (repeatable); `--env K` sets K to \"\"\n"
        "      --escape C    escape character: \\ (default) or `\n"
        "  -w, --words       split the result into words, one per line (as COPY, ADD and\n"
        "                    EXPOSE arguments are split); default: print one string\n"
        "  -h, --help        print this help\n"
        "\n"
        "A bad substitution (e.g. `${V`, `${V?unset}` with V unset) prints an error and\n"
        "exits 1.\n",
        f);
}

static int
debug_expand(int argc, char **argv)
{
  static const struct option opts[] = {{"env", required_argument, NULL, 'e'},
                                       {"escape", required_argument, NULL, 'E'},
                                       {"words", no_argument, NULL, 'w'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  _cleanup_strv_ char **env = NULL;
  sw_error_t err = NULL;
  bool words = false;
  char escape = '\\';
  int c;

  optind = 1;
  while ((c = getopt_long(argc, argv, "+e:wh", opts, NULL)) != -1) {
    switch (c) {
    case 'e':
      sw_strv_push(&env, optarg);
      break;
    case 'E':
      if (strcmp(optarg, "\\") != 0 && strcmp(optarg, "`") != 0)
        return sw_cli_usage_error("debug", "--escape must be \\ or `, not `%s`", optarg);
      escape = optarg[0];
      break;
    case 'w':
      words = true;
      break;
    case 'h':
      debug_usage(stdout);
      return 0;
    default:
      return sw_cli_usage_error("debug", "bad option for `debug expand`");
    }
  }
  if (optind != argc - 1)
    return sw_cli_usage_error("debug", "`debug expand` needs exactly one WORD");
  if (words) {
    _cleanup_strv_ char **out = NULL;
    if (sw_word_expand_words(argv[optind], env, escape, &out, &err) < 0)
      return sw_error_report(&err);
    for (char **w = out; *w; w++)
      printf("%s\n", *w);
  } else {
    _cleanup_free_ char *out = NULL;
    if (sw_word_expand(argv[optind], env, escape, &out, &err) < 0)
      return sw_error_report(&err);
    printf("%s\n", out);
  }
  return 0;
}

int
cmd_debug(int argc, char **argv, sw_global_t *g)
{
  (void)g;
  if (argc < 2) {
    debug_usage(stderr);
    return SW_EXIT_USAGE;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    debug_usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "expand") == 0)
    return debug_expand(argc - 1, argv + 1);
  return sw_cli_usage_error("debug", "unknown debug command `%s`", argv[1]);
}
