/* slipway inspect: an image's metadata as JSON (docker's shape: Id, RepoTags, Config, RootFS,
 * ...), or fields of it with a small `--format '{{.Path}}'` template. */
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway inspect [OPTIONS] IMAGE [IMAGE...]\n"
    "\n"
    "Print images' metadata as a JSON array (Id, RepoTags, RepoDigests, Created, Config,\n"
    "Architecture, Os, Size, RootFS, Descriptor, plus Manifest and Layers). An image index\n"
    "(multi-platform image) shows as its image for the host platform (or --platform) with the\n"
    "index's Id (its digest), names and Descriptor, and Manifests: each image and its platform.\n"
    "\n"
    "Options:\n"
    "  -f, --format TEMPLATE  print fields instead: {{.Id}}, {{.Config.Env}}, {{json .Config}};\n"
    "                         strings print raw, anything else as JSON\n"
    "      --raw config|manifest|index  print the stored config, manifest or image index blob\n"
    "                         byte for byte\n"
    "      --platform P       of an image index, the image for P (default: the host's)\n"
    "  -h, --help             print this help\n";

static json_t *
inspect_json(const sw_image_t *img)
{
  json_t *tags = json_array(), *digests = json_array(), *layers = json_array();
  int64_t size = 0;
  for (size_t i = 0; img->names && img->names[i]; i++) {
    _cleanup_free_ char *repo = NULL, *tag = NULL;
    sw_ref_display(img->names[i], &repo, &tag);
    json_array_append_new(tags, json_sprintf("%s:%s", repo, tag));
    json_array_append_new(digests, json_sprintf("%s@%s", repo, img->manifest_digest));
  }
  for (size_t i = 0; i < img->n_layers; i++) {
    const sw_layer_desc_t *l = &img->layers[i];
    size += l->tar_size ? l->tar_size : l->size;
    json_array_append_new(layers, json_pack("{s:s, s:s, s:I, s:s}", "DiffID", l->diff_id, "Digest",
                                            l->digest, "Size", (json_int_t)l->size, "MediaType",
                                            l->media_type));
  }
  json_t *cfg = img->config, *j = json_object();
  json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
  json_object_set_new(j, "Id", json_string(img->config_digest));
  json_object_set_new(j, "RepoTags", tags);
  json_object_set_new(j, "RepoDigests", digests);
  json_object_set(j, "Created", json_object_get(cfg, "created") ?: json_string(""));
  json_object_set_new(j, "Author",
                      json_string(json_string_value(json_object_get(cfg, "author")) ?: ""));
  json_object_set(j, "Config", json_object_get(cfg, "config") ?: json_object());
  json_object_set(j, "Architecture", json_object_get(cfg, "architecture") ?: json_string(""));
  if (json_object_get(cfg, "variant")) /* docker's omitempty */
    json_object_set(j, "Variant", json_object_get(cfg, "variant"));
  json_object_set(j, "Os", json_object_get(cfg, "os") ?: json_string(""));
  json_object_set_new(j, "Size", json_integer(size));
  json_object_set_new(
      j, "RootFS", json_pack("{s:s, s:O}", "Type", "layers", "Layers", ids ? ids : json_array()));
  json_object_set_new(j, "Descriptor",
                      json_pack("{s:s, s:s, s:I}", "mediaType", SW_MT_OCI_MANIFEST, "digest",
                                img->manifest_digest, "size", (json_int_t)img->manifest_size));
  json_object_set_new(j, "Layers", layers);
  json_object_set(j, "History", json_object_get(cfg, "history") ?: json_array());
  return j;
}

/* An index: its image for the platform, under the index's digest and names, with its entries. */
static json_t *
index_json(const sw_index_t *idx, const sw_image_t *img)
{
  json_t *j = inspect_json(img);
  json_t *tags = json_array(), *digests = json_array(), *ms = json_array();
  for (size_t i = 0; idx->names && idx->names[i]; i++) {
    _cleanup_free_ char *repo = NULL, *tag = NULL;
    sw_ref_display(idx->names[i], &repo, &tag);
    json_array_append_new(tags, json_sprintf("%s:%s", repo, tag));
    json_array_append_new(digests, json_sprintf("%s@%s", repo, idx->digest));
  }
  for (size_t i = 0; i < idx->n_entries; i++)
    json_array_append_new(ms, json_pack("{s:s, s:s, s:I, s:s}", "mediaType", SW_MT_OCI_MANIFEST,
                                        "digest", idx->entries[i].manifest_digest, "size",
                                        (json_int_t)idx->entries[i].manifest_size, "platform",
                                        idx->entries[i].platform));
  json_object_set_new(j, "Id", json_string(idx->digest));
  json_object_set_new(j, "RepoTags", tags);
  json_object_set_new(j, "RepoDigests", digests);
  json_object_set_new(j, "Descriptor",
                      json_pack("{s:s, s:s, s:I}", "mediaType", SW_MT_OCI_INDEX, "digest",
                                idx->digest, "size", (json_int_t)idx->size));
  json_object_set_new(j, "Manifests", ms);
  return j;
}

/* ref's image (for platform when ref names an index) and, when ref names one, its index. */
static int
find(sw_store_t *s, const char *ref, const char *platform, sw_image_t **img, sw_index_t **idx,
     sw_error_t *err)
{
  int r = sw_index_get(s, ref, idx, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return sw_image_find(s, ref, img, err);
  const sw_index_entry_t *e = sw_index_entry_for(*idx, platform, err);
  if (e == NULL && platform)
    return -1;
  sw_error_release(err); /* no host entry: the first */
  return sw_image_find(s, e ? e->manifest_digest : (*idx)->entries[0].manifest_digest, img, err);
}

/* Evaluate "{{.A.B}}" / "{{json .A}}" segments of tmpl against j. */
static int
print_format(const char *tmpl, json_t *j, sw_error_t *err)
{
  sw_buf_t out = {0};
  for (const char *p = tmpl; *p;) {
    const char *open = strstr(p, "{{");
    if (open == NULL) {
      sw_buf_puts(&out, p);
      break;
    }
    sw_buf_append(&out, p, (size_t)(open - p));
    const char *close = strstr(open, "}}");
    if (close == NULL) {
      sw_buf_free(&out);
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--format: unclosed {{ in `%s`", tmpl);
    }
    _cleanup_free_ char *expr = xstrndup(open + 2, (size_t)(close - open - 2));
    char *e = expr;
    while (*e == ' ')
      e++;
    bool as_json = sw_str_has_prefix(e, "json ");
    if (as_json)
      e += 5;
    while (*e == ' ')
      e++;
    for (char *end = e + strlen(e); end > e && end[-1] == ' ';)
      *--end = '\0';
    if (*e != '.') {
      sw_buf_free(&out);
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--format: unsupported `{{%s}}`", expr);
    }
    json_t *v = j;
    for (char *tok = strtok(e + 1, "."); tok && v; tok = strtok(NULL, "."))
      v = json_object_get(v, tok);
    if (v == NULL)
      sw_buf_puts(&out, as_json ? "null" : "<no value>");
    else if (json_is_string(v) && !as_json)
      sw_buf_puts(&out, json_string_value(v));
    else {
      char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
      sw_buf_puts(&out, s);
      free(s);
    }
    p = close + 2;
  }
  puts(out.data ? out.data : "");
  sw_buf_free(&out);
  return 0;
}

int
cmd_inspect(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                       {"raw", required_argument, NULL, 'r'},
                                       {"platform", required_argument, NULL, 'P'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *format = NULL, *raw = NULL, *platform = NULL;
  sw_error_t err = NULL;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
    switch (c) {
    case 'f':
      format = optarg;
      break;
    case 'r':
      raw = optarg;
      break;
    case 'P':
      platform = optarg;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("inspect", "bad flags");
    }
  }
  if (optind >= argc)
    return sw_cli_usage_error("inspect", "need at least one IMAGE");
  if (raw && strcmp(raw, "config") != 0 && strcmp(raw, "manifest") != 0 &&
      strcmp(raw, "index") != 0)
    return sw_cli_usage_error("inspect", "--raw takes `config`, `manifest` or `index`");
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  json_t *all = json_array();
  for (int i = optind; i < argc; i++) {
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
    if (find(s, argv[i], platform, &img, &idx, &err) < 0) {
      rc = sw_error_report(&err);
      continue;
    }
    if (raw && raw[0] == 'i' && idx == NULL) {
      sw_error(&err, 0, "`%s` is an image, not an image index: --raw manifest or config", argv[i]);
      rc = sw_error_report(&err);
      continue;
    }
    if (raw) {
      _cleanup_free_ char *text = NULL;
      size_t len;
      const char *d = raw[0] == 'c'   ? img->config_digest
                      : raw[0] == 'i' ? idx->digest
                                      : img->manifest_digest;
      if (sw_blob_read(s, d, 0, &text, &len, &err) < 0) {
        rc = sw_error_report(&err);
        continue;
      }
      fwrite(text, 1, len, stdout);
      putchar('\n');
      continue;
    }
    json_t *j = idx ? index_json(idx, img) : inspect_json(img);
    if (format && print_format(format, j, &err) < 0) {
      json_decref(j);
      json_decref(all);
      return sw_error_report(&err);
    }
    json_array_append_new(all, j);
  }
  if (!format && !raw) {
    char *text = json_dumps(all, JSON_INDENT(4));
    puts(text);
    free(text);
  }
  json_decref(all);
  return rc;
}
