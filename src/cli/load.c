/* slipway load: images from a docker-archive or oci-archive tar, or an OCI layout directory. */
#include "../lib/image_archive.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway load [OPTIONS]\n"
    "\n"
    "Load images from a docker-archive tar (`docker save`), an oci-archive tar or an OCI layout\n"
    "directory (the format is detected; the tar may be gzip or zstd compressed). Layers already\n"
    "in the store are not imported again. An image index (a multi-platform image, as `slipway\n"
    "save` and docker 25+ write it) is loaded with every image it lists and keeps its digest.\n"
    "\n"
    "Options:\n"
    "  -i, --input PATH   read PATH instead of stdin\n"
    "  -q, --quiet        print nothing on success\n"
    "  -h, --help         print this help\n";

int
cmd_load(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"input", required_argument, NULL, 'i'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *in = "-";
  bool quiet = false;
  sw_image_t **imgs = NULL;
  sw_index_t **idxs = NULL;
  size_t n = 0, n_idx = 0;
  sw_error_t err = NULL;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "i:qh", opts, NULL)) != -1) {
    switch (c) {
    case 'i':
      in = optarg;
      break;
    case 'q':
      quiet = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("load", "bad flags");
    }
  }
  if (optind < argc)
    return sw_cli_usage_error("load", "unexpected argument `%s` (use -i FILE)", argv[optind]);
  if (strcmp(in, "-") == 0 && isatty(0))
    return sw_cli_usage_error("load", "give -i FILE (stdin is a terminal)");
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  if (sw_archive_load(s, in, &imgs, &n, &idxs, &n_idx, &err) < 0) {
    sw_store_error_full(g->root, &err);
    return sw_error_report(&err);
  }
  for (size_t i = 0; i < n && !quiet; i++) {
    if (imgs[i]->names == NULL || imgs[i]->names[0] == NULL)
      printf("Loaded image ID: %s\n", imgs[i]->config_digest);
    for (size_t k = 0; imgs[i]->names && imgs[i]->names[k]; k++) {
      _cleanup_free_ char *repo = NULL, *tag = NULL;
      sw_ref_display(imgs[i]->names[k], &repo, &tag);
      printf("Loaded image: %s:%s\n", repo, tag);
    }
  }
  for (size_t i = 0; i < n_idx && !quiet; i++) {
    if (idxs[i]->names == NULL || idxs[i]->names[0] == NULL)
      printf("Loaded image ID: %s\n", idxs[i]->digest);
    for (size_t k = 0; idxs[i]->names && idxs[i]->names[k]; k++) {
      _cleanup_free_ char *repo = NULL, *tag = NULL;
      sw_ref_display(idxs[i]->names[k], &repo, &tag);
      printf("Loaded image: %s:%s\n", repo, tag);
    }
  }
  sw_image_list_free(imgs, n);
  sw_index_list_free(idxs, n_idx);
  return 0;
}
