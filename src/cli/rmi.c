/* slipway rmi: remove images (or just names), as `docker rmi` does. Data goes at the next
 * `slipway prune`, or right away with --prune. */
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway rmi [OPTIONS] IMAGE [IMAGE...]\n"
    "\n"
    "Remove images. IMAGE is a name (only that name goes if the image has others), an image\n"
    "ID (short or full) or a manifest digest. Layers no longer used are freed by `slipway prune`.\n"
    "\n"
    "Options:\n"
    "  -f, --force   remove an image given by ID even if it has several names\n"
    "  -h, --help    print this help\n";

int
cmd_rmi(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {
      {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  bool force = false;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
    switch (c) {
    case 'f':
      force = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("rmi", "bad flags");
    }
  }
  if (optind >= argc)
    return sw_cli_usage_error("rmi", "need at least one IMAGE");
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  for (int i = optind; i < argc; i++) {
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    _cleanup_(sw_image_freep) sw_image_t *after = NULL;
    sw_error_t err = NULL;
    bool deleted = false;
    if (sw_image_find(s, argv[i], &img, &err) < 0 ||
        sw_image_delete(s, argv[i], force, &deleted, &err) < 0) {
      rc = sw_error_report(&err);
      continue;
    }
    if (!deleted && sw_image_get(s, img->manifest_digest, &after, &err) < 0) {
      rc = sw_error_report(&err);
      continue;
    }
    for (size_t k = 0; img->names && img->names[k]; k++)
      if (deleted || !sw_strv_contains(after->names, img->names[k])) {
        _cleanup_free_ char *repo = NULL, *tag = NULL;
        sw_ref_display(img->names[k], &repo, &tag);
        printf("Untagged: %s:%s\n", repo, tag);
      }
    if (deleted)
      printf("Deleted: %s\n", img->config_digest);
  }
  return rc;
}
