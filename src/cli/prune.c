/* slipway prune: drop build cache records (all, or least recently used beyond a size) and
 * dangling images, then garbage-collect blobs and snapshots nothing references. */
#include "../lib/container.h"
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway prune [OPTIONS]\n"
    "\n"
    "Free space in the store: remove data (layers, snapshots, blobs, temp files) that no image\n"
    "and no build cache record uses, and what killed commands left (the writable layer of a\n"
    "`run --rm`, the temp file of a `save -o`), listed. Waits for other slipway processes on\n"
    "the same store.\n"
    "\n"
    "Options:\n"
    "      --keep-storage SIZE  evict least recently used build cache records until the cache\n"
    "                           (data used by no image) fits in SIZE, e.g. 500MB, 2GB\n"
    "  -a, --all                remove all build cache records, RUN --mount=type=cache\n"
    "                           directories, images without a name (but those a container\n"
    "                           runs) and stopped containers\n"
    "  -f, --force              do not ask (prune never asks; accepted for docker users)\n"
    "  -h, --help               print this help\n";

int
cmd_prune(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"keep-storage", required_argument, NULL, 'k'},
                                       {"all", no_argument, NULL, 'a'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  sw_prune_opts_t o = {0};
  sw_prune_report_t rep;
  sw_error_t err = NULL;
  uint64_t keep;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "afh", opts, NULL)) != -1) {
    switch (c) {
    case 'k':
      if (sw_parse_size(optarg, &keep, &err) < 0) {
        err->code = SW_EXIT_USAGE;
        return sw_error_report(&err);
      }
      o.keep_storage = keep ? (int64_t)keep : 1;
      break;
    case 'a':
      o.all = true;
      break;
    case 'f':
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("prune", "bad flags");
    }
  }
  if (optind < argc)
    return sw_cli_usage_error("prune", "unexpected argument `%s`", argv[optind]);
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  _cleanup_free_ char *cdir = sw_cli_containers_dir(g);
  _cleanup_strv_ char **ids = NULL, **in_use = sw_container_images_in_use(cdir);
  int64_t cbytes = 0;
  o.in_use = in_use;
  if (sw_store_prune(s, &o, &rep, &err) < 0)
    return sw_error_report(&err);
  /* As docker system prune: stopped containers too (-a); a killed `run --rm`'s always (after
   * the leases, which report theirs). */
  sw_container_prune(cdir, !o.all, &ids, &cbytes);
  for (char **id = ids; id && *id; id++)
    printf("Deleted container: %s\n", *id);
  char size[32];
  for (char **l = rep.leftovers; l && *l; l++)
    printf("Removed what a killed command left: %s\n", *l);
  sw_strv_free(rep.leftovers);
  rep.bytes += cbytes;
  sw_format_size((uint64_t)rep.bytes, size, sizeof(size));
  printf("Deleted: %lld cache records, %lld images, %lld layers, %lld blobs\n",
         (long long)rep.cache_records, (long long)rep.images, (long long)rep.layers,
         (long long)rep.blobs);
  printf("Total reclaimed space: %s\n", size);
  return 0;
}
