/* slipway: image formats: references, OCI config/manifest/index, Docker schema2, and the
 * deterministic JSON writer they share. See image.h. */
#include "image.h"

#include <ctype.h>
#include <time.h>

/* ---- references (Docker's distribution/reference grammar) ---- */

void
sw_ref_free(sw_ref_t *r)
{
  if (r == NULL)
    return;
  free(r->domain);
  free(r->path);
  free(r->tag);
  free(r->digest);
  free(r);
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [._] | __ | [-]+ */
static bool
component_valid(const char *s, size_t n)
{
  size_t i = 0;
  if (n == 0 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
    return false;
  while (i < n) {
    while (i < n && (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
      i++;
    if (i == n)
      return true;
    size_t sep = i;
    if (s[i] == '.' || s[i] == '_') {
      i++;
      if (s[sep] == '_' && i < n && s[i] == '_')
        i++;
    } else if (s[i] == '-') {
      while (i < n && s[i] == '-')
        i++;
    } else {
      return false;
    }
    if (i == n || !(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
      return false;
  }
  return true;
}

static bool
path_valid(const char *p)
{
  const char *s = p;
  for (;;) {
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!component_valid(s, n))
      return false;
    if (slash == NULL)
      return true;
    s = slash + 1;
  }
}

static bool
tag_valid(const char *t)
{
  size_t n = strlen(t);
  if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
      return false;
  return true;
}

static bool
domain_valid(const char *d)
{
  if (*d == '\0')
    return false;
  for (const char *c = d; *c; c++)
    if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == ':' || *c == '[' ||
          *c == ']'))
      return false;
  const char *colon = strrchr(d, ':'), *bracket = strrchr(d, ']');
  if (colon && (bracket == NULL || colon > bracket)) {
    if (colon[1] == '\0')
      return false;
    for (const char *c = colon + 1; *c; c++)
      if (!isdigit((unsigned char)*c))
        return false;
  }
  return true;
}

static int
ref_error(sw_error_t *err, const char *s, const char *why)
{
  return sw_error_code(err, SW_EXIT_USAGE, 0, "invalid reference `%s`: %s", s, why);
}

int
sw_ref_parse(const char *s, sw_ref_t **out, sw_error_t *err)
{
  _cleanup_free_ char *name = xstrdup(s);
  _cleanup_free_ char *tag = NULL, *digest = NULL, *domain = NULL, *path = NULL;
  char *at = strchr(name, '@');

  if (*s == '\0')
    return ref_error(err, s, "empty name");
  if (at) {
    *at = '\0';
    digest = xstrdup(at + 1);
    if (!sw_digest_valid(digest))
      return ref_error(err, s, "digest must be sha256:<64 lowercase hex>");
  }
  char *last_slash = strrchr(name, '/');
  char *colon = strrchr(last_slash ? last_slash : name, ':');
  if (colon) {
    *colon = '\0';
    tag = xstrdup(colon + 1);
    if (!tag_valid(tag))
      return ref_error(err, s, "bad tag (letters, digits, _ . -, at most 128)");
  }
  char *slash = strchr(name, '/');
  if (slash && (memchr(name, '.', slash - name) || memchr(name, ':', slash - name) ||
                ((size_t)(slash - name) == 9 && strncmp(name, "localhost", 9) == 0) ||
                memchr(name, '[', slash - name))) {
    domain = xstrndup(name, slash - name);
    path = xstrdup(slash + 1);
    if (!domain_valid(domain))
      return ref_error(err, s, "bad registry host");
    if (strcmp(domain, "index.docker.io") == 0) {
      free(domain);
      domain = xstrdup("docker.io");
    }
  } else {
    domain = xstrdup("docker.io");
    path = xstrdup(name);
  }
  if (strcmp(domain, "docker.io") == 0 && strchr(path, '/') == NULL) {
    char *p = xasprintf("library/%s", path);
    free(path);
    path = p;
  }
  for (const char *c = path; *c; c++)
    if (isupper((unsigned char)*c))
      return ref_error(err, s, "repository name must be lowercase");
  if (!path_valid(path))
    return ref_error(err, s, "bad repository name (lowercase letters, digits, . _ - and /)");
  if (strlen(domain) + 1 + strlen(path) > 255)
    return ref_error(err, s, "repository name longer than 255 characters");
  if (tag == NULL && digest == NULL)
    tag = xstrdup("latest");

  sw_ref_t *r = xcalloc(1, sizeof(*r));
  r->domain = steal_ptr(&domain);
  r->path = steal_ptr(&path);
  r->tag = steal_ptr(&tag);
  r->digest = steal_ptr(&digest);
  *out = r;
  return 0;
}

char *
sw_ref_repository(const sw_ref_t *r)
{
  return xasprintf("%s/%s", r->domain, r->path);
}

char *
sw_ref_string(const sw_ref_t *r)
{
  sw_buf_t b = {0};
  sw_buf_printf(&b, "%s/%s", r->domain, r->path);
  if (r->tag)
    sw_buf_printf(&b, ":%s", r->tag);
  if (r->digest)
    sw_buf_printf(&b, "@%s", r->digest);
  return sw_buf_steal(&b);
}

char *
sw_ref_familiar_repository(const sw_ref_t *r)
{
  if (strcmp(r->domain, "docker.io") != 0)
    return sw_ref_repository(r);
  if (sw_str_has_prefix(r->path, "library/") && strchr(r->path + 8, '/') == NULL)
    return xstrdup(r->path + 8);
  return xstrdup(r->path);
}

char *
sw_ref_normalize(const char *s, sw_error_t *err)
{
  _cleanup_(sw_ref_freep) sw_ref_t *r = NULL;
  if (sw_ref_parse(s, &r, err) < 0)
    return NULL;
  return sw_ref_string(r);
}

void
sw_ref_display(const char *name, char **repo, char **tag)
{
  _cleanup_(sw_ref_freep) sw_ref_t *r = NULL;
  sw_error_t e = NULL;
  if (sw_ref_parse(name, &r, &e) < 0) {
    sw_error_release(&e);
    if (repo)
      *repo = xstrdup(name);
    if (tag)
      *tag = xstrdup("<none>");
    return;
  }
  if (repo)
    *repo = sw_ref_familiar_repository(r);
  if (tag)
    *tag = xstrdup(r->tag ? r->tag : "<none>");
}

/* ---- config ---- */

const char *
sw_host_arch(void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

json_t *
sw_config_new(const char *arch)
{
  return json_pack("{s:s, s:s, s:{}, s:{s:s, s:[]}, s:[]}", "architecture",
                   arch ? arch : sw_host_arch(), "os", "linux", "config", "rootfs", "type",
                   "layers", "diff_ids", "history");
}

json_t *
sw_config_container(json_t *cfg)
{
  json_t *c = json_object_get(cfg, "config");
  if (!json_is_object(c)) {
    c = json_object();
    json_object_set_new(cfg, "config", c);
  }
  return c;
}

void
sw_config_set_created(json_t *cfg, int64_t t)
{
  _cleanup_free_ char *s = sw_time_rfc3339(t);
  json_object_set_new(cfg, "created", json_string(s));
}

/* Parse "2024-01-02T03:04:05[.frac](Z|+hh:mm)" into unix seconds. */
static int64_t
parse_rfc3339(const char *s)
{
  struct tm tm = {0};
  const char *p;
  if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
    return 0;
  int64_t t = (int64_t)timegm(&tm);
  if (*p == '.')
    for (p++; isdigit((unsigned char)*p); p++)
      ;
  if ((*p == '+' || *p == '-') && strlen(p) >= 6) {
    int off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
    t += *p == '+' ? -off : off;
  }
  return t;
}

int64_t
sw_config_created(const json_t *cfg)
{
  return parse_rfc3339(json_string_value(json_object_get(cfg, "created")));
}

static json_t *
object_child(json_t *parent, const char *key, bool array)
{
  json_t *c = json_object_get(parent, key);
  if (array ? !json_is_array(c) : !json_is_object(c)) {
    c = array ? json_array() : json_object();
    json_object_set_new(parent, key, c);
  }
  return c;
}

void
sw_config_add_diff_id(json_t *cfg, const char *diff_id)
{
  json_t *rootfs = object_child(cfg, "rootfs", false);
  if (!json_is_string(json_object_get(rootfs, "type")))
    json_object_set_new(rootfs, "type", json_string("layers"));
  json_array_append_new(object_child(rootfs, "diff_ids", true), json_string(diff_id));
}

void
sw_config_add_history(json_t *cfg, int64_t created, const char *created_by, const char *comment,
                      bool empty_layer)
{
  _cleanup_free_ char *ts = sw_time_rfc3339(created);
  json_t *h = json_object();
  json_object_set_new(h, "created", json_string(ts));
  if (created_by)
    json_object_set_new(h, "created_by", json_string(created_by));
  if (comment && *comment)
    json_object_set_new(h, "comment", json_string(comment));
  if (empty_layer)
    json_object_set_new(h, "empty_layer", json_true());
  json_array_append_new(object_child(cfg, "history", true), h);
}

static size_t
env_find(json_t *env, const char *key)
{
  size_t kl = strlen(key), i;
  json_t *v;
  json_array_foreach(env, i, v)
  {
    const char *s = json_string_value(v);
    if (s && strncmp(s, key, kl) == 0 && s[kl] == '=')
      return i;
  }
  return (size_t)-1;
}

void
sw_config_env_set(json_t *cfg, const char *key, const char *value)
{
  json_t *env = object_child(sw_config_container(cfg), "Env", true);
  _cleanup_free_ char *kv = xasprintf("%s=%s", key, value);
  size_t i = env_find(env, key);
  if (i == (size_t)-1)
    json_array_append_new(env, json_string(kv));
  else
    json_array_set_new(env, i, json_string(kv));
}

const char *
sw_config_env_get(const json_t *cfg, const char *key)
{
  json_t *env = json_object_get(json_object_get(cfg, "config"), "Env");
  size_t i = json_is_array(env) ? env_find(env, key) : (size_t)-1;
  if (i == (size_t)-1)
    return NULL;
  return json_string_value(json_array_get(env, i)) + strlen(key) + 1;
}

void
sw_config_set_strv(json_t *cfg, const char *key, char *const *argv)
{
  json_t *c = sw_config_container(cfg);
  if (argv == NULL) {
    json_object_del(c, key);
    return;
  }
  json_t *a = json_array();
  for (size_t i = 0; argv[i]; i++)
    json_array_append_new(a, json_string(argv[i]));
  json_object_set_new(c, key, a);
}

void
sw_config_label_set(json_t *cfg, const char *key, const char *value)
{
  json_object_set_new(object_child(sw_config_container(cfg), "Labels", false), key,
                      json_string(value));
}

void
sw_config_expose(json_t *cfg, const char *port)
{
  _cleanup_free_ char *p = strchr(port, '/') ? xstrdup(port) : xasprintf("%s/tcp", port);
  json_object_set_new(object_child(sw_config_container(cfg), "ExposedPorts", false), p,
                      json_object());
}

void
sw_config_volume(json_t *cfg, const char *path)
{
  json_object_set_new(object_child(sw_config_container(cfg), "Volumes", false), path,
                      json_object());
}

/* ---- deterministic JSON ----
 * Each kind of object lists its keys in Go struct order with the kind of each child; keys not
 * listed follow, sorted. K_MAP objects (Go maps) are sorted entirely. */
enum kind {
  K_ANY,
  K_MAP,
  K_CONFIG,
  K_CONTAINER,
  K_HEALTH,
  K_ROOTFS,
  K_HISTORY,
  K_MANIFEST,
  K_DESC,
  K_INDEX,
  K_PLATFORM,
  K_ARRAY_OF, /* marker base: K_ARRAY_OF + k = array of kind k */
};

struct field {
  const char *key;
  int kind;
};

#define ARR(k) (K_ARRAY_OF + (k))

static const struct field f_config[] = {{"created", K_ANY},
                                        {"author", K_ANY},
                                        {"architecture", K_ANY},
                                        {"os", K_ANY},
                                        {"os.version", K_ANY},
                                        {"os.features", K_ANY},
                                        {"variant", K_ANY},
                                        {"config", K_CONTAINER},
                                        {"rootfs", K_ROOTFS},
                                        {"history", ARR(K_HISTORY)},
                                        {NULL, 0}};
static const struct field f_container[] = {{"User", K_ANY},
                                           {"ExposedPorts", K_MAP},
                                           {"Env", K_ANY},
                                           {"Entrypoint", K_ANY},
                                           {"Cmd", K_ANY},
                                           {"Volumes", K_MAP},
                                           {"WorkingDir", K_ANY},
                                           {"Labels", K_MAP},
                                           {"StopSignal", K_ANY},
                                           {"ArgsEscaped", K_ANY},
                                           {"Healthcheck", K_HEALTH},
                                           {"OnBuild", K_ANY},
                                           {"Shell", K_ANY},
                                           {NULL, 0}};
static const struct field f_health[] = {
    {"Test", K_ANY},          {"Interval", K_ANY}, {"Timeout", K_ANY}, {"StartPeriod", K_ANY},
    {"StartInterval", K_ANY}, {"Retries", K_ANY},  {NULL, 0}};
static const struct field f_rootfs[] = {{"type", K_ANY}, {"diff_ids", K_ANY}, {NULL, 0}};
static const struct field f_history[] = {{"created", K_ANY},     {"created_by", K_ANY},
                                         {"author", K_ANY},      {"comment", K_ANY},
                                         {"empty_layer", K_ANY}, {NULL, 0}};
static const struct field f_manifest[] = {
    {"schemaVersion", K_ANY}, {"mediaType", K_ANY}, {"artifactType", K_ANY}, {"config", K_DESC},
    {"layers", ARR(K_DESC)},  {"subject", K_DESC},  {"annotations", K_MAP},  {NULL, 0}};
static const struct field f_desc[] = {
    {"mediaType", K_ANY},     {"digest", K_ANY},       {"size", K_ANY},
    {"urls", K_ANY},          {"annotations", K_MAP},  {"data", K_ANY},
    {"platform", K_PLATFORM}, {"artifactType", K_ANY}, {NULL, 0}};
static const struct field f_index[] = {{"schemaVersion", K_ANY},
                                       {"mediaType", K_ANY},
                                       {"artifactType", K_ANY},
                                       {"manifests", ARR(K_DESC)},
                                       {"subject", K_DESC},
                                       {"annotations", K_MAP},
                                       {NULL, 0}};
static const struct field f_platform[] = {{"architecture", K_ANY}, {"os", K_ANY},
                                          {"os.version", K_ANY},   {"os.features", K_ANY},
                                          {"variant", K_ANY},      {NULL, 0}};

static const struct field *
fields_of(int kind)
{
  switch (kind) {
  case K_CONFIG:
    return f_config;
  case K_CONTAINER:
    return f_container;
  case K_HEALTH:
    return f_health;
  case K_ROOTFS:
    return f_rootfs;
  case K_HISTORY:
    return f_history;
  case K_MANIFEST:
    return f_manifest;
  case K_DESC:
    return f_desc;
  case K_INDEX:
    return f_index;
  case K_PLATFORM:
    return f_platform;
  default:
    return NULL;
  }
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *canonical(const json_t *j, int kind);

static void
add_sorted_rest(json_t *out, const json_t *j, const struct field *fs)
{
  size_t n = json_object_size(j), k = 0;
  _cleanup_free_ const char **keys = xcalloc(n + 1, sizeof(*keys));
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)j, key, v)
  {
    bool known = false;
    for (const struct field *f = fs; f && f->key; f++)
      known = known || strcmp(f->key, key) == 0;
    if (!known)
      keys[k++] = key;
  }
  qsort(keys, k, sizeof(*keys), cmp_str);
  for (size_t i = 0; i < k; i++)
    json_object_set_new(out, keys[i], canonical(json_object_get(j, keys[i]), K_ANY));
}

static json_t *
canonical(const json_t *j, int kind)
{
  if (json_is_array(j)) {
    json_t *a = json_array();
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)j, i, v)
        json_array_append_new(a, canonical(v, kind >= K_ARRAY_OF ? kind - K_ARRAY_OF : K_ANY));
    return a;
  }
  if (!json_is_object(j))
    return json_deep_copy(j);
  json_t *out = json_object();
  const struct field *fs = fields_of(kind);
  for (const struct field *f = fs; f && f->key; f++) {
    json_t *v = json_object_get(j, f->key);
    if (v)
      json_object_set_new(out, f->key, canonical(v, f->kind));
  }
  add_sorted_rest(out, j, fs);
  return out;
}

json_t *
sw_json_canonical(const json_t *j)
{
  int kind = K_ANY;
  if (json_is_object(j)) {
    if (json_object_get(j, "manifests"))
      kind = K_INDEX;
    else if (json_object_get(j, "schemaVersion"))
      kind = K_MANIFEST;
    else if (json_object_get(j, "rootfs") || json_object_get(j, "architecture"))
      kind = K_CONFIG;
  }
  return canonical(j, kind);
}

char *
sw_json_dump(const json_t *j)
{
  json_t *c = sw_json_canonical(j);
  char *s = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(c);
  if (s == NULL)
    abort();
  return s;
}

/* ---- images ---- */

sw_image_t *
sw_image_new(void)
{
  sw_image_t *img = xcalloc(1, sizeof(*img));
  img->config = sw_config_new(NULL);
  return img;
}

sw_image_t *
sw_image_dup(const sw_image_t *src)
{
  sw_image_t *img = xcalloc(1, sizeof(*img));
  img->manifest_digest = src->manifest_digest ? xstrdup(src->manifest_digest) : NULL;
  img->config_digest = src->config_digest ? xstrdup(src->config_digest) : NULL;
  img->manifest_size = src->manifest_size;
  img->config_size = src->config_size;
  img->config = src->config ? json_deep_copy(src->config) : NULL;
  if (src->n_layers) {
    img->layers = xcalloc(src->n_layers, sizeof(*img->layers));
    memcpy(img->layers, src->layers, src->n_layers * sizeof(*img->layers));
  }
  img->n_layers = src->n_layers;
  img->names = sw_strv_dup(src->names);
  return img;
}

void
sw_image_free(sw_image_t *img)
{
  if (img == NULL)
    return;
  free(img->manifest_digest);
  free(img->config_digest);
  json_decref(img->config);
  free(img->layers);
  sw_strv_free(img->names);
  free(img);
}

static void
push_layer(sw_image_t *img, const sw_layer_desc_t *layer)
{
  img->layers = xrealloc(img->layers, (img->n_layers + 1) * sizeof(*img->layers));
  img->layers[img->n_layers++] = *layer;
}

void
sw_image_add_layer(sw_image_t *img, const sw_layer_desc_t *layer)
{
  push_layer(img, layer);
  if (img->config == NULL)
    img->config = sw_config_new(NULL);
  sw_config_add_diff_id(img->config, layer->diff_id);
}

int64_t
sw_image_size(const sw_image_t *img)
{
  int64_t n = img->config_size;
  for (size_t i = 0; i < img->n_layers; i++)
    n += img->layers[i].size;
  return n;
}

const char *
sw_media_type_to_docker(const char *mt)
{
  if (strcmp(mt, SW_MT_OCI_LAYER_GZIP) == 0)
    return SW_MT_DOCKER_LAYER_GZIP;
  if (strcmp(mt, SW_MT_OCI_LAYER_ZSTD) == 0)
    return SW_MT_DOCKER_LAYER_ZSTD;
  if (strcmp(mt, SW_MT_OCI_LAYER) == 0)
    return SW_MT_DOCKER_LAYER;
  if (strcmp(mt, SW_MT_OCI_CONFIG) == 0)
    return SW_MT_DOCKER_CONFIG;
  if (strcmp(mt, SW_MT_OCI_MANIFEST) == 0)
    return SW_MT_DOCKER_MANIFEST;
  return mt;
}

const char *
sw_media_type_to_oci(const char *mt)
{
  if (strcmp(mt, SW_MT_DOCKER_LAYER_GZIP) == 0)
    return SW_MT_OCI_LAYER_GZIP;
  if (strcmp(mt, SW_MT_DOCKER_LAYER_ZSTD) == 0)
    return SW_MT_OCI_LAYER_ZSTD;
  if (strcmp(mt, SW_MT_DOCKER_LAYER) == 0)
    return SW_MT_OCI_LAYER;
  if (strcmp(mt, SW_MT_DOCKER_CONFIG) == 0)
    return SW_MT_OCI_CONFIG;
  if (strcmp(mt, SW_MT_DOCKER_MANIFEST) == 0)
    return SW_MT_OCI_MANIFEST;
  return mt;
}

static json_t *
descriptor(const char *mt, const char *digest, int64_t size)
{
  return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size", (json_int_t)size);
}

char *
sw_manifest_build(const sw_image_t *img, bool docker)
{
  json_t *layers = json_array();
  for (size_t i = 0; i < img->n_layers; i++) {
    const char *mt = img->layers[i].media_type;
    json_array_append_new(
        layers, descriptor(docker ? sw_media_type_to_docker(mt) : sw_media_type_to_oci(mt),
                           img->layers[i].digest, img->layers[i].size));
  }
  json_t *m = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
                        docker ? SW_MT_DOCKER_MANIFEST : SW_MT_OCI_MANIFEST, "config",
                        descriptor(docker ? SW_MT_DOCKER_CONFIG : SW_MT_OCI_CONFIG,
                                   img->config_digest, img->config_size),
                        "layers", layers);
  char *s = sw_json_dump(m);
  json_decref(m);
  return s;
}

static int
parse_desc(json_t *d, sw_layer_desc_t *out, const char *what, sw_error_t *err)
{
  const char *mt = json_string_value(json_object_get(d, "mediaType"));
  const char *dg = json_string_value(json_object_get(d, "digest"));
  json_t *size = json_object_get(d, "size");
  if (mt == NULL || dg == NULL || !sw_digest_valid(dg) || !json_is_integer(size) ||
      json_integer_value(size) < 0 || strlen(mt) >= sizeof(out->media_type))
    return sw_error(err, 0, "manifest: bad %s descriptor (mediaType, sha256 digest, size)", what);
  memset(out, 0, sizeof(*out));
  snprintf(out->digest, sizeof(out->digest), "%s", dg);
  snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
  out->size = json_integer_value(size);
  return 0;
}

int
sw_manifest_parse(const char *text, size_t len, sw_image_t *img, sw_error_t *err)
{
  json_error_t je;
  json_t *m = json_loadb(text, len, 0, &je);
  sw_layer_desc_t cfg, l;
  size_t i;
  json_t *v;
  int r = -1;

  if (m == NULL)
    return sw_error(err, 0, "manifest: invalid JSON at line %d: %s", je.line, je.text);
  const char *mt = json_string_value(json_object_get(m, "mediaType"));
  if (json_object_get(m, "manifests") ||
      (mt && (strcmp(mt, SW_MT_OCI_INDEX) == 0 || strcmp(mt, SW_MT_DOCKER_LIST) == 0))) {
    sw_error(err, 0, "manifest: this is an index (multi-platform list), not an image manifest");
    goto out;
  }
  if (json_integer_value(json_object_get(m, "schemaVersion")) != 2) {
    sw_error(err, 0, "manifest: unsupported schemaVersion (need 2)");
    goto out;
  }
  json_t *layers = json_object_get(m, "layers");
  if (parse_desc(json_object_get(m, "config"), &cfg, "config", err) < 0)
    goto out;
  if (!json_is_array(layers)) {
    sw_error(err, 0, "manifest: missing layers");
    goto out;
  }
  free(img->layers);
  img->layers = NULL;
  img->n_layers = 0;
  json_array_foreach(layers, i, v)
  {
    if (parse_desc(v, &l, "layer", err) < 0)
      goto out;
    push_layer(img, &l);
  }
  free(img->config_digest);
  img->config_digest = xstrdup(cfg.digest);
  img->config_size = cfg.size;
  r = 0;
out:
  json_decref(m);
  return r;
}

int
sw_image_set_config(sw_image_t *img, json_t *config, sw_error_t *err)
{
  json_t *ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
  if (!json_is_array(ids) || json_array_size(ids) != img->n_layers) {
    size_t n = json_array_size(ids);
    json_decref(config);
    return sw_error(err, 0, "image config: rootfs.diff_ids has %zu entries for %zu layers", n,
                    img->n_layers);
  }
  for (size_t i = 0; i < img->n_layers; i++) {
    const char *d = json_string_value(json_array_get(ids, i));
    if (d == NULL || !sw_digest_valid(d)) {
      json_decref(config);
      return sw_error(err, 0, "image config: rootfs.diff_ids[%zu] is not a sha256 digest", i);
    }
    snprintf(img->layers[i].diff_id, sizeof(img->layers[i].diff_id), "%s", d);
  }
  json_decref(img->config);
  img->config = config;
  return 0;
}

char *
sw_index_build(const char *const *digests, const int64_t *sizes, const char *const *ref_names,
               size_t n)
{
  json_t *ms = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *d = descriptor(SW_MT_OCI_MANIFEST, digests[i], sizes[i]);
    if (ref_names && ref_names[i])
      json_object_set_new(d, "annotations",
                          json_pack("{s:s}", SW_ANNOTATION_REF_NAME, ref_names[i]));
    json_array_append_new(ms, d);
  }
  json_t *idx = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", SW_MT_OCI_INDEX,
                          "manifests", ms);
  char *s = sw_json_dump(idx);
  json_decref(idx);
  return s;
}
