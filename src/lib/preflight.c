/* slipway: what a build needs from this machine, checked before any step runs. See preflight.h. */
#include "preflight.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *const index_args[] = {"PIP_INDEX_URL",    "PIP_EXTRA_INDEX_URL",
                                         "UV_INDEX_URL",     "UV_EXTRA_INDEX_URL",
                                         "UV_DEFAULT_INDEX", NULL};

/* Split an http(s) URL's authority: *host gets the host ("[::1]" keeps its brackets), *port the
 * port (the scheme's default when absent). false if url is no http(s) URL. */
static bool
url_host_port(const char *url, char **host, unsigned *port)
{
  const char *h;
  unsigned def;
  if (sw_str_has_prefix(url, "http://"))
    h = url + 7, def = 80;
  else if (sw_str_has_prefix(url, "https://"))
    h = url + 8, def = 443;
  else
    return false;
  const char *at = strpbrk(h, "@/?#");
  if (at && *at == '@')
    h = at + 1;
  const char *end = h[0] == '[' ? strchr(h, ']') : h + strcspn(h, ":/?#");
  if (end == NULL)
    return false;
  if (h[0] == '[')
    end++;
  *port = def;
  if (*end == ':') {
    char *stop = NULL;
    unsigned long n = strtoul(end + 1, &stop, 10);
    if (stop == end + 1 || n == 0 || n > 65535 || (*stop && !strchr("/?#", *stop)))
      return false;
    *port = (unsigned)n;
  }
  *host = xstrndup(h, (size_t)(end - h));
  return true;
}

/* Does a TCP connect to host:port on loopback get refused (nothing listens)? */
static bool
refused(const char *host, unsigned port)
{
  bool v6 = host[0] == '[';
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  struct timeval tv = {.tv_sec = 2};
  if (v6)
    a6.sin6_addr = in6addr_loopback;
  else if (strcasecmp(host, "localhost") == 0)
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  else if (inet_pton(AF_INET, host, &a4.sin_addr) != 1)
    return false;
  _cleanup_close_ int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int r = v6 ? connect(fd, (struct sockaddr *)&a6, sizeof(a6))
             : connect(fd, (struct sockaddr *)&a4, sizeof(a4));
  return r < 0 && errno == ECONNREFUSED;
}

/* The value an ARG word gives its name in this build, or NULL (none, or not a literal). */
static char *
arg_value(const sw_plan_t *p, const char *word, const char *key)
{
  const char *v = sw_env_get(p->build_args, key);
  const char *eq = strchr(word, '=');
  if (v == NULL && eq)
    v = eq + 1;
  if (v == NULL)
    v = sw_env_get(p->global_args, key);
  if (v == NULL || strchr(v, '$'))
    return NULL;
  size_t n = strlen(v);
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])
    return xstrndup(v + 1, n - 2);
  return xstrdup(v);
}

/* The comment block right above line (1-based), each line as written, or "" if none. */
static char *
comment_above(const sw_dockerfile_t *df, int line)
{
  size_t first = (size_t)line - 1; /* index of the ARG's line */
  while (first > 0 && first - 1 < df->n_lines && df->lines[first - 1][0] == '#' &&
         (size_t)line - first <= 8)
    first--;
  sw_buf_t b = {0};
  for (size_t i = first; i + 1 < (size_t)line && i < df->n_lines; i++)
    sw_buf_printf(&b, "\n  %s", df->lines[i]);
  return b.data ? sw_buf_steal(&b) : xstrdup("");
}

static void
check_arg(const sw_plan_t *p, const sw_insn_t *insn, const char *word, sw_index_down_t *down)
{
  size_t klen = strcspn(word, "=");
  _cleanup_free_ char *key = xstrndup(word, klen);
  bool index = false;
  for (const char *const *k = index_args; *k; k++)
    index |= strcmp(*k, key) == 0;
  if (!index)
    return;
  _cleanup_free_ char *url = arg_value(p, word, key), *host = NULL;
  unsigned port;
  if (url == NULL || !sw_url_is_loopback(url) || !url_host_port(url, &host, &port) ||
      !refused(host, port))
    return;
  _cleanup_free_ char *note = comment_above(p->df, insn->line);
  down->msg = xasprintf("%s:%d: ARG %s: nothing listens at %s (connection refused), and the RUN "
                        "steps that use it share this machine's network: start that index "
                        "first, or give --build-arg %s=URL (this step was not run).%s%s",
                        p->df->path, insn->line, key, url, key,
                        note[0] ? " The Dockerfile says:" : "", note);
  down->arg = xstrdup(key);
}

void
sw_preflight_indexes(const sw_plan_t *p, sw_index_down_t *down)
{
  *down = (sw_index_down_t){0};
  for (size_t s = 0; s < p->n_stages; s++) {
    const sw_stage_t *st = &p->stages[s];
    if (!st->needed || st->replaced)
      continue;
    for (size_t i = 0; i < st->n_steps; i++) {
      const sw_insn_t *insn = st->steps[i].insn;
      if (insn->kind != SW_INSN_ARG || st->steps[i].onbuild)
        continue;
      for (size_t a = 0; a < insn->n_args && down->arg == NULL; a++)
        check_arg(p, insn, insn->args[a], down);
    }
  }
}

void
sw_index_down_clear(sw_index_down_t *down)
{
  free(down->arg);
  free(down->msg);
  *down = (sw_index_down_t){0};
}
