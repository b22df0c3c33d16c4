/* slipway: the registry build cache's record format: encode and parse (see cacheconfig.h). */
#include "cacheconfig.h"

#include "util.h"

#include <jansson.h>
#include <string.h>
#include <time.h>

bool
sw_cacheconfig_layer_type_ok(const char *mt)
{
  static const char *const ok[] = {SW_MT_OCI_LAYER,
                                   SW_MT_OCI_LAYER_GZIP,
                                   SW_MT_OCI_LAYER_ZSTD,
                                   SW_MT_DOCKER_LAYER,
                                   SW_MT_DOCKER_LAYER ".gzip",
                                   SW_MT_DOCKER_LAYER ".zstd",
                                   NULL};
  for (size_t i = 0; mt && ok[i]; i++)
    if (strcmp(mt, ok[i]) == 0)
      return true;
  return false;
}

/* ---- encode ---- */

static int
find_layer(json_t *layers, const char *digest)
{
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l)
  {
    if (strcmp(json_string_value(json_object_get(l, "blob")), digest) == 0)
      return (int)i;
  }
  return -1;
}

static int
find_diff(const sw_cache_entry_t *e, size_t n, json_t *layers, const char *diff)
{
  for (size_t i = 0; diff[0] && i < n; i++)
    if (e[i].has_layer && strcmp(e[i].layer.diff_id, diff) == 0)
      return find_layer(layers, e[i].layer.digest);
  return -1;
}

static json_t *
encode_layers(const sw_cache_entry_t *e, size_t n, json_t *mlayers)
{
  json_t *layers = json_array();
  for (size_t i = 0; i < n; i++) {
    if (!e[i].has_layer || find_layer(layers, e[i].layer.digest) >= 0)
      continue;
    _cleanup_free_ char *t = sw_time_rfc3339(e[i].created);
    json_array_append_new(
        layers, json_pack("{s:s,s:i,s:{s:s,s:s,s:I,s:s}}", "blob", e[i].layer.digest, "parent", -1,
                          "annotations", "mediaType", e[i].layer.media_type, "diffID",
                          e[i].layer.diff_id, "size", (json_int_t)e[i].layer.size, "createdAt", t));
    json_array_append_new(mlayers, json_pack("{s:s,s:s,s:I,s:{s:s}}", "mediaType",
                                             e[i].layer.media_type, "digest", e[i].layer.digest,
                                             "size", (json_int_t)e[i].layer.size, "annotations",
                                             "containerd.io/uncompressed", e[i].layer.diff_id));
  }
  /* parents: the layer below each one, when it is exported too (BuildKit's chain) */
  for (size_t i = 0; i < n; i++) {
    if (!e[i].has_layer)
      continue;
    int me = find_layer(layers, e[i].layer.digest), parent = find_diff(e, n, layers, e[i].parent);
    if (parent >= 0 && parent != me)
      json_object_set_new(json_array_get(layers, (size_t)me), "parent", json_integer(parent));
  }
  return layers;
}

int
sw_cacheconfig_encode(const sw_cache_entry_t *e, size_t n, char **config, char **manifest,
                      sw_error_t *err)
{
  json_t *mlayers = json_array();
  json_t *layers = encode_layers(e, n, mlayers);
  json_t *records = json_array();
  for (size_t i = 0; i < n; i++) {
    if (e[i].has_layer && !sw_digest_valid(e[i].layer.digest)) {
      json_decref(layers);
      json_decref(records);
      json_decref(mlayers);
      return sw_error(err, 0, "cache record %s: layer %s has no blob", e[i].key,
                      e[i].layer.diff_id);
    }
    _cleanup_free_ char *t = sw_time_rfc3339(e[i].created);
    json_t *res = json_array();
    if (e[i].has_layer)
      json_array_append_new(res, json_pack("{s:i,s:s}", "layer",
                                           find_layer(layers, e[i].layer.digest), "createdAt", t));
    json_t *rec = json_pack("{s:s,s:o,s:s}", "digest", e[i].key, "layers", res, "createdAt", t);
    for (size_t j = 0; e[i].parent_key[0] && j < n; j++)
      if (strcmp(e[j].key, e[i].parent_key) == 0) {
        json_object_set_new(rec, "inputs", json_pack("[[{s:I}]]", "link", (json_int_t)j));
        break;
      }
    json_array_append_new(records, rec);
  }
  json_t *cfg = json_pack("{s:o,s:o}", "layers", layers, "records", records);
  char *c = sw_json_dump(cfg);
  json_decref(cfg);
  _cleanup_free_ char *cdigest = sw_sha256_digest(c, strlen(c));
  json_t *m = json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:I},s:o}", "schemaVersion", 2, "mediaType",
                        SW_MT_OCI_MANIFEST, "artifactType", SW_MT_CACHE_CONFIG, "config",
                        "mediaType", SW_MT_CACHE_CONFIG, "digest", cdigest, "size",
                        (json_int_t)strlen(c), "layers", mlayers);
  *manifest = sw_json_dump(m);
  json_decref(m);
  *config = c;
  return 0;
}

/* ---- parse (untrusted input) ---- */

static int
parse_time(json_t *j, int64_t *out)
{
  const char *s = json_string_value(j);
  struct tm tm = {0};
  if (s == NULL)
    return -1;
  const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == NULL)
    return -1;
  if (*end == '.') /* fractional seconds: dropped, as sw_time_rfc3339 writes none */
    for (end++; *end >= '0' && *end <= '9'; end++)
      ;
  if (strcmp(end, "Z") != 0)
    return -1;
  int64_t t = (int64_t)timegm(&tm);
  if (t < 0 || t > 253402300799) /* 1970 .. 9999-12-31 */
    return -1;
  *out = t;
  return 0;
}

static int
parse_layer(json_t *l, size_t i, sw_layer_desc_t *out, sw_error_t *err)
{
  json_t *a = json_object_get(l, "annotations");
  const char *blob = json_string_value(json_object_get(l, "blob"));
  const char *mt = json_string_value(json_object_get(a, "mediaType"));
  const char *diff = json_string_value(json_object_get(a, "diffID"));
  json_t *size = json_object_get(a, "size");
  if (!sw_digest_valid(blob) || !sw_digest_valid(diff))
    return sw_error(err, 0, "cache config: layer %zu: blob and diffID must be sha256 digests", i);
  if (!sw_cacheconfig_layer_type_ok(mt))
    return sw_error(err, 0, "cache config: layer %zu: media type `%s` is not a layer type", i,
                    mt ? mt : "(none)");
  if (!json_is_integer(size) || json_integer_value(size) < 0 ||
      json_integer_value(size) > ((json_int_t)1 << 42))
    return sw_error(err, 0, "cache config: layer %zu: bad size", i);
  memset(out, 0, sizeof(*out));
  snprintf(out->digest, sizeof(out->digest), "%s", blob);
  snprintf(out->diff_id, sizeof(out->diff_id), "%s", diff);
  snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
  out->size = json_integer_value(size);
  return 0;
}

static int
parse_record(json_t *rec, size_t i, const sw_layer_desc_t *layers, size_t nl, sw_cache_entry_t *out,
             sw_error_t *err)
{
  const char *key = json_string_value(json_object_get(rec, "digest"));
  json_t *res = json_object_get(rec, "layers");
  if (!sw_digest_valid(key))
    return sw_error(err, 0, "cache config: record %zu: digest must be a sha256 digest", i);
  if (res != NULL && (!json_is_array(res) || json_array_size(res) > 1))
    return sw_error(err, 0, "cache config: record %zu: at most one layer per record", i);
  memset(out, 0, sizeof(*out));
  snprintf(out->key, sizeof(out->key), "%s", key);
  json_t *r0 = json_array_get(res, 0);
  if (parse_time(json_object_get(rec, "createdAt"), &out->created) < 0 &&
      parse_time(json_object_get(r0, "createdAt"), &out->created) < 0)
    out->created = 0;
  if (r0 == NULL)
    return 0;
  json_t *li = json_object_get(r0, "layer");
  if (!json_is_integer(li) || json_integer_value(li) < 0 || (size_t)json_integer_value(li) >= nl)
    return sw_error(err, 0, "cache config: record %zu: layer index out of range", i);
  out->has_layer = true;
  out->layer = layers[json_integer_value(li)];
  parse_time(json_object_get(r0, "createdAt"), &out->created);
  return 0;
}

int
sw_cacheconfig_parse(const char *data, size_t len, sw_cache_entry_t **out, size_t *n,
                     sw_error_t *err)
{
  if (len > SW_CACHECONFIG_MAX)
    return sw_error(err, 0, "cache config: %zu bytes, more than the %u allowed", len,
                    SW_CACHECONFIG_MAX);
  json_error_t je;
  json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL)
    return sw_error(err, 0, "cache config: invalid JSON at line %d: %s", je.line, je.text);
  json_t *jl = json_object_get(j, "layers"), *jr = json_object_get(j, "records");
  int ret = -1;
  sw_layer_desc_t *layers = NULL;
  sw_cache_entry_t *e = NULL;
  size_t nl = json_array_size(jl), nr = json_array_size(jr);
  if (!json_is_object(j) || (jl && !json_is_array(jl)) || !json_is_array(jr)) {
    sw_error(err, 0, "cache config: expected an object with `layers` and `records` arrays");
    goto out;
  }
  if (nl > SW_CACHECONFIG_MAX_ITEMS || nr > SW_CACHECONFIG_MAX_ITEMS) {
    sw_error(err, 0, "cache config: more than %d layers or records", SW_CACHECONFIG_MAX_ITEMS);
    goto out;
  }
  layers = xcalloc(nl ? nl : 1, sizeof(*layers));
  e = xcalloc(nr ? nr : 1, sizeof(*e));
  for (size_t i = 0; i < nl; i++)
    if (parse_layer(json_array_get(jl, i), i, &layers[i], err) < 0)
      goto out;
  for (size_t i = 0; i < nr; i++)
    if (parse_record(json_array_get(jr, i), i, layers, nl, &e[i], err) < 0)
      goto out;
  *out = steal_ptr(&e);
  *n = nr;
  ret = 0;
out:
  free(layers);
  free(e);
  json_decref(j);
  return ret;
}
