/* slipway: the registry client's pure parsing: WWW-Authenticate challenges, docker config.json
 * credentials, manifests and indexes, platform selection, distribution error bodies, the retry
 * policy and reference normalisation. No network here; everything is unit-tested and fuzzed. */
#include "registry-private.h"

#include <ctype.h>
#include <inttypes.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

/* ---- WWW-Authenticate (RFC 7235: scheme, then comma-separated auth-params) ---- */

static const char *
skip_ws(const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* A token: letters, digits and the tchar punctuation. */
static size_t
token_len(const char *p)
{
  size_t n = 0;
  while (p[n] && (isalnum((unsigned char)p[n]) || strchr("!#$%&'*+-.^_`|~", p[n])))
    n++;
  return n;
}

static char *
lower_dup(const char *p, size_t n)
{
  char *s = xstrndup(p, n);
  for (char *q = s; *q; q++)
    *q = (char)tolower((unsigned char)*q);
  return s;
}

/* Parse `value` (quoted-string or token) at *pp; advances *pp. NULL on a malformed value. */
static char *
parse_param_value(const char **pp)
{
  const char *p = *pp;
  sw_buf_t b = {0};

  if (*p != '"') {
    size_t n = token_len(p);
    /* realm URLs are sometimes sent unquoted: accept up to the next comma. */
    while (p[n] && p[n] != ',' && p[n] != ' ')
      n++;
    *pp = p + n;
    return xstrndup(p, n);
  }
  for (p++; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1])
      p++;
    sw_buf_putc(&b, *p);
  }
  if (*p != '"') {
    sw_buf_free(&b);
    return NULL;
  }
  *pp = p + 1;
  return sw_buf_steal(&b);
}

void
sw_auth_challenge_clear(sw_auth_challenge_t *c)
{
  free(c->scheme);
  free(c->realm);
  free(c->service);
  free(c->scope);
  free(c->error);
  memset(c, 0, sizeof(*c));
}

static void
challenge_set(sw_auth_challenge_t *c, const char *key, char *value)
{
  char **slot = NULL;
  if (strcmp(key, "realm") == 0)
    slot = &c->realm;
  else if (strcmp(key, "service") == 0)
    slot = &c->service;
  else if (strcmp(key, "scope") == 0)
    slot = &c->scope;
  else if (strcmp(key, "error") == 0)
    slot = &c->error;
  if (slot == NULL) {
    free(value);
    return;
  }
  free(*slot);
  *slot = value;
}

/* Parse all challenges; keep the best one (bearer > basic > other) in *out. */
int
sw_auth_challenge_parse(const char *header, sw_auth_challenge_t *out, sw_error_t *err)
{
  sw_auth_challenge_t best = {0}, cur = {0};
  const char *p = header ? header : "";

  for (;;) {
    p = skip_ws(p);
    while (*p == ',')
      p = skip_ws(p + 1);
    if (*p == '\0')
      break;
    size_t n = token_len(p);
    if (n == 0)
      goto bad;
    const char *after = skip_ws(p + n);
    if (*after == '=' && cur.scheme) {
      /* an auth-param of the current challenge */
      _cleanup_free_ char *key = lower_dup(p, n);
      p = skip_ws(after + 1);
      char *value = parse_param_value(&p);
      if (value == NULL)
        goto bad;
      challenge_set(&cur, key, value);
      continue;
    }
    /* a new scheme: the previous challenge is complete */
    if (cur.scheme) {
      if (best.scheme == NULL ||
          (strcmp(cur.scheme, "bearer") == 0 && strcmp(best.scheme, "bearer") != 0)) {
        sw_auth_challenge_clear(&best);
        best = cur;
      } else {
        sw_auth_challenge_clear(&cur);
      }
      memset(&cur, 0, sizeof(cur));
    }
    cur.scheme = lower_dup(p, n);
    p = after;
  }
  if (cur.scheme) {
    if (best.scheme == NULL ||
        (strcmp(cur.scheme, "bearer") == 0 && strcmp(best.scheme, "bearer") != 0)) {
      sw_auth_challenge_clear(&best);
      best = cur;
    } else {
      sw_auth_challenge_clear(&cur);
    }
  }
  if (best.scheme == NULL)
    return sw_error(err, 0, "empty WWW-Authenticate challenge");
  if (strcmp(best.scheme, "bearer") == 0 && (best.realm == NULL || *best.realm == '\0')) {
    sw_auth_challenge_clear(&best);
    return sw_error(err, 0, "bearer challenge without a realm: `%s`", header);
  }
  *out = best;
  return 0;
bad:
  sw_auth_challenge_clear(&cur);
  sw_auth_challenge_clear(&best);
  return sw_error(err, 0, "malformed WWW-Authenticate header: `%s`", header);
}

/* ---- base64 (OpenSSL's block coder) ---- */

char *
sw_base64_encode(const void *data, size_t len)
{
  char *out = xmalloc(4 * ((len + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  return out;
}

char *
sw_base64_decode(const char *s, size_t *len)
{
  size_t n = strlen(s);
  if (n % 4 != 0 || n > (1u << 20))
    return NULL;
  unsigned char *out = xmalloc(n / 4 * 3 + 1);
  int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
  if (r < 0) {
    free(out);
    return NULL;
  }
  /* EVP_DecodeBlock counts padding as zero bytes. */
  size_t m = (size_t)r;
  if (n >= 1 && s[n - 1] == '=')
    m--;
  if (n >= 2 && s[n - 2] == '=')
    m--;
  out[m] = '\0';
  if (len)
    *len = m;
  return (char *)out;
}

/* ---- docker config.json ---- */

char *
sw_docker_config_path(void)
{
  const char *dir = getenv("DOCKER_CONFIG");
  if (dir && *dir)
    return xasprintf("%s/config.json", dir);
  const char *home = getenv("HOME");
  return xasprintf("%s/.docker/config.json", home && *home ? home : "/root");
}

static bool
is_docker_hub(const char *host)
{
  return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
         strcmp(host, "registry-1.docker.io") == 0;
}

char *
sw_docker_config_key(const char *host)
{
  if (is_docker_hub(host))
    return xstrdup("https://index.docker.io/v1/");
  return xstrdup(host);
}

/* An `auths` key as a bare host: drop the scheme and any path, as Docker does. */
char *
sw_config_key_host(const char *key)
{
  if (sw_str_has_prefix(key, "https://"))
    key += 8;
  else if (sw_str_has_prefix(key, "http://"))
    key += 7;
  return xstrndup(key, strcspn(key, "/"));
}

bool
sw_config_key_matches(const char *key, const char *host)
{
  _cleanup_free_ char *h = sw_config_key_host(key);
  if (is_docker_hub(host))
    return is_docker_hub(h);
  return strcmp(h, host) == 0;
}

static int
config_entry_creds(json_t *entry, const char *key, char **user, char **pass, sw_error_t *err)
{
  const char *auth = json_string_value(json_object_get(entry, "auth"));
  if (auth && *auth) {
    size_t n;
    _cleanup_free_ char *dec = sw_base64_decode(auth, &n);
    char *colon = dec ? memchr(dec, ':', n) : NULL;
    if (colon == NULL)
      return sw_error(err, 0, "`auths.%s.auth` is not base64 of USER:PASSWORD", key);
    *user = xstrndup(dec, (size_t)(colon - dec));
    *pass = xstrdup(colon + 1);
    return 1;
  }
  const char *u = json_string_value(json_object_get(entry, "username"));
  const char *p = json_string_value(json_object_get(entry, "password"));
  if (u && p) {
    *user = xstrdup(u);
    *pass = xstrdup(p);
    return 1;
  }
  return 0;
}

int
sw_docker_config_lookup(const char *json, const char *host, char **user, char **pass,
                        sw_error_t *err)
{
  json_error_t jerr;
  json_t *root = json_loads(json, 0, &jerr);
  int ret = 0;

  if (root == NULL || !json_is_object(root)) {
    json_decref(root);
    return sw_error(err, 0, "invalid JSON at line %d: %s", jerr.line, jerr.text);
  }
  json_t *auths = json_object_get(root, "auths");
  const char *key;
  json_t *entry;
  if (json_is_object(auths)) {
    /* An exact key first, then any key naming the same host. */
    entry = json_object_get(auths, host);
    if (json_is_object(entry))
      ret = config_entry_creds(entry, host, user, pass, err);
    json_object_foreach(auths, key, entry)
    {
      if (ret != 0)
        break;
      if (json_is_object(entry) && sw_config_key_matches(key, host))
        ret = config_entry_creds(entry, key, user, pass, err);
    }
  }
  json_decref(root);
  return ret;
}

int
sw_docker_config_set(const char *json, const char *host, const char *user, const char *pass,
                     char **out, sw_error_t *err)
{
  json_t *root;
  json_error_t jerr;

  if (json && *json) {
    root = json_loads(json, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
      json_decref(root);
      return sw_error(err, 0, "invalid JSON at line %d: %s", jerr.line, jerr.text);
    }
  } else {
    root = json_object();
  }
  json_t *auths = json_object_get(root, "auths");
  if (!json_is_object(auths)) {
    auths = json_object();
    json_object_set_new(root, "auths", auths);
  }
  /* Drop other spellings of the same host, so one entry is the truth. */
  _cleanup_free_ char *key = sw_docker_config_key(host);
  const char *k;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(auths, tmp, k, v)
  {
    if (sw_config_key_matches(k, host))
      json_object_del(auths, k);
  }
  _cleanup_free_ char *up = xasprintf("%s:%s", user, pass);
  _cleanup_free_ char *b64 = sw_base64_encode(up, strlen(up));
  json_object_set_new(auths, key, json_pack("{s:s}", "auth", b64));
  char *s = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
  json_decref(root);
  if (s == NULL)
    abort();
  *out = xasprintf("%s\n", s);
  free(s);
  return 0;
}

/* ---- manifests ---- */

static void
desc_clear(sw_desc_t *d)
{
  free(d->media_type);
  free(d->digest);
  free(d->os);
  free(d->arch);
  free(d->variant);
  memset(d, 0, sizeof(*d));
}

void
sw_rmanifest_free(sw_rmanifest_t *m)
{
  if (m == NULL)
    return;
  desc_clear(&m->config);
  for (size_t i = 0; i < m->n_layers; i++)
    desc_clear(&m->layers[i]);
  for (size_t i = 0; i < m->n_manifests; i++)
    desc_clear(&m->manifests[i]);
  free(m->layers);
  free(m->manifests);
  free(m->media_type);
  free(m);
}

static char *
json_str_dup(json_t *o, const char *key)
{
  const char *s = json_string_value(json_object_get(o, key));
  return s ? xstrdup(s) : NULL;
}

static int
desc_parse(json_t *o, const char *what, size_t i, sw_desc_t *d, sw_error_t *err)
{
  if (!json_is_object(o))
    return sw_error(err, 0, "%s[%zu] is not an object", what, i);
  json_t *size = json_object_get(o, "size");
  const char *digest = json_string_value(json_object_get(o, "digest"));
  if (!sw_digest_valid(digest))
    return sw_error(err, 0, "%s[%zu] has no valid sha256 digest", what, i);
  if (!json_is_integer(size) || json_integer_value(size) < 0)
    return sw_error(err, 0, "%s[%zu] (%s) has no valid size", what, i, digest);
  d->digest = xstrdup(digest);
  d->size = json_integer_value(size);
  d->media_type = json_str_dup(o, "mediaType");
  json_t *plat = json_object_get(o, "platform");
  if (json_is_object(plat)) {
    d->os = json_str_dup(plat, "os");
    d->arch = json_str_dup(plat, "architecture");
    d->variant = json_str_dup(plat, "variant");
  }
  return 0;
}

static int
desc_array_parse(json_t *arr, const char *what, sw_desc_t **out, size_t *n, sw_error_t *err)
{
  if (!json_is_array(arr))
    return sw_error(err, 0, "`%s` is missing or not an array", what);
  size_t len = json_array_size(arr);
  if (len > 10000)
    return sw_error(err, 0, "`%s` has %zu entries (more than 10000)", what, len);
  *out = xcalloc(len ? len : 1, sizeof(sw_desc_t));
  *n = len;
  for (size_t i = 0; i < len; i++)
    if (desc_parse(json_array_get(arr, i), what, i, &(*out)[i], err) < 0)
      return -1;
  return 0;
}

static bool
is_index_type(const char *mt)
{
  return mt && (strcmp(mt, SW_MT_OCI_INDEX) == 0 || strcmp(mt, SW_MT_DOCKER_LIST) == 0);
}

static bool
is_manifest_type(const char *mt)
{
  return mt && (strcmp(mt, SW_MT_OCI_MANIFEST) == 0 || strcmp(mt, SW_MT_DOCKER_MANIFEST) == 0);
}

static int
manifest_fill(json_t *root, const char *content_type, sw_rmanifest_t *m, sw_error_t *err)
{
  json_t *sv = json_object_get(root, "schemaVersion");
  if (json_is_integer(sv) && json_integer_value(sv) == 1)
    return sw_error(err, 0,
                    "Docker schema 1 manifests are not supported (push the image again "
                    "with a current client)");
  if (!json_is_integer(sv) || json_integer_value(sv) != 2)
    return sw_error(err, 0, "unsupported manifest schemaVersion");
  m->media_type = json_str_dup(root, "mediaType");
  if (m->media_type == NULL && content_type) {
    /* OCI allows omitting mediaType; fall back to the Content-Type, minus parameters. */
    m->media_type = xstrndup(content_type, strcspn(content_type, "; "));
  }
  if (m->media_type == NULL ||
      (!is_index_type(m->media_type) && !is_manifest_type(m->media_type))) {
    /* Infer from shape, as OCI clients do. */
    free(m->media_type);
    m->media_type = NULL;
    if (json_is_array(json_object_get(root, "manifests")))
      m->media_type = xstrdup(SW_MT_OCI_INDEX);
    else if (json_is_object(json_object_get(root, "config")))
      m->media_type = xstrdup(SW_MT_OCI_MANIFEST);
    else
      return sw_error(err, 0, "not an image manifest or index (no `config`, no `manifests`)");
  }
  if (is_index_type(m->media_type)) {
    m->kind = SW_MANIFEST_INDEX;
    return desc_array_parse(json_object_get(root, "manifests"), "manifests", &m->manifests,
                            &m->n_manifests, err);
  }
  m->kind = SW_MANIFEST_IMAGE;
  if (desc_parse(json_object_get(root, "config"), "config", 0, &m->config, err) < 0)
    return -1;
  return desc_array_parse(json_object_get(root, "layers"), "layers", &m->layers, &m->n_layers, err);
}

int
sw_rmanifest_parse(const char *data, size_t len, const char *content_type, sw_rmanifest_t **out,
                   sw_error_t *err)
{
  json_error_t jerr;
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  _cleanup_(sw_rmanifest_freep) sw_rmanifest_t *m = NULL;

  if (root == NULL)
    return sw_error(err, 0, "invalid manifest JSON at line %d: %s", jerr.line, jerr.text);
  if (!json_is_object(root)) {
    json_decref(root);
    return sw_error(err, 0, "manifest is not a JSON object");
  }
  m = xcalloc(1, sizeof(*m));
  int r = manifest_fill(root, content_type, m, err);
  json_decref(root);
  if (r < 0)
    return -1;
  *out = steal_ptr(&m);
  return 0;
}

sw_comp_t
sw_layer_media_comp(const char *mt)
{
  if (mt == NULL)
    return SW_COMP_UNKNOWN;
  if (strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar.gzip") == 0 ||
      strcmp(mt, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") == 0)
    return SW_COMP_GZIP;
  if (!sw_str_has_prefix(mt, "application/vnd.oci.image.layer."))
    return SW_COMP_UNKNOWN;
  if (sw_str_has_suffix(mt, ".tar+gzip"))
    return SW_COMP_GZIP;
  if (sw_str_has_suffix(mt, ".tar+zstd"))
    return SW_COMP_ZSTD;
  if (sw_str_has_suffix(mt, ".tar"))
    return SW_COMP_NONE;
  return SW_COMP_UNKNOWN;
}

int
sw_config_diff_ids(const char *data, size_t len, char ***out, sw_error_t *err)
{
  json_error_t jerr;
  json_t *root = json_loadb(data, len, 0, &jerr);
  _cleanup_strv_ char **ids = NULL;

  if (root == NULL)
    return sw_error(err, 0, "invalid image config JSON at line %d: %s", jerr.line, jerr.text);
  json_t *arr = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
  if (!json_is_array(arr)) {
    json_decref(root);
    return sw_error(err, 0, "image config has no `rootfs.diff_ids`");
  }
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
  {
    const char *s = json_string_value(v);
    if (!sw_digest_valid(s)) {
      json_decref(root);
      return sw_error(err, 0, "image config: `rootfs.diff_ids[%zu]` is not a sha256 digest", i);
    }
    sw_strv_push(&ids, s);
  }
  json_decref(root);
  if (ids == NULL)
    ids = xcalloc(1, sizeof(char *));
  *out = steal_ptr(&ids);
  return 0;
}

/* ---- platforms ---- */

static int
plat_copy(char *dst, size_t cap, const char *s, size_t n, const char *what, sw_error_t *err)
{
  if (n == 0 || n >= cap)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "invalid platform %s", what);
  for (size_t i = 0; i < n; i++)
    dst[i] = (char)tolower((unsigned char)s[i]);
  dst[n] = '\0';
  return 0;
}

int
sw_platform_parse(const char *s, sw_platform_t *out, sw_error_t *err)
{
  sw_platform_t p = {0};
  _cleanup_free_ char *host = NULL;
  if (s == NULL || *s == '\0')
    s = host = xasprintf("linux/%s", sw_host_arch()); /* docker's default: the host's */
  const char *a = strchr(s, '/');
  if (a == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "invalid platform `%s`: expected OS/ARCH[/VARIANT], e.g. linux/amd64", s);
  const char *v = strchr(a + 1, '/');
  size_t alen = v ? (size_t)(v - a - 1) : strlen(a + 1);
  if (plat_copy(p.os, sizeof(p.os), s, (size_t)(a - s), "OS", err) < 0 ||
      plat_copy(p.arch, sizeof(p.arch), a + 1, alen, "architecture", err) < 0 ||
      (v && plat_copy(p.variant, sizeof(p.variant), v + 1, strlen(v + 1), "variant", err) < 0))
    return sw_error_wrap(err, "`%s`", s);
  if (strcmp(p.arch, "x86_64") == 0 || strcmp(p.arch, "x86-64") == 0)
    snprintf(p.arch, sizeof(p.arch), "amd64");
  else if (strcmp(p.arch, "aarch64") == 0)
    snprintf(p.arch, sizeof(p.arch), "arm64");
  *out = p;
  return 0;
}

/* arm64 without a variant means v8, as containerd's platform matcher treats it. */
static const char *
norm_variant(const char *arch, const char *variant)
{
  if (variant == NULL || *variant == '\0')
    return strcmp(arch, "arm64") == 0 ? "v8" : "";
  return variant;
}

const sw_desc_t *
sw_index_select(const sw_rmanifest_t *idx, const sw_platform_t *p, sw_error_t *err)
{
  const sw_desc_t *any_variant = NULL;
  _cleanup_buf_ sw_buf_t have = {0};

  for (size_t i = 0; i < idx->n_manifests; i++) {
    const sw_desc_t *d = &idx->manifests[i];
    if (!d->os || !d->arch || strcmp(d->os, p->os) != 0 || strcmp(d->arch, p->arch) != 0)
      continue;
    if (!is_manifest_type(d->media_type) && d->media_type != NULL)
      continue;
    if (strcmp(norm_variant(d->arch, d->variant), norm_variant(p->arch, p->variant)) == 0)
      return d;
    if (p->variant[0] == '\0' && any_variant == NULL)
      any_variant = d;
  }
  if (any_variant)
    return any_variant;
  for (size_t i = 0; i < idx->n_manifests; i++) {
    const sw_desc_t *d = &idx->manifests[i];
    if (d->os && d->arch)
      sw_buf_printf(&have, "%s%s/%s%s%s", have.len ? ", " : "", d->os, d->arch,
                    d->variant ? "/" : "", d->variant ? d->variant : "");
  }
  sw_error(err, 0,
           "no manifest for platform %s/%s%s%s in the index (it has: %s); "
           "choose one with --platform",
           p->os, p->arch, p->variant[0] ? "/" : "", p->variant, have.len ? have.data : "none");
  return NULL;
}

bool
sw_desc_is_attestation(const sw_desc_t *d)
{
  return d->os && d->arch && strcmp(d->os, "unknown") == 0 && strcmp(d->arch, "unknown") == 0;
}

int
sw_index_check(const sw_rmanifest_t *idx, sw_error_t *err)
{
  size_t images = 0;
  if (idx->kind != SW_MANIFEST_INDEX)
    return sw_error(err, 0, "not an image index");
  if (idx->n_manifests > SW_INDEX_MAX_ENTRIES)
    return sw_error(err, 0,
                    "the index lists %zu manifests (more than %d): refused as hostile or broken",
                    idx->n_manifests, SW_INDEX_MAX_ENTRIES);
  for (size_t i = 0; i < idx->n_manifests; i++) {
    const sw_desc_t *d = &idx->manifests[i];
    if (is_index_type(d->media_type))
      return sw_error(err, 0,
                      "manifests[%zu] (%s) is itself an index: nested indexes are not "
                      "supported (an index must list image manifests)",
                      i, d->digest);
    if (d->media_type && !is_manifest_type(d->media_type))
      return sw_error(err, 0, "manifests[%zu] (%s) has media type `%s`, not an image manifest", i,
                      d->digest, d->media_type);
    if (d->size > (int64_t)SW_MANIFEST_MAX)
      return sw_error(err, 0, "manifests[%zu] (%s) says it is %" PRId64 " bytes (at most %u)", i,
                      d->digest, d->size, SW_MANIFEST_MAX);
    for (size_t k = 0; k < i; k++)
      if (strcmp(idx->manifests[k].digest, d->digest) == 0)
        return sw_error(err, 0, "manifests[%zu] and [%zu] are the same manifest %s", k, i,
                        d->digest);
    if (!sw_desc_is_attestation(d))
      images++;
  }
  if (images == 0)
    return sw_error(err, 0, "the index lists no image manifest");
  return 0;
}

/* ---- errors and retries ---- */

char *
sw_registry_error_body(const char *body, size_t len)
{
  json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
  json_t *errs = json_object_get(root, "errors");
  sw_buf_t b = {0};
  size_t i;
  json_t *e;

  json_array_foreach(errs, i, e)
  {
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!code && !msg)
      continue;
    if (i >= 3)
      break;
    sw_buf_printf(&b, "%s%s%s%s", b.len ? "; " : "", code ? code : "", code && msg ? ": " : "",
                  msg ? msg : "");
  }
  json_decref(root);
  if (b.len == 0) {
    sw_buf_free(&b);
    return NULL;
  }
  return sw_buf_steal(&b);
}

bool
sw_retry_wanted(long http_status, int curl_code, const char *url)
{
  if (curl_code != CURLE_OK) {
    switch (curl_code) {
    case CURLE_COULDNT_CONNECT:
      /* Refused on this machine: nothing listens there, and waiting will not change that (a
       * registry on a closed loopback port cost 8 s of retries). Elsewhere it may be starting. */
      return !sw_url_is_loopback(url);
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
    }
  }
  return http_status == 429 || (http_status >= 500 && http_status != 501 && http_status <= 599);
}

unsigned
sw_retry_delay_ms(unsigned base_ms, unsigned n)
{
  unsigned d = base_ms;
  for (unsigned i = 1; i < n && d < 10000; i++)
    d *= 2;
  return d > 10000 ? 10000 : d;
}

/* Retry-After's HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850 and asctime
 * forms; English names whatever the locale. -1 when it is none of them. */
static time_t
http_date(const char *v)
{
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char mon[4] = "", gmt[4] = "";
  int day, year, h, m, sec, end = 0;
  if (sscanf(v, "%*[A-Za-z], %d %3s %d %d:%d:%d %3s%n", &day, mon, &year, &h, &m, &sec, gmt,
             &end) == 7 ||
      sscanf(v, "%*[A-Za-z], %d-%3s-%d %d:%d:%d %3s%n", &day, mon, &year, &h, &m, &sec, gmt,
             &end) == 7) {
    if (strcmp(gmt, "GMT") != 0)
      return -1;
    if (year < 100) /* RFC 850's two-digit year */
      year += year < 70 ? 2000 : 1900;
  } else if (sscanf(v, "%*3[A-Za-z] %3s %d %d:%d:%d %d%n", mon, &day, &h, &m, &sec, &year, &end) !=
             6) {
    return -1;
  }
  const char *p = strlen(mon) == 3 ? strstr(months, mon) : NULL;
  if (p == NULL || (p - months) % 3 != 0 || v[end] != '\0' || day < 1 || day > 31 || h > 23 ||
      m > 59 || sec > 60 || year < 1970)
    return -1;
  struct tm tm = {.tm_year = year - 1900,
                  .tm_mon = (int)(p - months) / 3,
                  .tm_mday = day,
                  .tm_hour = h,
                  .tm_min = m,
                  .tm_sec = sec};
  return timegm(&tm);
}

long
sw_retry_after_ms(const char *value, time_t now)
{
  if (value == NULL)
    return -1;
  while (*value == ' ' || *value == '\t')
    value++;
  size_t len = strlen(value);
  while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
    len--;
  _cleanup_free_ char *v = xstrndup(value, len);
  long ms;
  if (*v >= '0' && *v <= '9' && strspn(v, "0123456789") == len) {
    ms = len > 6 ? SW_RETRY_AFTER_MAX_MS : strtol(v, NULL, 10) * 1000;
  } else {
    time_t t = http_date(v);
    if (t < 0)
      return -1;
    ms = t <= now                                 ? 0
         : t - now > SW_RETRY_AFTER_MAX_MS / 1000 ? SW_RETRY_AFTER_MAX_MS
                                                  : (long)(t - now) * 1000;
  }
  return ms > SW_RETRY_AFTER_MAX_MS ? SW_RETRY_AFTER_MAX_MS : ms;
}

unsigned
sw_retry_wait_ms(unsigned base_ms, unsigned n, const char *retry_after, time_t now)
{
  long ra = sw_retry_after_ms(retry_after, now);
  return ra >= 0 ? (unsigned)ra : sw_retry_delay_ms(base_ms, n);
}

double
sw_transfer_deadline_s(unsigned base_s, uint64_t size)
{
  return (double)base_s + (double)size / SW_TRANSFER_MIN_RATE;
}

/* ---- registry hosts (references themselves are parsed by image.h: sw_ref_parse) ---- */

const char *
sw_registry_api_host(const char *host)
{
  return is_docker_hub(host) ? "registry-1.docker.io" : host;
}

bool
sw_registry_is_insecure(const char *host, char *const *insecure)
{
  _cleanup_free_ char *bare = NULL;
  if (host[0] == '[') /* [::1]:5000 */
    bare = xstrndup(host + 1, strcspn(host + 1, "]"));
  else
    bare = xstrndup(host, strcspn(host, ":"));
  if (strcmp(bare, "localhost") == 0 || strcmp(bare, "::1") == 0 || sw_str_has_prefix(bare, "127."))
    return true;
  for (size_t i = 0; insecure && insecure[i]; i++)
    if (strcmp(insecure[i], host) == 0 || strcmp(insecure[i], bare) == 0)
      return true;
  return false;
}
