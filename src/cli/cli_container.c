/* Helpers of the container commands (ps, logs, stop, kill, rm, exec, container): they read
 * ROOT/containers/ directly (container.h), without opening the store's database, so they work
 * while a prune or build holds the store. */
#include "../lib/container.h"
#include "cli.h"

#include <time.h>

char *
sw_cli_containers_dir(sw_global_t *g)
{
  return xasprintf("%s/containers", g->root);
}

/* "3 seconds", "About a minute", "5 minutes": docker's units for "Up …". */
char *
sw_cli_duration(double seconds)
{
  long long d = (long long)seconds;
  if (d < 1)
    return xstrdup("Less than a second");
  if (d < 60)
    return xasprintf("%lld second%s", d, d == 1 ? "" : "s");
  if (d < 120)
    return xstrdup("About a minute");
  if (d < 3600)
    return xasprintf("%lld minutes", d / 60);
  if (d < 7200)
    return xstrdup("About an hour");
  if (d < 86400 * 2)
    return xasprintf("%lld hours", d / 3600);
  return xasprintf("%lld days", d / 86400);
}

/* Each container named in argv (from optind) is passed to fn; errors are reported and the
 * exit status is 1 if any failed, as docker does. */
int
sw_cli_each_container(sw_global_t *g, int argc, char **argv, int first,
                      int (*fn)(sw_container_t *c, const char *ref, void *ctx, sw_error_t *err),
                      void *ctx)
{
  _cleanup_free_ char *cdir = sw_cli_containers_dir(g);
  int rc = 0;
  for (int i = first; i < argc; i++) {
    sw_container_t *c = NULL;
    sw_error_t err = NULL;
    if (sw_container_open(cdir, argv[i], &c, &err) < 0 || fn(c, argv[i], ctx, &err) < 0) {
      sw_error_report(&err);
      rc = 1;
    }
    sw_container_free(c);
  }
  return rc;
}
