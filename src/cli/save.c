/* slipway save: images to a docker-archive (default), oci-archive or OCI layout directory. */
#include "../lib/image_archive.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway save [OPTIONS] IMAGE [IMAGE...]\n"
    "\n"
    "Save images to a tar archive (stdout unless -o) or an OCI layout directory. Stored blobs\n"
    "are copied as they are (never recompressed). An image index (multi-platform image) is\n"
    "saved whole: index.json lists the index blob, which lists every platform's manifest (a\n"
    "load keeps its digest); a docker archive's manifest.json lists every platform's image,\n"
    "with the name on the host platform's.\n"
    "\n"
    "Options:\n"
    "  -o, --output PATH     write to PATH (a file, or a directory for --format oci-dir)\n"
    "      --format FORMAT   docker (default: `docker load` format), oci (oci-archive tar) or\n"
    "                        oci-dir (OCI image layout directory, as `skopeo inspect oci:DIR`\n"
    "                        and `umoci` read)\n"
    "  -h, --help            print this help\n"
    "\n"
    "Examples:\n"
    "  slipway save -o app.tar app:1.0 && docker load -i app.tar\n"
    "  slipway save --format oci-dir -o ./layout app:1.0 && skopeo inspect oci:./layout\n";

int
cmd_save(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"format", required_argument, NULL, 'F'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  sw_archive_format_t fmt = SW_ARCHIVE_DOCKER;
  const char *out = NULL;
  sw_error_t err = NULL;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'o':
      out = optarg;
      break;
    case 'F':
      if (sw_archive_format_parse(optarg, &fmt, &err) < 0)
        return sw_error_report(&err);
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("save", "bad flags");
    }
  }
  if (optind >= argc)
    return sw_cli_usage_error("save", "need at least one IMAGE");
  if (out == NULL && (fmt == SW_ARCHIVE_OCI_DIR || isatty(1)))
    return sw_cli_usage_error("save", "give -o PATH (refusing to write a tar to a terminal)");
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  size_t n = (size_t)(argc - optind);
  sw_archive_item_t *items = xcalloc(n, sizeof(*items));
  char **names = xcalloc(n + 1, sizeof(*names));
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *arg = argv[optind + (int)i];
    sw_index_t *idx = NULL;
    int fi = sw_index_get(s, arg, &idx, &err);
    if (fi < 0 || (fi == 0 && sw_image_find(s, arg, &items[i].img, &err) < 0)) {
      rc = sw_error_report(&err);
      break;
    }
    items[i].index = idx;
    /* Saved under the name given, if it is one of the image's names (not an ID). */
    char *const *have = idx ? idx->names : items[i].img->names;
    sw_error_t e = NULL;
    char *n1 = sw_ref_normalize(arg, &e);
    sw_error_release(&e);
    if (n1 && sw_strv_contains(have, n1))
      names[i] = n1;
    else {
      free(n1);
      names[i] = have && have[0] && sw_strv_len(have) == 1 ? xstrdup(have[0]) : NULL;
    }
    items[i].name = names[i];
  }
  if (rc == 0 && sw_archive_save_items(s, items, n, fmt, out ? out : "-", &err) < 0)
    rc = sw_error_report(&err);
  for (size_t i = 0; i < n; i++) {
    sw_image_free(items[i].img);
    sw_index_free((sw_index_t *)items[i].index);
    free(names[i]);
  }
  free(items);
  free(names);
  return rc;
}
