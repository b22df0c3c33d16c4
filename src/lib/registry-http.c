/* slipway: the HTTP session with one registry (libcurl): scheme choice, auth (bearer-token
 * challenges with a per-scope token cache, basic), retries with backoff, error messages that
 * name the URL and status. Thread-safe: transfers run in worker threads, each with its own
 * easy handle (kept per thread, so connections are reused), sharing one token cache. */
#include "registry-private.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <time.h>

#ifndef SW_VERSION
#define SW_VERSION "0.1.0"
#endif

typedef struct {
  char *scope;
  char *token;
  double expires;
} token_t;

struct sw_reg_s {
  char *host;
  char *base; /* scheme://api-host */
  bool plain_http;
  char *user, *pass;
  pthread_mutex_t lock;
  sw_auth_challenge_t chal; /* the registry's last challenge (scheme NULL: none seen) */
  token_t *tokens;
  size_t n_tokens;
  unsigned attempts, retry_base_ms;
  long stall_seconds;
  unsigned blob_timeout_s; /* base of every request's deadline (sw_transfer_deadline_s) */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_key_t curl_key;

static void
curl_handle_free(void *h)
{
  curl_easy_cleanup(h);
}

static void
curl_init_once(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  pthread_key_create(&curl_key, curl_handle_free);
}

static CURL *
thread_curl(void)
{
  CURL *h = pthread_getspecific(curl_key);
  if (h == NULL) {
    h = curl_easy_init();
    if (h == NULL)
      abort();
    pthread_setspecific(curl_key, h);
  }
  return h;
}

static unsigned
env_uint(const char *name, unsigned dflt)
{
  const char *s = getenv(name);
  char *end;
  if (s == NULL || *s == '\0')
    return dflt;
  unsigned long v = strtoul(s, &end, 10);
  return *end == '\0' && v < 1000000 ? (unsigned)v : dflt;
}

/* Credentials for the host from the docker config file; a missing file means anonymous. */
static int
load_creds(sw_reg_t *r, const sw_registry_opts_t *opts, sw_error_t *err)
{
  _cleanup_free_ char *path =
      opts && opts->docker_config ? xstrdup(opts->docker_config) : sw_docker_config_path();
  _cleanup_free_ char *json = NULL;

  if ((opts && opts->no_stored_creds) || sw_read_file(path, 1 << 20, &json, NULL, NULL) < 0)
    return 0;
  _cleanup_free_ char *where = NULL;
  _cleanup_free_ char *helper = sw_credhelper_name(json, r->host, &where);
  if (helper) { /* the helper alone has this host's credentials, as for docker */
    if (sw_credhelper_get(helper, r->host, &r->user, &r->pass, err) < 0)
      return sw_error_wrap(err, "credentials for %s (%s in `%s`)", r->host, where, path);
    sw_debug("credentials for %s from docker-credential-%s: %s", r->host, helper,
             r->user ? r->user : "none");
    return 0;
  }
  if (sw_docker_config_lookup(json, r->host, &r->user, &r->pass, err) < 0)
    return sw_error_wrap(err, "reading credentials from `%s`", path);
  if (r->user)
    sw_debug("using credentials for %s from %s (user %s)", r->host, path, r->user);
  return 0;
}

sw_reg_t *
sw_reg_new(const char *host, const sw_registry_opts_t *opts, sw_error_t *err)
{
  sw_reg_t *r = xcalloc(1, sizeof(*r));

  pthread_once(&curl_once, curl_init_once);
  r->host = xstrdup(host);
  r->plain_http = sw_registry_is_insecure(host, opts ? opts->insecure : NULL);
  r->base = xasprintf("%s://%s", r->plain_http ? "http" : "https", sw_registry_api_host(host));
  pthread_mutex_init(&r->lock, NULL);
  r->attempts = env_uint("SLIPWAY_RETRIES", 4) + 1;
  r->retry_base_ms = env_uint("SLIPWAY_RETRY_BASE_MS", 500);
  r->stall_seconds = env_uint("SLIPWAY_HTTP_STALL_SECONDS", 60);
  r->blob_timeout_s = env_uint("SLIPWAY_BLOB_TIMEOUT", 60);
  if (load_creds(r, opts, err) < 0) {
    sw_reg_free(r);
    return NULL;
  }
  return r;
}

void
sw_reg_free(sw_reg_t *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_tokens; i++) {
    free(r->tokens[i].scope);
    free(r->tokens[i].token);
  }
  free(r->tokens);
  sw_auth_challenge_clear(&r->chal);
  pthread_mutex_destroy(&r->lock);
  free(r->host);
  free(r->base);
  free(r->user);
  if (r->pass)
    explicit_bzero(r->pass, strlen(r->pass));
  free(r->pass);
  free(r);
}

const char *
sw_reg_host(const sw_reg_t *r)
{
  return r->host;
}

void
sw_reg_set_creds(sw_reg_t *r, const char *user, const char *pass)
{
  free(r->user);
  free(r->pass);
  r->user = xstrdup(user);
  r->pass = xstrdup(pass);
}

unsigned
sw_reg_attempts(const sw_reg_t *r)
{
  return r->attempts;
}

unsigned
sw_reg_retry_base_ms(const sw_reg_t *r)
{
  return r->retry_base_ms;
}

double
sw_reg_deadline_s(const sw_reg_t *r, uint64_t size)
{
  return sw_transfer_deadline_s(r->blob_timeout_s, size);
}

const char *
sw_reg_base(const sw_reg_t *r)
{
  return r->base;
}

char *
sw_reg_url(const sw_reg_t *r, const char *p)
{
  if (sw_str_has_prefix(p, "http://") || sw_str_has_prefix(p, "https://"))
    return xstrdup(p);
  return xasprintf("%s%s%s", r->base, p[0] == '/' ? "" : "/", p);
}

void
sw_http_resp_clear(sw_http_resp_t *r)
{
  sw_buf_free(&r->body);
  free(r->location);
  free(r->content_type);
  free(r->docker_digest);
  free(r->www_auth);
  free(r->range);
  free(r->retry_after);
  free(r->url);
  memset(r, 0, sizeof(*r));
}

/* ---- one attempt ---- */

typedef struct {
  const sw_http_req_t *req;
  sw_http_resp_t *resp;
  uint64_t sent, received;
  bool too_big;
} xfer_t;

static size_t
on_header(char *buf, size_t size, size_t n, void *ud)
{
  xfer_t *x = ud;
  size_t len = size * n;
  _cleanup_free_ char *line = xstrndup(buf, len);
  char *colon;

  line[strcspn(line, "\r\n")] = '\0';
  if (sw_str_has_prefix(line, "HTTP/")) {
    /* a new response (after a redirect or 100-continue): forget the previous headers */
    char **fields[] = {&x->resp->location, &x->resp->content_type, &x->resp->docker_digest,
                       &x->resp->www_auth, &x->resp->range,        &x->resp->retry_after};
    for (size_t i = 0; i < SW_ARRAY_SIZE(fields); i++) {
      free(*fields[i]);
      *fields[i] = NULL;
    }
    return len;
  }
  colon = strchr(line, ':');
  if (colon == NULL)
    return len;
  *colon = '\0';
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  char **slot = NULL;
  if (strcasecmp(line, "location") == 0)
    slot = &x->resp->location;
  else if (strcasecmp(line, "content-type") == 0)
    slot = &x->resp->content_type;
  else if (strcasecmp(line, "docker-content-digest") == 0)
    slot = &x->resp->docker_digest;
  else if (strcasecmp(line, "www-authenticate") == 0)
    slot = &x->resp->www_auth;
  else if (strcasecmp(line, "range") == 0)
    slot = &x->resp->range;
  else if (strcasecmp(line, "retry-after") == 0)
    slot = &x->resp->retry_after;
  if (slot && *slot == NULL)
    *slot = xstrdup(v);
  return len;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *ud)
{
  xfer_t *x = ud;
  size_t len = size * n;
  long status = 0;

  curl_easy_getinfo(thread_curl(), CURLINFO_RESPONSE_CODE, &status);
  /* Only a success body goes to the sink; an error body is kept for the message. */
  if (x->req->sink && status >= 200 && status < 300) {
    size_t took = x->req->sink(buf, len, x->req->sink_ud);
    x->received += took;
    return took;
  }
  size_t max = x->req->max_body && !(x->req->sink) ? x->req->max_body : 1 << 16;
  if (x->resp->body.len + len > max) {
    x->too_big = true;
    return 0;
  }
  sw_buf_append(&x->resp->body, buf, len);
  x->received += len;
  return len;
}

static size_t
on_read(char *buf, size_t size, size_t n, void *ud)
{
  xfer_t *x = ud;
  const sw_http_req_t *req = x->req;
  uint64_t total = req->body_fd >= 0 ? req->body_size : req->body_len;
  size_t want = size * n;

  if (x->sent >= total)
    return 0;
  if (want > total - x->sent)
    want = (size_t)(total - x->sent);
  if (req->body_fd >= 0) {
    ssize_t got;
    do
      got = pread(req->body_fd, buf, want, (off_t)(req->body_off + x->sent));
    while (got < 0 && errno == EINTR);
    if (got <= 0)
      return CURL_READFUNC_ABORT;
    want = (size_t)got;
  } else {
    memcpy(buf, (const char *)req->body + x->sent, want);
  }
  x->sent += want;
  return want;
}

static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  xfer_t *x = ud;
  if (x->req->progress) {
    if (ultotal > 0)
      x->req->progress(x->req->progress_ud, (uint64_t)ulnow, (uint64_t)ultotal);
    else
      x->req->progress(x->req->progress_ud, (uint64_t)dlnow, (uint64_t)dltotal);
  }
  return 0;
}

/* One request; timeout_ms > 0 bounds the whole of it (the request's deadline). */
static CURLcode
attempt(sw_reg_t *r, const sw_http_req_t *req, const char *url, const char *auth, long timeout_ms,
        sw_http_resp_t *resp, char *errbuf)
{
  CURL *h = thread_curl();
  struct curl_slist *hdrs = NULL;
  xfer_t x = {.req = req, .resp = resp};
  bool has_body = req->body_fd >= 0 || req->body;
  uint64_t body_size = req->body_fd >= 0 ? req->body_size : req->body_len;
  _cleanup_free_ char *auth_line = auth ? xasprintf("Authorization: %s", auth) : NULL;

  curl_easy_reset(h);
  sw_buf_free(&resp->body);
  errbuf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "slipway/" SW_VERSION);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  /* Below 1 KiB/s for stall_seconds is a stall; the deadline bounds a slow drip too. */
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, r->stall_seconds);
  if (timeout_ms > 0)
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, req->follow ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, r->plain_http ? "http,https" : "https");
  if (req->progress) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
  }
  if (auth_line)
    hdrs = curl_slist_append(hdrs, auth_line);
  hdrs = curl_slist_append(hdrs, "Expect:");
  for (size_t i = 0; req->headers && req->headers[i]; i++)
    hdrs = curl_slist_append(hdrs, req->headers[i]);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

  if (strcmp(req->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(req->method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &x);
  } else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(has_body ? body_size : 0));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &x);
    if (strcmp(req->method, "PATCH") == 0)
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
  } else if (strcmp(req->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  }

  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(hdrs);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
  resp->received = x.received;
  resp->sent = x.sent;
  char *eff = NULL;
  curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
  free(resp->url);
  resp->url = xstrdup(eff ? eff : url);
  if (rc == CURLE_WRITE_ERROR && x.too_big)
    snprintf(errbuf, CURL_ERROR_SIZE, "response body larger than %zu bytes", req->max_body);
  return rc;
}

/* ---- auth ---- */

static const char *
token_find(sw_reg_t *r, const char *scope)
{
  double now = sw_now();
  for (size_t i = 0; i < r->n_tokens; i++)
    if (strcmp(r->tokens[i].scope, scope) == 0 && r->tokens[i].expires > now)
      return r->tokens[i].token;
  return NULL;
}

static void
token_put(sw_reg_t *r, const char *scope, const char *token, double expires)
{
  for (size_t i = 0; i < r->n_tokens; i++)
    if (strcmp(r->tokens[i].scope, scope) == 0) {
      free(r->tokens[i].token);
      r->tokens[i].token = xstrdup(token);
      r->tokens[i].expires = expires;
      return;
    }
  r->tokens = xrealloc(r->tokens, (r->n_tokens + 1) * sizeof(token_t));
  r->tokens[r->n_tokens++] = (token_t){xstrdup(scope), xstrdup(token), expires};
}

static char *
basic_header(const sw_reg_t *r)
{
  _cleanup_free_ char *up = xasprintf("%s:%s", r->user, r->pass);
  _cleanup_free_ char *b64 = sw_base64_encode(up, strlen(up));
  return xasprintf("Basic %s", b64);
}

static char *
token_url(const char *realm, const char *service, const char *scope)
{
  sw_buf_t b = {0};
  char sep = strchr(realm, '?') ? '&' : '?';
  sw_buf_puts(&b, realm);
  if (service) {
    char *e = curl_easy_escape(NULL, service, 0);
    sw_buf_printf(&b, "%cservice=%s", sep, e);
    curl_free(e);
    sep = '&';
  }
  _cleanup_free_ char *scopes = xstrdup(scope ? scope : "");
  for (char *save = NULL, *s = strtok_r(scopes, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
    char *e = curl_easy_escape(NULL, s, 0);
    sw_buf_printf(&b, "%cscope=%s", sep, e);
    curl_free(e);
    sep = '&';
  }
  return sw_buf_steal(&b);
}

/* GET the token for scope from the challenge's realm, with basic creds when we have them. */
static int
token_fetch(sw_reg_t *r, const sw_auth_challenge_t *c, const char *scope, sw_error_t *err)
{
  _cleanup_free_ char *url = token_url(c->realm, c->service, scope);
  _cleanup_free_ char *basic = r->user ? basic_header(r) : NULL;
  sw_http_req_t req = {.method = "GET", .url = url, .body_fd = -1, .max_body = 1 << 20};
  sw_http_resp_t resp = {0};
  char errbuf[CURL_ERROR_SIZE];
  CURLcode rc = CURLE_OK;

  if (!sw_str_has_prefix(c->realm, "https://") && !r->plain_http)
    return sw_error(err, 0, "%s: refusing to send credentials to the plain-HTTP token realm `%s`",
                    r->host, c->realm);
  for (unsigned n = 1; n <= r->attempts; n++) {
    rc = attempt(r, &req, url, basic, 0, &resp, errbuf);
    if (!sw_retry_wanted(resp.status, rc, url) || n == r->attempts)
      break;
    unsigned ms = sw_retry_wait_ms(r->retry_base_ms, n, rc ? NULL : resp.retry_after, time(NULL));
    fprintf(stderr, "slipway: retry %u/%u: GET %s: %s; waiting %.1fs\n", n, r->attempts - 1, url,
            rc ? errbuf : "server error", ms / 1000.0);
    usleep(ms * 1000);
  }
  if (rc != CURLE_OK) {
    sw_error(err, 0, "GET %s: %s (token service for %s)", url, errbuf, r->host);
    sw_http_resp_clear(&resp);
    return -1;
  }
  if (resp.status == 401 || resp.status == 403) {
    sw_http_resp_clear(&resp);
    return sw_error(err, 0,
                    "GET %s: HTTP %ld: the token service refused %s for %s; run `slipway login "
                    "%s`",
                    url, resp.status, r->user ? "your credentials" : "anonymous access",
                    scope && *scope ? scope : "the registry", r->host);
  }
  json_t *root = resp.status == 200 ? json_loadb(resp.body.data, resp.body.len, 0, NULL) : NULL;
  const char *tok = json_string_value(json_object_get(root, "token"));
  if (tok == NULL)
    tok = json_string_value(json_object_get(root, "access_token"));
  if (tok == NULL || *tok == '\0') {
    json_decref(root);
    long st = resp.status;
    sw_http_resp_clear(&resp);
    return sw_error(err, 0, "GET %s: HTTP %ld: no token in the token service's answer", url, st);
  }
  json_int_t ttl = json_integer_value(json_object_get(root, "expires_in"));
  if (ttl <= 0)
    ttl = 60;
  pthread_mutex_lock(&r->lock);
  token_put(r, scope ? scope : "", tok, sw_now() + (double)ttl - 5);
  pthread_mutex_unlock(&r->lock);
  json_decref(root);
  sw_http_resp_clear(&resp);
  return 0;
}

/* The Authorization value for a request, fetching a token first if the registry wants one. */
static int
auth_for(sw_reg_t *r, const char *scope, char **out, sw_error_t *err)
{
  sw_auth_challenge_t c = {0};
  const char *sc = scope ? scope : "";

  *out = NULL;
  pthread_mutex_lock(&r->lock);
  if (r->chal.scheme && strcmp(r->chal.scheme, "bearer") == 0) {
    const char *tok = token_find(r, sc);
    if (tok) {
      *out = xasprintf("Bearer %s", tok);
      pthread_mutex_unlock(&r->lock);
      return 0;
    }
    c.realm = xstrdup(r->chal.realm);
    c.service = r->chal.service ? xstrdup(r->chal.service) : NULL;
  } else if (r->chal.scheme && strcmp(r->chal.scheme, "basic") == 0 && r->user) {
    *out = basic_header(r);
  }
  pthread_mutex_unlock(&r->lock);
  if (c.realm == NULL)
    return 0;
  int ret = token_fetch(r, &c, sc, err);
  sw_auth_challenge_clear(&c);
  if (ret < 0)
    return -1;
  pthread_mutex_lock(&r->lock);
  const char *tok = token_find(r, sc);
  *out = tok ? xasprintf("Bearer %s", tok) : NULL;
  pthread_mutex_unlock(&r->lock);
  return 0;
}

/* A 401 arrived: remember the challenge and forget a token that no longer works. Returns true
 * when another attempt could succeed. */
static bool
auth_challenged(sw_reg_t *r, const char *www_auth, const char *scope, bool sent_auth)
{
  sw_auth_challenge_t c = {0};
  if (www_auth == NULL || sw_auth_challenge_parse(www_auth, &c, NULL) < 0)
    return false;
  bool bearer = strcmp(c.scheme, "bearer") == 0;
  bool basic = strcmp(c.scheme, "basic") == 0;
  pthread_mutex_lock(&r->lock);
  bool was_known = r->chal.scheme && strcmp(r->chal.scheme, c.scheme) == 0;
  if (bearer)
    for (size_t i = 0; i < r->n_tokens; i++)
      if (strcmp(r->tokens[i].scope, scope ? scope : "") == 0)
        r->tokens[i].expires = 0;
  sw_auth_challenge_clear(&r->chal);
  r->chal = c;
  pthread_mutex_unlock(&r->lock);
  if (bearer)
    return !(sent_auth && was_known && c.error && strcmp(c.error, "insufficient_scope") == 0);
  return basic && r->user && !sent_auth;
}

/* ---- the request loop ---- */

/* The request ran out of time: name what moved, so a stall reads differently from a refusal. */
static int
deadline_error(sw_reg_t *r, const sw_http_req_t *req, const char *url, const sw_http_resp_t *resp,
               double started, sw_error_t *err)
{
  bool up = req->body_fd >= 0 || req->body;
  uint64_t moved = up ? resp->sent : resp->received;
  _cleanup_free_ char *of = req->xfer_size ? xasprintf(" of %" PRIu64, req->xfer_size) : NULL;
  sw_error(err, 0,
           "%s %s: the registry stalled or is too slow: %s %" PRIu64 "%s bytes, then the "
           "transfer's deadline passed after %.0f s (%u s + 1 s per 100 KiB; set "
           "SLIPWAY_BLOB_TIMEOUT=SECONDS to change the base)",
           req->method, url, up ? "sent" : "received", moved, of ? of : "", sw_now() - started,
           r->blob_timeout_s);
  (*err)->status = ETIMEDOUT; /* callers must not start over: the time is spent */
  return -1;
}

/* A transfer error: curl's words, what moved, and how many attempts were made. */
static int
transfer_error(sw_reg_t *r, const sw_http_req_t *req, const char *url, const sw_http_resp_t *resp,
               CURLcode rc, const char *errbuf, unsigned n, sw_error_t *err)
{
  bool up = req->body_fd >= 0 || req->body;
  _cleanup_free_ char *moved =
      req->xfer_size ? xasprintf(" (%s %" PRIu64 " of %" PRIu64 " bytes)", up ? "sent" : "received",
                                 up ? resp->sent : resp->received, req->xfer_size)
                     : NULL;
  _cleanup_free_ char *gave_up =
      n > 1 ? xasprintf(" (gave up after %u attempts; is the registry up?)", n)
      : rc == CURLE_COULDNT_CONNECT && sw_url_is_loopback(url)
          ? xstrdup(" (nothing listens there on this machine: is the registry up?)")
      : rc == CURLE_COULDNT_RESOLVE_HOST
          ? xstrdup(" (the host name does not resolve: is it spelled right, is DNS reachable?)")
          : NULL;
  return sw_error(err, 0, "%s %s: %s%s%s", req->method, url, errbuf[0] ? errbuf : "failed",
                  moved ? moved : "", gave_up ? gave_up : "");
}

static int
reg_do(sw_reg_t *r, const sw_http_req_t *req, sw_http_resp_t *resp, sw_error_t *err)
{
  _cleanup_free_ char *url = sw_reg_url(r, req->url);
  char errbuf[CURL_ERROR_SIZE];
  bool reauthed = false;
  unsigned n = 1;
  double started = sw_now();
  double deadline =
      req->deadline > 0 ? req->deadline : started + sw_reg_deadline_s(r, req->xfer_size);

  for (;;) {
    _cleanup_free_ char *auth = NULL;
    if (auth_for(r, req->scope, &auth, err) < 0)
      return -1;
    long left_ms = (long)((deadline - sw_now()) * 1000);
    if (r->blob_timeout_s && left_ms <= 0)
      return deadline_error(r, req, url, resp, started, err);
    CURLcode rc = attempt(r, req, url, auth, r->blob_timeout_s ? left_ms : 0, resp, errbuf);
    if (rc == CURLE_OK && resp->status == 401 && !reauthed &&
        auth_challenged(r, resp->www_auth, req->scope, auth != NULL)) {
      reauthed = true;
      if (req->restart)
        req->restart(req->sink_ud);
      continue;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && r->blob_timeout_s && sw_now() >= deadline - 0.05)
      return deadline_error(r, req, url, resp, started, err);
    if (!sw_retry_wanted(resp->status, rc, url) || req->no_retry ||
        (rc == CURLE_WRITE_ERROR || rc == CURLE_READ_ERROR || rc == CURLE_ABORTED_BY_CALLBACK)) {
      if (rc != CURLE_OK)
        return transfer_error(r, req, url, resp, rc, errbuf, 1, err);
      return 0;
    }
    if (n >= r->attempts) {
      if (rc != CURLE_OK)
        return transfer_error(r, req, url, resp, rc, errbuf, n, err);
      return 0; /* the caller reports the 5xx */
    }
    unsigned ms = sw_retry_wait_ms(r->retry_base_ms, n, rc == CURLE_OK ? resp->retry_after : NULL,
                                   time(NULL));
    _cleanup_free_ char *why =
        rc != CURLE_OK ? xstrdup(errbuf)
        : resp->retry_after && sw_retry_after_ms(resp->retry_after, time(NULL)) >= 0
            ? xasprintf("HTTP %ld, Retry-After: %s", resp->status, resp->retry_after)
            : xasprintf("HTTP %ld", resp->status);
    if (r->blob_timeout_s && sw_now() + ms / 1000.0 >= deadline) {
      if (rc != CURLE_OK)
        return transfer_error(r, req, url, resp, rc, errbuf, n, err);
      return 0; /* no time left to wait as asked: the caller reports the status */
    }
    fprintf(stderr, "slipway: retry %u/%u: %s %s: %s; waiting %.1fs\n", n, r->attempts - 1,
            req->method, url, why, ms / 1000.0);
    usleep(ms * 1000);
    if (req->restart)
      req->restart(req->sink_ud);
    n++;
  }
}

/* On failure nothing of the response is kept (callers return at once). */
int
sw_reg_do(sw_reg_t *r, const sw_http_req_t *req, sw_http_resp_t *resp, sw_error_t *err)
{
  if (reg_do(r, req, resp, err) < 0) {
    sw_http_resp_clear(resp);
    return -1;
  }
  return 0;
}

int
sw_reg_status_error(sw_reg_t *r, const char *method, const char *url, const sw_http_resp_t *resp,
                    sw_error_t *err)
{
  _cleanup_free_ char *full = sw_reg_url(r, url);
  _cleanup_free_ char *detail = sw_registry_error_body(resp->body.data, resp->body.len);
  const char *hint = "";
  _cleanup_free_ char *h = NULL;

  switch (resp->status) {
  case 401:
    hint = h = xasprintf("; run `slipway login %s`%s", r->host,
                         r->user ? " (the stored credentials were refused)" : "");
    break;
  case 403:
    hint = "; the account has no access to this repository";
    break;
  case 404:
    hint = "; check the image name and tag";
    break;
  case 405:
    hint = "; the registry does not allow this operation (read-only or a pull-through cache?)";
    break;
  default:
    if (resp->status >= 500)
      hint = "; the registry failed, try again later";
  }
  return sw_error(err, 0, "%s %s: HTTP %ld%s%s%s%s", method, full, resp->status, detail ? " (" : "",
                  detail ? detail : "", detail ? ")" : "", hint);
}
