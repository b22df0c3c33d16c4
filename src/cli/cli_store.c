/* slipway CLI: helpers shared by the store commands (images, inspect, history, tag, rmi, prune,
 * save, load, import). */
#include "../lib/store.h"
#include "cli.h"

#include <time.h>

/* What each store command does with the store, for a full filesystem (sw_store_open_mode). */
static sw_store_mode_t
store_mode(const char *command)
{
  static const char *const readers[] = {"images", "inspect", "history", "save"};
  static const char *const deleters[] = {"rmi", "prune"};
  for (size_t i = 0; command && i < SW_ARRAY_SIZE(readers); i++)
    if (strcmp(command, readers[i]) == 0)
      return SW_STORE_READ;
  for (size_t i = 0; command && i < SW_ARRAY_SIZE(deleters); i++)
    if (strcmp(command, deleters[i]) == 0)
      return SW_STORE_FREE;
  return SW_STORE_WRITE;
}

struct sw_store_s *
sw_cli_store_open(sw_global_t *g, int *rc)
{
  sw_store_t *s = NULL;
  sw_error_t err = NULL;
  if (sw_store_open_mode(g->root, store_mode(g->command), &s, &err) < 0) {
    *rc = sw_error_report(&err);
    return NULL;
  }
  return s;
}

char *
sw_cli_ago(int64_t t)
{
  int64_t d = (int64_t)time(NULL) - t;
  if (t <= 0)
    return xstrdup("N/A");
  if (d < 1)
    return xstrdup("Less than a second ago");
  if (d < 60)
    return xasprintf("%lld second%s ago", (long long)d, d == 1 ? "" : "s");
  if (d < 3600)
    return d < 120 ? xstrdup("About a minute ago")
                   : xasprintf("%lld minutes ago", (long long)d / 60);
  if (d < 86400 * 2)
    return d < 7200 ? xstrdup("About an hour ago")
                    : xasprintf("%lld hours ago", (long long)d / 3600);
  if (d < 86400 * 7 * 2)
    return xasprintf("%lld days ago", (long long)d / 86400);
  if (d < 86400 * 30 * 2)
    return xasprintf("%lld weeks ago", (long long)d / (86400 * 7));
  if (d < 86400 * 365 * 2)
    return xasprintf("%lld months ago", (long long)d / (86400 * 30));
  return xasprintf("%lld years ago", (long long)d / (86400 * 365));
}

bool
sw_cli_wants_help(int argc, char **argv)
{
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return true;
  return false;
}

char **
sw_cli_json_strv(json_t *arr)
{
  char **v = xcalloc(1, sizeof(char *));
  size_t i;
  json_t *x;

  json_array_foreach(arr, i, x) if (json_is_string(x)) sw_strv_push(&v, json_string_value(x));
  return v;
}

const char *
sw_cli_json_str(json_t *obj, const char *key)
{
  const char *s = json_string_value(json_object_get(obj, key));
  return s && *s ? s : NULL;
}
