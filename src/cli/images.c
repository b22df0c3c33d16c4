/* slipway images: list the images in the store, one line per name, as `docker images` does. */
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway images [OPTIONS] [REPOSITORY[:TAG]]\n"
    "\n"
    "List images: REPOSITORY, TAG, IMAGE ID (config digest, short), CREATED and SIZE\n"
    "(uncompressed layer bytes). Images without a name show as <none>.\n"
    "\n"
    "Options:\n"
    "  -q, --quiet      print only image IDs\n"
    "      --digests    add a DIGEST column (manifest digest)\n"
    "      --no-trunc   full image IDs\n"
    "  -h, --help       print this help\n";

static int64_t
unpacked_size(const sw_image_t *img)
{
  int64_t n = 0;
  for (size_t i = 0; i < img->n_layers; i++)
    n += img->layers[i].tar_size ? img->layers[i].tar_size : img->layers[i].size;
  return n;
}

static bool
matches(const char *filter, const char *repo, const char *tag)
{
  if (filter == NULL)
    return true;
  const char *colon = strrchr(filter, ':');
  if (colon && !strchr(colon, '/'))
    return strncmp(filter, repo, (size_t)(colon - filter)) == 0 && repo[colon - filter] == '\0' &&
           strcmp(colon + 1, tag) == 0;
  return strcmp(filter, repo) == 0;
}

static void
print_row(const sw_image_t *img, const char *repo, const char *tag, bool digests, bool no_trunc)
{
  char size[32];
  _cleanup_free_ char *ago = sw_cli_ago(img->created);
  sw_format_size((uint64_t)unpacked_size(img), size, sizeof(size));
  const char *id = no_trunc ? img->config_digest : img->config_digest + 7;
  printf("%-30s %-15s ", repo, tag);
  if (digests)
    printf("%-71s ", img->manifest_digest);
  printf("%-13.*s %-24s %s\n", no_trunc ? 71 : 12, id, ago, size);
}

int
cmd_images(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {
      {"quiet", no_argument, NULL, 'q'},    {"digests", no_argument, NULL, 'd'},
      {"no-trunc", no_argument, NULL, 'n'}, {"all", no_argument, NULL, 'a'},
      {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0}};
  bool quiet = false, digests = false, no_trunc = false;
  sw_image_t **v = NULL;
  size_t n = 0;
  sw_error_t err = NULL;
  int c, rc = 0;

  while ((c = getopt_long(argc, argv, "qah", opts, NULL)) != -1) {
    switch (c) {
    case 'q':
      quiet = true;
      break;
    case 'd':
      digests = true;
      break;
    case 'n':
      no_trunc = true;
      break;
    case 'a':
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("images", "bad flags");
    }
  }
  const char *filter = optind < argc ? argv[optind] : NULL;
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  if (sw_image_list(s, &v, &n, &err) < 0)
    return sw_error_report(&err);
  if (!quiet) {
    printf("%-30s %-15s ", "REPOSITORY", "TAG");
    if (digests)
      printf("%-71s ", "DIGEST");
    printf("%-13s %-24s %s\n", "IMAGE ID", "CREATED", "SIZE");
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = sw_strv_len(v[i]->names);
    if (k == 0 && filter == NULL) {
      if (quiet)
        printf("%.*s\n", no_trunc ? 71 : 12, v[i]->config_digest + (no_trunc ? 0 : 7));
      else
        print_row(v[i], "<none>", "<none>", digests, no_trunc);
    }
    for (size_t j = 0; j < k; j++) {
      _cleanup_free_ char *repo = NULL, *tag = NULL;
      sw_ref_display(v[i]->names[j], &repo, &tag);
      if (!matches(filter, repo, tag))
        continue;
      if (quiet)
        printf("%.*s\n", no_trunc ? 71 : 12, v[i]->config_digest + (no_trunc ? 0 : 7));
      else
        print_row(v[i], repo, tag, digests, no_trunc);
    }
  }
  sw_image_list_free(v, n);
  return 0;
}
