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

/* Columns on a terminal: UTF-8 code points (continuation bytes take no column). */
static size_t
display_width(const char *s)
{
  size_t w = 0;
  for (; *s; s++)
    w += ((unsigned char)*s & 0xC0) != 0x80;
  return w;
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
  /* Rows first, then columns as wide as their widest cell (docker's tabwriter, padding 3), so
   * that --no-trunc lines stay aligned. */
  enum { COLS = 5 };
  size_t rows = quiet ? 0 : n + 1, width[COLS] = {0};
  char **cell = xcalloc(rows * COLS + 1, sizeof(*cell));
  static const char *const head[COLS] = {"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"};
  for (size_t col = 0; col < COLS && !quiet; col++)
    cell[col] = xstrdup(head[col]);
  for (size_t k = n, r = 1; k-- > 0; r++) {
    json_t *h = json_array_get(hist, k);
    const char *by = json_string_value(json_object_get(h, "created_by")) ?: "";
    const char *comment = json_string_value(json_object_get(h, "comment")) ?: "";
    char *id = k == n - 1 ? xstrndup(img->config_digest + (no_trunc ? 0 : 7),
                                     no_trunc ? SW_DIGEST_LEN : 12)
                          : xstrdup("<missing>");
    if (quiet) {
      puts(id);
      free(id);
      continue;
    }
    char size[32];
    sw_format_size((uint64_t)sizes[k], size, sizeof(size));
    char **row = &cell[r * COLS];
    row[0] = id;
    row[1] = sw_cli_ago(parse_time(json_string_value(json_object_get(h, "created"))));
    row[2] = !no_trunc && strlen(by) > 45 ? xasprintf("%.42s...", by) : xstrdup(by);
    row[3] = xstrdup(size);
    row[4] = xstrdup(comment);
  }
  for (size_t i = 0; i < rows * COLS; i++)
    if (display_width(cell[i]) > width[i % COLS])
      width[i % COLS] = display_width(cell[i]);
  for (size_t r = 0; r < rows; r++) {
    for (size_t col = 0; col < COLS; col++) {
      const char *v = cell[r * COLS + col];
      if (col == COLS - 1)
        printf("%s\n", v);
      else
        printf("%s%*s", v, (int)(width[col] - display_width(v) + 3), "");
    }
  }
  for (size_t i = 0; i < rows * COLS; i++)
    free(cell[i]);
  free(cell);
  free(sizes);
  return 0;
}
