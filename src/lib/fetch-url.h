/* slipway: `ADD https://…`: a file fetched over HTTP(S) at build time, as BuildKit's http
 * source does it.
 *
 * The body is streamed into the blob store (named by its sha256, so the step's cache key is the
 * content digest). The URL's validators (ETag, Last-Modified) are recorded in the store next to
 * the digest, so a rebuild sends one conditional GET (If-None-Match / If-Modified-Since) and a
 * 304 reuses the stored digest without downloading; with `--checksum` naming a blob the store
 * already holds from this URL, no request at all. Transient failures (refused, reset, partial
 * body, 429, 5xx) are retried with backoff (SLIPWAY_RETRIES, SLIPWAY_RETRY_BASE_MS); a body cut
 * off midway is resumed (Range + If-Range) when the response had a strong ETag or a
 * Last-Modified. Proxies:
 * the build's proxy args (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, any case), else the
 * process environment as libcurl reads it.
 */
#ifndef SW_FETCH_URL_H
#define SW_FETCH_URL_H

#include "store.h"
#include "util.h"

typedef struct {
  char *const *proxy_env; /* K=V vector (the build args), may be NULL */
  const char *checksum;   /* --checksum: "sha256:<hex>", or NULL */
  bool no_cache;          /* download again, no revalidation */
} sw_url_opts_t;

typedef struct {
  char *digest;      /* "sha256:<hex>" of the body; the blob is in the store */
  char *name;        /* file name (see sw_url_file_name) */
  int64_t mtime;     /* Last-Modified (seconds), or -1 when the server sent none */
  unsigned requests; /* HTTP requests this fetch made (0 with a --checksum hit) */
} sw_url_file_t;

void sw_url_file_clear(sw_url_file_t *f);

/* Is this ADD source an http:// or https:// URL (not a git repository)? */
bool sw_url_is_http(const char *src);
/* Is this ADD source a git repository (git@…, git://, ssh://, http(s)://….git[#…])? */
bool sw_url_is_git(const char *src);

/* Fetch url (or revalidate what the store has of it). */
int sw_url_fetch(sw_store_t *s, const char *url, const sw_url_opts_t *o, sw_url_file_t *out,
                 sw_error_t *err);

/* The file name ADD gives a download, as Docker does: the last segment of the URL's path
 * (percent-decoded), else the `filename` of the Content-Disposition header (may be NULL), else
 * "__unnamed__" (BuildKit's name). Never "", ".", ".." nor containing "/" (malloc'd). */
char *sw_url_file_name(const char *url, const char *content_disposition);

#endif
