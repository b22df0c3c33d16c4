/* slipway history: an image's history entries, newest first, with the size of the layer each
 * one made (docker's columns). */
#include "../lib/store.h"
#include "cli.h"

#include <time.h>

static const char usage_text[] =
    "Usage: slipway history [OPTIONS] IMAGE\n"
    "\n"
    "Show the history of an image: IMAGE, CREATED, CREATED BY, SIZE (uncompressed layer\n"
    "size, 0B for steps that made no layer) and COMMENT, newest first.\n"
    "\n"
    "Options:\n"
    "      --no-trunc   do not shorten CREATED BY and image IDs\n"
    "  -q, --quiet      print only image IDs\n"
    "  -h, --help       print this help\n";

static int64_t
parse_time(const char *s)
{
  struct tm tm = {0};
  if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
    return 0;
  return (int64_t)timegm(&tm);
}

int
cmd_history(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"no-trunc", no_argument, NULL, 'n'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"human", required_argument, NULL, 'H'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  bool no_trunc = false, quiet = false;
  sw_error_t err = NULL;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
    switch (c) {
    case 'n':
      no_trunc = true;
      break;
    case 'q':
      quiet = true;
      break;
    case 'H':
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("history", "bad flags");
    }
  }
  if (optind + 1 != argc)
    return sw_cli_usage_error("history", "need exactly one IMAGE");
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  if (sw_image_find(s, argv[optind], &img, &err) < 0)
    return sw_error_report(&err);
  json_t *hist = json_object_get(img->config, "history");
  size_t n = json_array_size(hist), layer = 0;
  /* Map each non-empty entry to its layer, oldest first. */
  int64_t *sizes = xcalloc(n + 1, sizeof(*sizes));
  for (size_t i = 0; i < n; i++) {
    json_t *h = json_array_get(hist, i);
    if (!json_is_true(json_object_get(h, "empty_layer")) && layer < img->n_layers) {
      const sw_layer_desc_t *l = &img->layers[layer++];
      sizes[i] = l->tar_size ? l->tar_size : l->size;
    }
  }
  if (!quiet)
    printf("%-12s   %-20s %-45s   %-10s %s\n", "IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT");
  for (size_t k = n; k-- > 0;) {
    json_t *h = json_array_get(hist, k);
    const char *by = json_string_value(json_object_get(h, "created_by")) ?: "";
    const char *comment = json_string_value(json_object_get(h, "comment")) ?: "";
    _cleanup_free_ char *id = k == n - 1 ? xstrndup(img->config_digest + (no_trunc ? 0 : 7),
                                                    no_trunc ? SW_DIGEST_LEN : 12)
                                         : xstrdup("<missing>");
    if (quiet) {
      puts(id);
      continue;
    }
    _cleanup_free_ char *ago =
        sw_cli_ago(parse_time(json_string_value(json_object_get(h, "created"))));
    _cleanup_free_ char *shown =
        !no_trunc && strlen(by) > 45 ? xasprintf("%.42s...", by) : xstrdup(by);
    char size[32];
    sw_format_size((uint64_t)sizes[k], size, sizeof(size));
    printf("%-12s   %-20s %-45s   %-10s %s\n", id, ago, shown, size, comment);
  }
  free(sizes);
  return 0;
}
