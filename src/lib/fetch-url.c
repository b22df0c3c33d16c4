/* slipway: `ADD https://…`, fetched into the blob store and revalidated; see fetch-url.h. */
#include "fetch-url.h"

#include "cachekey.h"
#include "registry-private.h" /* the retry policy, shared with the registry client */

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <strings.h>

#define UNNAMED "__unnamed__"

void
sw_url_file_clear(sw_url_file_t *f)
{
  free(f->digest);
  free(f->name);
  memset(f, 0, sizeof(*f));
  f->mtime = -1;
}

/* ---- classifying sources ---- */

bool
sw_url_is_git(const char *src)
{
  if (sw_str_has_prefix(src, "git@") || sw_str_has_prefix(src, "git://") ||
      sw_str_has_prefix(src, "ssh://"))
    return true;
  if (!sw_str_has_prefix(src, "http://") && !sw_str_has_prefix(src, "https://"))
    return false;
  size_t n = strcspn(src, "?#");
  return n >= 4 && strncmp(src + n - 4, ".git", 4) == 0;
}

bool
sw_url_is_http(const char *src)
{
  return (sw_str_has_prefix(src, "http://") || sw_str_has_prefix(src, "https://")) &&
         !sw_url_is_git(src);
}

/* ---- the file name ---- */

static int
hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *
percent_decode(const char *s, size_t n)
{
  char *out = xmalloc(n + 1), *o = out;
  for (size_t i = 0; i < n; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
      *o++ = (char)(hi * 16 + lo);
      i += 2;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

/* A usable file name, or NULL (empty, ".", "..", or holding a "/" or a NUL byte). */
static char *
usable(char *name)
{
  if (name == NULL || name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
      strchr(name, '/')) {
    free(name);
    return NULL;
  }
  return name;
}

/* path.Base of the URL's path (Go's url.Parse decodes it). */
static char *
name_from_url(const char *url)
{
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  p += strcspn(p, "/?#"); /* skip the authority */
  size_t n = strcspn(p, "?#");
  while (n > 0 && p[n - 1] == '/')
    n--;
  size_t start = n;
  while (start > 0 && p[start - 1] != '/')
    start--;
  return usable(percent_decode(p + start, n - start));
}

/* The `filename` parameter of a Content-Disposition value, its last path segment. */
static char *
name_from_disposition(const char *cd)
{
  for (const char *p = cd; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
    while (*p == ' ' || *p == '\t' || *p == ';')
      p++;
    if (strncasecmp(p, "filename", 8) != 0)
      continue;
    const char *v = p + 8;
    while (*v == ' ')
      v++;
    if (*v != '=') /* filename*= (RFC 5987) is not read */
      continue;
    v++;
    while (*v == ' ')
      v++;
    sw_buf_t b = {0};
    if (*v == '"') {
      for (v++; *v && *v != '"'; v++) {
        if (*v == '\\' && v[1])
          v++;
        sw_buf_append(&b, v, 1);
      }
    } else {
      size_t n = strcspn(v, "; \t");
      sw_buf_append(&b, v, n);
    }
    _cleanup_free_ char *val = sw_buf_steal(&b);
    if (val == NULL || val[0] == '\0' || val[strlen(val) - 1] == '/')
      return NULL;
    const char *slash = strrchr(val, '/');
    return usable(xstrdup(slash ? slash + 1 : val));
  }
  return NULL;
}

char *
sw_url_file_name(const char *url, const char *content_disposition)
{
  char *n = name_from_url(url);
  if (n == NULL && content_disposition)
    n = name_from_disposition(content_disposition);
  return n ? n : xstrdup(UNNAMED);
}

/* ---- validators recorded in the store ---- */

typedef struct {
  char *digest, *etag, *last_modified, *name;
  int64_t mtime;
} record_t;

static void
record_clear(record_t *r)
{
  free(r->digest);
  free(r->etag);
  free(r->last_modified);
  free(r->name);
  memset(r, 0, sizeof(*r));
}

static void
record_key(const char *url, char key[SW_KEY_SIZE])
{
  sw_keyhash_t *h = sw_keyhash_new("url-validators");
  sw_keyhash_str(h, url);
  sw_keyhash_finish(h, key);
}

static char *
jstr(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* 1: found (a usable record), 0: none. */
static int
record_load(sw_store_t *s, const char *url, record_t *r, sw_error_t *err)
{
  char key[SW_KEY_SIZE];
  record_key(url, key);
  _cleanup_free_ char *val = NULL;
  if (sw_cache_get(s, key, &val, err) < 0)
    return -1;
  if (val == NULL)
    return 0;
  json_t *j = json_loads(val, 0, NULL);
  if (j == NULL)
    return 0;
  r->digest = jstr(j, "digest");
  r->etag = jstr(j, "etag");
  r->last_modified = jstr(j, "last_modified");
  r->name = jstr(j, "name");
  json_t *m = json_object_get(j, "mtime");
  r->mtime = json_is_integer(m) ? (int64_t)json_integer_value(m) : -1;
  json_decref(j);
  if (r->digest == NULL || !sw_digest_valid(r->digest) || r->name == NULL) {
    record_clear(r);
    return 0;
  }
  return 1;
}

static int
record_save(sw_store_t *s, const char *url, const record_t *r, sw_error_t *err)
{
  char key[SW_KEY_SIZE];
  record_key(url, key);
  json_t *j = json_pack("{s:i, s:s, s:s, s:I}", "v", 1, "digest", r->digest, "name", r->name,
                        "mtime", (json_int_t)r->mtime);
  if (r->etag)
    json_object_set_new(j, "etag", json_string(r->etag));
  if (r->last_modified)
    json_object_set_new(j, "last_modified", json_string(r->last_modified));
  _cleanup_free_ char *val = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  char *none[] = {NULL};
  return sw_cache_put(s, key, val, none, 0, err);
}

/* ---- one GET ---- */

/* What a broken transfer left: the bytes so far (hashed as they came) and the validator that
 * lets the next attempt ask for the rest (Range + If-Range). */
typedef struct {
  sw_blob_writer_t *w;
  uint64_t have;
  char *validator;
} partial_t;

static void
partial_drop(partial_t *p)
{
  sw_blob_writer_free(p->w);
  free(p->validator);
  memset(p, 0, sizeof(*p));
}

typedef struct {
  CURL *h;
  sw_store_t *s;
  partial_t *part; /* the body: of a 200, or continued by a 206 */
  bool resuming;   /* this attempt asked for a range */
  bool body_started;
  sw_error_t werr; /* a write into the store failed */
  char *etag, *last_modified, *disposition;
} get_t;

static void
get_reset_headers(get_t *g)
{
  free(g->etag);
  free(g->last_modified);
  free(g->disposition);
  g->etag = g->last_modified = g->disposition = NULL;
}

static char *
header_value(const char *line, size_t n, const char *name)
{
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
    return NULL;
  const char *v = line + k + 1;
  const char *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  return xstrndup(v, (size_t)(end - v));
}

static size_t
on_header(char *buf, size_t size, size_t nmemb, void *ud)
{
  get_t *g = ud;
  size_t n = size * nmemb;
  char *v;
  if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) /* a new response (redirect, 100): start over */
    get_reset_headers(g);
  else if ((v = header_value(buf, n, "ETag")))
    free(g->etag), g->etag = v;
  else if ((v = header_value(buf, n, "Last-Modified")))
    free(g->last_modified), g->last_modified = v;
  else if ((v = header_value(buf, n, "Content-Disposition")))
    free(g->disposition), g->disposition = v;
  return n;
}

static size_t
on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
  get_t *g = ud;
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(g->h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 && !(status == 206 && g->resuming))
    return n; /* an error page or a redirect body: not the file */
  partial_t *p = g->part;
  if (!g->body_started) {
    g->body_started = true;
    if (status == 200 && p->have > 0) { /* the whole file again (If-Range did not hold) */
      sw_blob_writer_free(p->w);
      p->w = NULL;
      p->have = 0;
    }
  }
  if (p->w == NULL && (p->w = sw_blob_writer_new(g->s, &g->werr)) == NULL)
    return 0;
  if (sw_blob_writer_write(p->w, buf, n, &g->werr) < 0)
    return 0;
  p->have += n;
  return n;
}

static const char *
env_either(char *const *env, const char *upper, const char *lower)
{
  const char *v = env ? sw_env_get(env, upper) : NULL;
  if (v == NULL || v[0] == '\0')
    v = env ? sw_env_get(env, lower) : NULL;
  return v && v[0] ? v : NULL;
}

/* The build's proxy args win over the process environment (which libcurl reads itself). */
static void
set_proxy(CURL *h, const char *url, char *const *env)
{
  bool https = sw_str_has_prefix(url, "https://");
  const char *p = https ? env_either(env, "HTTPS_PROXY", "https_proxy")
                        : env_either(env, "HTTP_PROXY", "http_proxy");
  if (p == NULL)
    p = env_either(env, "ALL_PROXY", "all_proxy");
  if (p)
    curl_easy_setopt(h, CURLOPT_PROXY, p);
  const char *no = env_either(env, "NO_PROXY", "no_proxy");
  if (no)
    curl_easy_setopt(h, CURLOPT_NOPROXY, no);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static unsigned
env_uint(const char *name, unsigned dflt)
{
  const char *v = getenv(name);
  char *end = NULL;
  unsigned long n = v && *v ? strtoul(v, &end, 10) : dflt;
  return v && *v && (*end || n > 1000000) ? dflt : (unsigned)n;
}

typedef struct {
  long status;
  char *digest;
  char *etag, *last_modified, *disposition;
  int64_t mtime;
} got_t;

static void
got_clear(got_t *r)
{
  free(r->digest);
  free(r->etag);
  free(r->last_modified);
  free(r->disposition);
  memset(r, 0, sizeof(*r));
}

/* One attempt. Returns the curl code; *status and, on a 200, the committed blob. */
static CURLcode
attempt(CURL *h, sw_store_t *s, const char *url, const record_t *cond, const sw_url_opts_t *o,
        partial_t *part, got_t *out, char *errbuf, sw_error_t *err)
{
  get_t g = {.h = h, .s = s, .part = part, .resuming = part->have > 0 && part->validator};
  struct curl_slist *hdrs = NULL;
  if (part->have > 0 && !g.resuming)
    partial_drop(part);
  _cleanup_free_ char *range =
      g.resuming ? xasprintf("Range: bytes=%llu-", (unsigned long long)part->have) : NULL;
  _cleanup_free_ char *if_range = g.resuming ? xasprintf("If-Range: %s", part->validator) : NULL;
  _cleanup_free_ char *inm = cond && cond->etag ? xasprintf("If-None-Match: %s", cond->etag) : NULL;
  _cleanup_free_ char *ims =
      cond && cond->last_modified ? xasprintf("If-Modified-Since: %s", cond->last_modified) : NULL;
  curl_easy_reset(h);
  errbuf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "slipway/" SW_VERSION);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)env_uint("SLIPWAY_HTTP_STALL_SECONDS", 60));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &g);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &g);
  set_proxy(h, url, o->proxy_env);
  if (inm)
    hdrs = curl_slist_append(hdrs, inm);
  if (ims)
    hdrs = curl_slist_append(hdrs, ims);
  if (range) {
    hdrs = curl_slist_append(hdrs, range);
    hdrs = curl_slist_append(hdrs, if_range);
  }
  if (hdrs)
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(hdrs);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
  if (g.werr) { /* the store failed, not the network */
    *err = g.werr;
    g.werr = NULL;
    rc = CURLE_WRITE_ERROR;
    out->status = -1;
  }
  if (rc == CURLE_OK && (out->status == 200 || (out->status == 206 && g.resuming))) {
    out->status = 200;
    if (part->w == NULL && (part->w = sw_blob_writer_new(s, err)) == NULL) { /* an empty file */
      out->status = -1;
    } else {
      int c = sw_blob_writer_commit(part->w, o->checksum, &out->digest, err);
      part->w = NULL;
      partial_drop(part);
      if (c < 0) {
        sw_error_wrap(err, "GET %s", url);
        out->status = -1;
      }
    }
    curl_off_t ft = -1;
    curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ft);
    out->mtime = ft;
    out->etag = steal_ptr(&g.etag);
    out->last_modified = steal_ptr(&g.last_modified);
    out->disposition = steal_ptr(&g.disposition);
  } else if (rc != CURLE_OK && part->have > 0 && (out->status == 200 || out->status == 206)) {
    /* Cut off mid-body: keep the bytes when the next attempt can ask for the rest of this very
     * version (a strong ETag, else Last-Modified). */
    const char *v = g.etag && !sw_str_has_prefix(g.etag, "W/") ? g.etag : g.last_modified;
    if (!g.resuming && v) {
      free(part->validator);
      part->validator = xstrdup(v);
    } else if (!g.resuming) {
      partial_drop(part);
    }
  } else {
    partial_drop(part);
  }
  get_reset_headers(&g);
  return rc;
}

/* GET with retries. Returns 0 with out->status 200 (blob stored) or 304; -1 otherwise. */
static int
get(sw_store_t *s, const char *url, const record_t *cond, const sw_url_opts_t *o, got_t *out,
    unsigned *requests, sw_error_t *err)
{
  pthread_once(&curl_once, curl_init_once);
  CURL *h = curl_easy_init();
  if (h == NULL)
    return sw_error(err, 0, "GET %s: cannot start libcurl (is libcurl4 installed?)", url);
  unsigned attempts = env_uint("SLIPWAY_RETRIES", 4) + 1;
  unsigned base = env_uint("SLIPWAY_RETRY_BASE_MS", 500);
  char errbuf[CURL_ERROR_SIZE];
  partial_t part = {0};
  int rc = -1;
  for (unsigned n = 0; n < attempts; n++) {
    got_clear(out);
    (*requests)++;
    CURLcode c = attempt(h, s, url, cond, o, &part, out, errbuf, err);
    if (out->status == -1) /* store or checksum failure: err is filled */
      break;
    if (c == CURLE_OK && (out->status == 200 || out->status == 304)) {
      rc = 0;
      break;
    }
    _cleanup_free_ char *why = c != CURLE_OK ? xstrdup(errbuf[0] ? errbuf : "transfer failed")
                                             : xasprintf("HTTP %ld", out->status);
    if (!sw_retry_wanted(c == CURLE_OK ? out->status : 0, (int)c, url) || n + 1 == attempts) {
      if (n > 0)
        sw_error(err, 0, "GET %s: %s (after %u attempts)", url, why, n + 1);
      else
        sw_error(err, 0, "GET %s: %s", url, why);
      break;
    }
    unsigned ms = sw_retry_delay_ms(base, n + 1);
    _cleanup_free_ char *resume =
        part.have ? xasprintf("; resuming at byte %llu", (unsigned long long)part.have) : NULL;
    fprintf(stderr, "slipway: retry %u/%u: GET %s: %s; waiting %.1fs%s\n", n + 1, attempts - 1, url,
            why, ms / 1000.0, resume ? resume : "");
    usleep(ms * 1000);
  }
  partial_drop(&part);
  curl_easy_cleanup(h);
  return rc;
}

/* ---- the fetch ---- */

static void
fill_from_record(sw_url_file_t *out, const record_t *r)
{
  out->digest = xstrdup(r->digest);
  out->name = xstrdup(r->name);
  out->mtime = r->mtime;
}

int
sw_url_fetch(sw_store_t *s, const char *url, const sw_url_opts_t *o, sw_url_file_t *out,
             sw_error_t *err)
{
  record_t rec = {0};
  got_t g = {0};
  int rc = -1;
  sw_url_file_clear(out);
  if (o->checksum && !sw_digest_valid(o->checksum)) {
    rc = sw_error_code(err, SW_EXIT_USAGE, 0,
                       "--checksum=%s: expected sha256:<64 hex digits> (the file's sha256)",
                       o->checksum);
    goto out;
  }
  int have = record_load(s, url, &rec, err);
  if (have < 0)
    goto out;
  bool blob = have && sw_blob_exists(s, rec.digest);
  if (blob && o->checksum && strcmp(o->checksum, rec.digest) == 0) {
    fill_from_record(out, &rec); /* the content is known: no request at all */
    rc = 0;
    goto out;
  }
  bool cond = blob && !o->no_cache && (rec.etag || rec.last_modified);
  if (get(s, url, cond ? &rec : NULL, o, &g, &out->requests, err) < 0)
    goto out;
  if (g.status == 304) {
    if (!cond) {
      rc = sw_error(err, 0, "GET %s: HTTP 304 to a request that was not conditional", url);
      goto out;
    }
    if (o->checksum && strcmp(o->checksum, rec.digest) != 0) {
      rc = sw_error(err, 0, "GET %s: digest mismatch: expected %s, got %s", url, o->checksum,
                    rec.digest);
      goto out;
    }
    fill_from_record(out, &rec);
    rc = 0;
    goto out;
  }
  record_t fresh = {
      .digest = steal_ptr(&g.digest),
      .etag = steal_ptr(&g.etag),
      .last_modified = steal_ptr(&g.last_modified),
      .name = sw_url_file_name(url, g.disposition),
      .mtime = g.mtime,
  };
  fill_from_record(out, &fresh);
  rc = record_save(s, url, &fresh, err);
  record_clear(&fresh);
out:
  if (rc < 0)
    sw_url_file_clear(out);
  record_clear(&rec);
  got_clear(&g);
  return rc;
}
