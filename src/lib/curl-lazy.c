/* slipway: libcurl, loaded on first use.
 *
 * Loading libcurl.so and the ~30 libraries it pulls in (TLS, Kerberos, LDAP, IDN, nghttp2 …)
 * costs every slipway process about 8 ms before main() runs: most of a no-op `slipway build`,
 * which must take a few milliseconds and never talks to a registry. So the binary does not link
 * libcurl: these definitions stand in for the few libcurl functions the registry client calls
 * and forward to the real ones, dlopen'ed the first time any of them is used.
 *
 * When the registry code starts using another curl_* function, the link fails with an undefined
 * reference: add its wrapper here (same prototype as in <curl/curl.h>).
 */
#include "util.h"

#define CURL_DISABLE_TYPECHECK /* we define curl_easy_setopt itself */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>

static struct {
  void *lib;
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_perform)(CURL *);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  char *(*easy_escape)(CURL *, const char *, int);
  void (*free)(void *);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
load(void)
{
  void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    sw_warn("cannot load libcurl (libcurl.so.4, Debian package libcurl4): %s", dlerror());
    return;
  }
#define SYM(field, name) *(void **)&fn.field = dlsym(lib, name)
  SYM(global_init, "curl_global_init");
  SYM(easy_init, "curl_easy_init");
  SYM(easy_setopt, "curl_easy_setopt");
  SYM(easy_perform, "curl_easy_perform");
  SYM(easy_getinfo, "curl_easy_getinfo");
  SYM(easy_cleanup, "curl_easy_cleanup");
  SYM(easy_reset, "curl_easy_reset");
  SYM(easy_escape, "curl_easy_escape");
  SYM(free, "curl_free");
  SYM(slist_append, "curl_slist_append");
  SYM(slist_free_all, "curl_slist_free_all");
#undef SYM
  if (!fn.global_init || !fn.easy_init || !fn.easy_setopt || !fn.easy_perform || !fn.easy_getinfo ||
      !fn.easy_cleanup || !fn.easy_reset || !fn.easy_escape || !fn.free || !fn.slist_append ||
      !fn.slist_free_all) {
    sw_warn("libcurl.so.4 lacks a function slipway needs");
    memset(&fn, 0, sizeof(fn));
    return;
  }
  fn.lib = lib;
}

static bool
loaded(void)
{
  pthread_once(&once, load);
  return fn.lib != NULL;
}

CURLcode
curl_global_init(long flags)
{
  return loaded() ? fn.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *
curl_easy_init(void)
{
  return loaded() ? fn.easy_init() : NULL;
}

/* The one variadic argument has the type the option's range says (curl.h's CURLOPTTYPE_*). */
CURLcode
curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
  va_list ap;
  CURLcode r;
  if (!loaded())
    return CURLE_FAILED_INIT;
  va_start(ap, opt);
  if (opt < CURLOPTTYPE_OBJECTPOINT)
    r = fn.easy_setopt(h, opt, va_arg(ap, long));
  else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
    r = fn.easy_setopt(h, opt, va_arg(ap, void *));
  else if (opt < CURLOPTTYPE_OFF_T)
    r = fn.easy_setopt(h, opt, va_arg(ap, void (*)(void)));
  else if (opt < CURLOPTTYPE_BLOB)
    r = fn.easy_setopt(h, opt, va_arg(ap, curl_off_t));
  else
    r = fn.easy_setopt(h, opt, va_arg(ap, void *));
  va_end(ap);
  return r;
}

CURLcode
curl_easy_perform(CURL *h)
{
  return loaded() ? fn.easy_perform(h) : CURLE_FAILED_INIT;
}

/* Every CURLINFO_* takes a pointer. */
CURLcode
curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
  va_list ap;
  if (!loaded())
    return CURLE_FAILED_INIT;
  va_start(ap, info);
  CURLcode r = fn.easy_getinfo(h, info, va_arg(ap, void *));
  va_end(ap);
  return r;
}

void
curl_easy_cleanup(CURL *h)
{
  if (loaded())
    fn.easy_cleanup(h);
}

void
curl_easy_reset(CURL *h)
{
  if (loaded())
    fn.easy_reset(h);
}

char *
curl_easy_escape(CURL *h, const char *s, int len)
{
  return loaded() ? fn.easy_escape(h, s, len) : NULL;
}

void
curl_free(void *p)
{
  if (loaded())
    fn.free(p);
}

struct curl_slist *
curl_slist_append(struct curl_slist *l, const char *s)
{
  return loaded() ? fn.slist_append(l, s) : NULL;
}

void
curl_slist_free_all(struct curl_slist *l)
{
  if (loaded())
    fn.slist_free_all(l);
}
