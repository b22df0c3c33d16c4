/* slipway images: list the images in the store, one line per name, as `docker images` does. */
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway images [OPTIONS] [REPOSITORY[:TAG]]\n"
    "\n"
    "List images: REPOSITORY, TAG, IMAGE ID (config digest, short), CREATED and SIZE\n"
    "(uncompressed layer bytes). Images without a name show as <none>. An image index\n"
    "(multi-platform image) is one line per name: IMAGE ID is the index digest, SIZE the sum\n"
    "of its images', and its platforms follow; its images are not listed again (-a lists them).\n"
    "\n"
    "Options:\n"
    "  -a, --all        also the images of image indexes\n"
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

/* One line of the listing: an image, or an index (then platforms is its platforms). */
typedef struct {
  const char *id;     /* config digest, or the index digest */
  const char *digest; /* manifest digest, or the index digest */
  int64_t created, size;
  char **names;
  char *platforms; /* "linux/amd64,linux/arm64" for an index, else NULL */
} row_t;

static void
print_row(const row_t *r, const char *repo, const char *tag, bool digests, bool no_trunc)
{
  char size[32];
  _cleanup_free_ char *ago = sw_cli_ago(r->created);
  sw_format_size((uint64_t)r->size, size, sizeof(size));
  const char *id = no_trunc ? r->id : r->id + 7;
  printf("%-30s %-15s ", repo, tag);
  if (digests)
    printf("%-71s ", r->digest);
  printf("%-13.*s %-24s %s%s%s\n", no_trunc ? 71 : 12, id, ago, size, r->platforms ? "  " : "",
         r->platforms ? r->platforms : "");
}

static bool
in_an_index(sw_index_t *const *idx, size_t n, const char *manifest)
{
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < idx[i]->n_entries; k++)
      if (strcmp(idx[i]->entries[k].manifest_digest, manifest) == 0)
        return true;
  return false;
}

static int64_t
index_size(sw_index_t *idx, sw_image_t *const *imgs, size_t n)
{
  int64_t size = 0;
  for (size_t k = 0; k < idx->n_entries; k++)
    for (size_t i = 0; i < n; i++)
      if (strcmp(imgs[i]->manifest_digest, idx->entries[k].manifest_digest) == 0)
        size += unpacked_size(imgs[i]);
  return size;
}

/* Images (those of an index only with all) and indexes, newest first. */
static row_t *
rows_of(sw_image_t *const *imgs, size_t n, sw_index_t *const *idx, size_t n_idx, bool all,
        size_t *n_rows)
{
  row_t *v = xcalloc(n + n_idx + 1, sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; i < n_idx; i++) {
    sw_buf_t b = {0};
    for (size_t e = 0; e < idx[i]->n_entries; e++)
      sw_buf_printf(&b, "%s%s", e ? "," : "", idx[i]->entries[e].platform);
    v[k++] = (row_t){idx[i]->digest, idx[i]->digest, idx[i]->created, index_size(idx[i], imgs, n),
                     idx[i]->names,  b.data};
  }
  for (size_t i = 0; i < n; i++)
    if (all || !in_an_index(idx, n_idx, imgs[i]->manifest_digest))
      v[k++] = (row_t){imgs[i]->config_digest, imgs[i]->manifest_digest, imgs[i]->created,
                       unpacked_size(imgs[i]), imgs[i]->names,           NULL};
  /* stable: insertion sort by created, newest first */
  for (size_t i = 1; i < k; i++)
    for (size_t j = i; j > 0 && v[j - 1].created < v[j].created; j--) {
      row_t t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  *n_rows = k;
  return v;
}

static void
rows_free(row_t *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i].platforms);
  free(v);
}

int
cmd_images(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {
      {"quiet", no_argument, NULL, 'q'},    {"digests", no_argument, NULL, 'd'},
      {"no-trunc", no_argument, NULL, 'n'}, {"all", no_argument, NULL, 'a'},
      {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0}};
  bool quiet = false, digests = false, no_trunc = false, all = false;
  sw_image_t **imgs = NULL;
  sw_index_t **idx = NULL;
  size_t n_imgs = 0, n_idx = 0, n = 0;
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
      all = true;
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
  if (sw_image_list(s, &imgs, &n_imgs, &err) < 0)
    return sw_error_report(&err);
  if (sw_index_list(s, &idx, &n_idx, &err) < 0) {
    sw_image_list_free(imgs, n_imgs);
    return sw_error_report(&err);
  }
  row_t *v = rows_of(imgs, n_imgs, idx, n_idx, all, &n);
  if (!quiet) {
    printf("%-30s %-15s ", "REPOSITORY", "TAG");
    if (digests)
      printf("%-71s ", "DIGEST");
    printf("%-13s %-24s %s\n", "IMAGE ID", "CREATED", "SIZE");
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = sw_strv_len(v[i].names);
    if (k == 0 && filter == NULL) {
      if (quiet)
        printf("%.*s\n", no_trunc ? 71 : 12, v[i].id + (no_trunc ? 0 : 7));
      else
        print_row(&v[i], "<none>", "<none>", digests, no_trunc);
    }
    for (size_t j = 0; j < k; j++) {
      _cleanup_free_ char *repo = NULL, *tag = NULL;
      sw_ref_display(v[i].names[j], &repo, &tag);
      if (!matches(filter, repo, tag))
        continue;
      if (quiet)
        printf("%.*s\n", no_trunc ? 71 : 12, v[i].id + (no_trunc ? 0 : 7));
      else
        print_row(&v[i], repo, tag, digests, no_trunc);
    }
  }
  rows_free(v, n);
  sw_image_list_free(imgs, n_imgs);
  sw_index_list_free(idx, n_idx);
  return 0;
}
