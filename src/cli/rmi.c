/* slipway rmi: remove images (or just names), as `docker rmi` does. Data goes at the next
 * `slipway prune`. */
#include "../lib/container.h"
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway rmi [OPTIONS] IMAGE [IMAGE...]\n"
    "\n"
    "Remove images, as docker rmi does. IMAGE is a name, an image ID (short or full) or a\n"
    "manifest digest. By name, only that name goes (`Untagged:`); the image goes too\n"
    "(`Deleted:`) once its last name is gone, unless images are built on it or a container\n"
    "runs it: then it stays, untagged. By ID, the image and all its names go; images built on\n"
    "it and running containers refuse that. Layers no longer used are freed by\n"
    "`slipway prune`.\n"
    "An image index (multi-platform image) goes with its images, unless another name or index\n"
    "keeps them; an image of an index cannot be removed alone.\n"
    "\n"
    "Options:\n"
    "  -f, --force   remove an image given by ID even if it has several names or a stopped\n"
    "                container uses it; remove the last name of an image a container uses\n"
    "  -h, --help    print this help\n";

/* "Untagged:" for each name of before that after (may be NULL) does not hold. */
static void
print_untagged(char *const *before, char *const *after)
{
  for (size_t k = 0; before && before[k]; k++)
    if (!sw_strv_contains(after, before[k])) {
      _cleanup_free_ char *repo = NULL, *tag = NULL;
      sw_ref_display(before[k], &repo, &tag);
      printf("Untagged: %s:%s\n", repo, tag);
    }
}

/* rmi of an image index: its name only, or the index and its images nothing else keeps. */
static int
rmi_index(sw_store_t *s, const char *ref, const sw_index_t *idx, bool force, sw_error_t *err)
{
  bool deleted = false;
  if (sw_index_delete(s, ref, force, &deleted, err) < 0)
    return -1;
  _cleanup_(sw_index_freep) sw_index_t *after = NULL;
  if (!deleted && sw_index_get(s, idx->digest, &after, err) < 0)
    return -1;
  char *none[] = {NULL};
  print_untagged(idx->names, after ? after->names : none);
  if (!deleted)
    return 0;
  printf("Deleted: %s\n", idx->digest);
  for (size_t k = 0; k < idx->n_entries; k++) {
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    sw_error_t e = NULL;
    if (sw_image_get(s, idx->entries[k].manifest_digest, &img, &e) == 0)
      printf("Deleted: %s (%s)\n", idx->entries[k].manifest_digest, idx->entries[k].platform);
    sw_error_release(&e);
  }
  return 0;
}

/* Remove one IMAGE and print what went. */
static int
rmi_one(sw_store_t *s, const char *ref, bool force, sw_error_t *err)
{
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  _cleanup_free_ char *cdir = sw_store_path(s, "containers");
  _cleanup_free_ char *running = NULL, *stopped = NULL;
  _cleanup_strv_ char **untagged = NULL;
  bool deleted = false;
  if (sw_image_find(s, ref, &img, err) < 0)
    return -1;
  sw_container_users(cdir, img->config_digest, &running, &stopped);
  sw_image_users_t users = {running, stopped};
  if (sw_image_delete(s, ref, force, &users, &untagged, &deleted, err) < 0)
    return -1;
  print_untagged(untagged, NULL);
  if (deleted)
    printf("Deleted: %s\n", img->config_digest);
  return 0;
}

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
    _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
    sw_error_t err = NULL;
    int ir = sw_index_get(s, argv[i], &idx, &err);
    if (ir < 0 || (ir == 1 && rmi_index(s, argv[i], idx, force, &err) < 0) ||
        (ir == 0 && rmi_one(s, argv[i], force, &err) < 0))
      rc = sw_error_report(&err);
  }
  return rc;
}
