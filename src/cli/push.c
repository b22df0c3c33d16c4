/* slipway push: upload an image from the store to a registry. */
#include "cli.h"
#include "../lib/registry.h"

int sw_cli_registry_flag(int c, sw_registry_opts_t *o, char ***insecure);

static void
usage(FILE *f)
{
  fputs("Usage: slipway push [OPTIONS] IMAGE [DEST]\n"
        "\n"
        "Push IMAGE from the store to a registry, as DEST if given (e.g. push `app` as\n"
        "`registry.example.com/team/app:1.0`). Blobs the repository already has are skipped\n"
        "(HEAD first); a blob slipway has seen in another repository of the same registry is\n"
        "mounted from there instead of uploaded; large blobs go up in chunks; the manifest goes\n"
        "last, so a failed push never leaves a tag pointing at missing data.\n"
        "Credentials come from ~/.docker/config.json (slipway login).\n"
        "\n"
        "Options:\n"
        "      --insecure-registry HOST  use plain HTTP for HOST (repeatable; localhost and\n"
        "                                127.0.0.1 always do)\n"
        "      --chunk-size SIZE         upload blobs larger than SIZE in chunks of SIZE\n"
        "                                (default 64MiB, env SLIPWAY_PUSH_CHUNK_SIZE)\n"
        "  -j, --jobs N                  parallel uploads (default 3)\n"
        "  -q, --quiet                   no progress output\n"
        "  -h, --help                    print this help\n"
        "\n"
        "Examples:\n"
        "  slipway push localhost:5000/app:latest\n"
        "  slipway push app:latest registry.example.com/team/app:1.0\n",
        f);
}

int
cmd_push(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"insecure-registry", required_argument, NULL, 'I'},
                                       {"chunk-size", required_argument, NULL, 'C'},
                                       {"jobs", required_argument, NULL, 'j'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  _cleanup_strv_ char **insecure = NULL;
  _cleanup_(sw_store_freep) sw_store_t *s = NULL;
  _cleanup_free_ char *digest = NULL;
  sw_registry_opts_t ro = {.progress = isatty(STDERR_FILENO)};
  sw_error_t err = NULL;
  int c;

  while ((c = getopt_long(argc, argv, "+j:qh", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 'C') {
      if (sw_parse_size(optarg, &ro.chunk_size, &err) < 0 || ro.chunk_size == 0) {
        sw_error_release(&err);
        return sw_cli_usage_error("push", "bad --chunk-size `%s`", optarg);
      }
      continue;
    }
    int r = sw_cli_registry_flag(c, &ro, &insecure);
    if (r < 0)
      return sw_cli_usage_error("push", "bad value `%s` for -%c", optarg, c);
    if (r == 0)
      return sw_cli_usage_error("push", "bad flags");
  }
  if (optind >= argc || argc - optind > 2)
    return sw_cli_usage_error("push", "push takes IMAGE and an optional DEST");
  if (sw_store_open(g->root, &s, &err) < 0 ||
      sw_registry_push(s, argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, &ro, &digest,
                       &err) < 0)
    return sw_error_report(&err);
  return 0;
}
