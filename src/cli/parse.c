/* slipway parse: read a Dockerfile with the frontend (dockerfile.c) and print it. Without
 * options it reports the stages' instructions briefly; --dump prints BuildKit's parser-test
 * form, one `(keyword ["--flag"] "arg" ...)` line per instruction. */
#include "cli.h"
#include "../lib/dockerfile.h"

static void
parse_usage(FILE *f)
{
  fputs("Usage: slipway parse [--dump] FILE\n"
        "\n"
        "Parse a Dockerfile as BuildKit does and print it. A syntax error is reported as\n"
        "FILE:LINE:COLUMN with the offending line, and exits 2.\n"
        "\n"
        "Options:\n"
        "  -d, --dump   print one line per instruction in BuildKit's parser-test form:\n"
        "               (keyword [\"--flag\" ...] \"arg\" ...), strings quoted as Go does,\n"
        "               ENV/LABEL as \"key\" \"value\" \"=\", ONBUILD nested as\n"
        "               (onbuild (run \"echo\" \"x\")); heredoc bodies, comments and\n"
        "               directives are not printed\n"
        "  -h, --help   print this help\n"
        "\n"
        "Without --dump: LINE KEYWORD ARGS for each instruction, then the directives.\n"
        "FILE `-` reads standard input.\n",
        f);
}

/* LINE KEYWORD REST-OF-INSTRUCTION, one line each, then the directives. */
static void
print_summary(const sw_dockerfile_t *df)
{
  for (size_t i = 0; i < df->n_insns; i++) {
    const sw_insn_t *in = &df->insns[i];
    const char *rest = in->original;
    while (*rest && *rest != ' ' && *rest != '\t')
      rest++; /* skip the keyword as written */
    while (*rest == ' ' || *rest == '\t')
      rest++;
    printf("%4d  %-11s %s", in->line, in->kind ? sw_insn_kind_name(in->kind) : in->name, rest);
    if (in->n_heredocs)
      printf("  [%zu heredoc%s]", in->n_heredocs, in->n_heredocs > 1 ? "s" : "");
    putchar('\n');
  }
  printf("# %zu instruction%s, escape %c", df->n_insns, df->n_insns == 1 ? "" : "s", df->escape);
  if (df->syntax)
    printf(", syntax %s", df->syntax);
  if (df->check)
    printf(", check %s", df->check);
  putchar('\n');
}

static int
read_stdin(char **out, size_t *len)
{
  sw_buf_t b = {0};
  char chunk[65536];
  size_t n;

  while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
    sw_buf_append(&b, chunk, n);
  *len = b.len;
  *out = sw_buf_steal(&b);
  return ferror(stdin) ? -1 : 0;
}

int
cmd_parse(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {
      {"dump", no_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df = NULL;
  sw_error_t err = NULL;
  bool dump = false;
  int c;

  (void)g;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+dh", opts, NULL)) != -1) {
    switch (c) {
    case 'd':
      dump = true;
      break;
    case 'h':
      parse_usage(stdout);
      return 0;
    default:
      return sw_cli_usage_error("parse", "bad option");
    }
  }
  if (optind != argc - 1)
    return sw_cli_usage_error("parse", "`parse` needs exactly one FILE");
  if (strcmp(argv[optind], "-") == 0) {
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if (read_stdin(&data, &len) < 0) {
      fputs("slipway: error: reading standard input failed\n", stderr);
      return SW_EXIT_FAILURE;
    }
    if (sw_dockerfile_parse("-", data, len, &df, &err) < 0)
      return sw_error_report(&err);
  } else if (sw_dockerfile_load(argv[optind], &df, &err) < 0) {
    return sw_error_report(&err);
  }
  if (dump) {
    _cleanup_free_ char *out = sw_dockerfile_dump(df);
    fputs(out, stdout);
  } else {
    print_summary(df);
  }
  /* The parser keeps an unknown keyword (BuildKit's parser does too; the build rejects it):
   * say so now, with the nearest instruction, rather than let the build find it. */
  for (size_t i = 0; i < df->n_insns; i++)
    if (df->insns[i].kind == SW_INSN_UNKNOWN) {
      _cleanup_free_ char *msg = sw_insn_unknown_msg(&df->insns[i]);
      sw_warn("%s:%d:%d: %s (a build rejects it)", df->path, df->insns[i].line, df->insns[i].col,
              msg);
    }
  return 0;
}
