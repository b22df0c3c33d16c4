/* slipway sandbox: resource limits of the process (`build --ulimit`, Docker's `--ulimit
 * NAME=SOFT[:HARD]`), parsed here and set by pid 1 before it drops privileges. */
#include "sandbox-private.h"

#include <strings.h>
#include <sys/resource.h>

static const struct {
  const char *name;
  int resource;
} names[] = {
    {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},         {"fsize", RLIMIT_FSIZE},
    {"locks", RLIMIT_LOCKS},       {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},
    {"rss", RLIMIT_RSS},           {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

/* "-1" is unlimited, as in Docker. */
static bool
limit_value(const char *s, size_t n, uint64_t *out)
{
  _cleanup_free_ char *v = xstrndup(s, n);
  if (strcmp(v, "-1") == 0) {
    *out = RLIM_INFINITY;
    return true;
  }
  char *end = NULL;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-')
    return false;
  *out = x;
  return true;
}

int
sw_rlimit_parse(const char *spec, sw_rlimit_t *out, sw_error_t *err)
{
  const char *eq = strchr(spec, '=');
  size_t i = 0;
  for (; eq && i < SW_ARRAY_SIZE(names); i++)
    if (strlen(names[i].name) == (size_t)(eq - spec) &&
        strncasecmp(spec, names[i].name, (size_t)(eq - spec)) == 0)
      break;
  if (eq == NULL || i == SW_ARRAY_SIZE(names))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "ulimit `%s`: give NAME=SOFT[:HARD] with NAME one of core, cpu, data, "
                         "fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, "
                         "rttime, sigpending, stack",
                         spec);
  const char *v = eq + 1, *colon = strchr(v, ':');
  out->resource = names[i].resource;
  if (!limit_value(v, colon ? (size_t)(colon - v) : strlen(v), &out->soft) ||
      !limit_value(colon ? colon + 1 : v, strlen(colon ? colon + 1 : v), &out->hard))
    return sw_error_code(err, SW_EXIT_USAGE, 0, "ulimit `%s`: limits are numbers (or -1)", spec);
  if (out->soft > out->hard)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "ulimit `%s`: the soft limit is above the hard limit", spec);
  return 0;
}

void
sb_apply_rlimits(const sw_sandbox_opts_t *o, int sock)
{
  for (size_t i = 0; i < o->n_rlimits; i++) {
    struct rlimit rl = {.rlim_cur = o->rlimits[i].soft, .rlim_max = o->rlimits[i].hard};
    if (setrlimit(o->rlimits[i].resource, &rl) < 0)
      sb_fail(sock, 1, errno, "sandbox: set ulimit %d to %llu:%llu", o->rlimits[i].resource,
              (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  }
}
