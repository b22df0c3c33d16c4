/* slipway pull: fetch an image from a registry into the store. */
#include "cli.h"
#include "../lib/registry.h"

static void
usage(FILE *f)
{
  fputs("Usage: slipway pull [OPTIONS] IMAGE\n"
        "\n"
        "Pull an image from a registry into the store. IMAGE is normalised as Docker does:\n"
        "`python:slim` is docker.io/library/python:slim. From an image index (multi-platform\n"
        "image) the host platform's manifest is pulled, as docker does, unless --platform names\n"
        "another; --all-platforms pulls every image of the index and records the index itself\n"
        "under the name (its digest kept, so `slipway push` sends the same index). Every blob\n"
        "is checked against its digest before it is used; a layer that would write outside the\n"
        "image root is refused. Credentials come from ~/.docker/config.json (slipway login).\n"
        "\n"
        "Options:\n"
        "      --platform OS/ARCH[/VARIANT]  platform to pick from an index (default: the host's)\n"
        "      --all-platforms               every platform of an index, and the index\n"
        "      --insecure-registry HOST      use plain HTTP for HOST (repeatable; localhost and\n"
        "                                    127.0.0.1 always do)\n"
        "  -j, --jobs N                      parallel downloads (default 3)\n"
        "  -q, --quiet                       no progress output\n"
        "  -h, --help                        print this help\n"
        "\n"
        "Examples:\n"
        "  slipway pull localhost:5000/team/app:1.2\n"
        "  slipway pull --platform linux/arm64 registry.example.com/python:3.12-slim\n"
        "  slipway pull --all-platforms localhost:5000/team/app:1.2\n",
        f);
}

/* Flags shared by pull and push; returns 1 if handled, 0 if not ours, -1 on a bad value. */
int sw_cli_registry_flag(int c, sw_registry_opts_t *o, char ***insecure);

int
sw_cli_registry_flag(int c, sw_registry_opts_t *o, char ***insecure)
{
  switch (c) {
  case 'I':
    sw_strv_push(insecure, optarg);
    o->insecure = *insecure;
    return 1;
  case 'j': {
    char *end;
    long v = strtol(optarg, &end, 10);
    if (*end || v < 1 || v > 64)
      return -1;
    o->jobs = (unsigned)v;
    return 1;
  }
  case 'q':
    o->quiet = true;
    return 1;
  }
  return 0;
}

int
cmd_pull(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"platform", required_argument, NULL, 'P'},
                                       {"all-platforms", no_argument, NULL, 'a'},
                                       {"insecure-registry", required_argument, NULL, 'I'},
                                       {"jobs", required_argument, NULL, 'j'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  _cleanup_strv_ char **insecure = NULL;
  _cleanup_(sw_store_freep) sw_store_t *s = NULL;
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  sw_registry_opts_t ro = {.progress = isatty(STDERR_FILENO)};
  sw_error_t err = NULL;
  int c;

  while ((c = getopt_long(argc, argv, "+j:qh", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 'a') {
      ro.all_platforms = true;
      continue;
    }
    if (c == 'P') {
      ro.platform = optarg;
      continue;
    }
    int r = sw_cli_registry_flag(c, &ro, &insecure);
    if (r < 0)
      return sw_cli_usage_error("pull", "bad value `%s` for -%c", optarg, c);
    if (r == 0)
      return sw_cli_usage_error("pull", "bad flags");
  }
  if (optind + 1 != argc)
    return sw_cli_usage_error("pull", "pull takes exactly one IMAGE");
  if (ro.all_platforms && ro.platform)
    return sw_cli_usage_error("pull", "--platform and --all-platforms exclude each other");
  if (sw_store_open(g->root, &s, &err) < 0 ||
      sw_registry_pull(s, argv[optind], &ro, &img, &err) < 0) {
    sw_store_error_full(g->root, &err);
    return sw_error_report(&err);
  }
  return 0;
}
