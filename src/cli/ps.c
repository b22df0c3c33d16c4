/* slipway ps: list containers, as `docker ps` does (also `slipway container ls`). */
#include "../lib/container.h"
#include "cli.h"

#include <time.h>

static const char usage_text[] =
    "Usage: slipway ps [OPTIONS]\n"
    "\n"
    "List containers: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES. Running\n"
    "ones only, unless -a. A container whose monitor died shows as `Dead`.\n"
    "\n"
    "Options:\n"
    "  -a, --all        show all containers (stopped ones too)\n"
    "  -q, --quiet      print only container IDs\n"
    "      --no-trunc   full IDs and commands\n"
    "  -h, --help       print this help\n";

static char *
status_text(const sw_container_state_t *st)
{
  double now = (double)time(NULL);
  if (strcmp(st->status, "running") == 0) {
    _cleanup_free_ char *up = sw_cli_duration(now - st->started);
    return xasprintf("Up %s", up);
  }
  if (strcmp(st->status, "exited") == 0 || strcmp(st->status, "restarting") == 0) {
    _cleanup_free_ char *ago = sw_cli_ago((int64_t)st->finished);
    return xasprintf("%s (%d) %s", st->status[0] == 'e' ? "Exited" : "Restarting", st->exit_code,
                     ago);
  }
  return xstrdup(strcmp(st->status, "created") == 0 ? "Created" : "Dead");
}

static char *
command_text(json_t *cmd, bool no_trunc)
{
  sw_buf_t b = {0};
  size_t i;
  json_t *a;
  json_array_foreach(cmd, i, a) sw_buf_printf(&b, "%s%s", i ? " " : "", json_string_value(a));
  sw_buf_putc(&b, '\0');
  _cleanup_free_ char *s = sw_buf_steal(&b);
  if (!no_trunc && strlen(s) > 20)
    return xasprintf("\"%.19s…\"", s);
  return xasprintf("\"%s\"", s);
}

static char *
ports_text(json_t *ports)
{
  sw_buf_t b = {0};
  size_t i;
  json_t *p;
  json_array_foreach(ports, i, p) sw_buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(p));
  sw_buf_putc(&b, '\0');
  return sw_buf_steal(&b);
}

/* Columns padded to their widest cell (docker's tabwriter: 3 spaces between). */
static void
print_table(char ***rows, size_t n, size_t cols)
{
  size_t w[8] = {0};
  for (size_t r = 0; r < n; r++)
    for (size_t k = 0; k < cols; k++) {
      size_t len = 0;
      for (const unsigned char *p = (const unsigned char *)rows[r][k]; *p; p++)
        len += (*p & 0xc0) != 0x80; /* characters, not bytes: the ellipsis */
      if (len > w[k])
        w[k] = len;
    }
  for (size_t r = 0; r < n; r++) {
    for (size_t k = 0; k < cols; k++) {
      size_t len = 0;
      for (const unsigned char *p = (const unsigned char *)rows[r][k]; *p; p++)
        len += (*p & 0xc0) != 0x80;
      fputs(rows[r][k], stdout);
      if (k + 1 < cols)
        printf("%*s", (int)(w[k] - len + 3), "");
    }
    putchar('\n');
  }
}

int
cmd_ps(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"no-trunc", no_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool all = false, quiet = false, no_trunc = false;
  int c;
  while ((c = getopt_long(argc, argv, "aqh", opts, NULL)) != -1) {
    switch (c) {
    case 'a':
      all = true;
      break;
    case 'q':
      quiet = true;
      break;
    case 'n':
      no_trunc = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("ps", "bad flags");
    }
  }
  if (optind < argc)
    return sw_cli_usage_error("ps", "unexpected argument `%s`", argv[optind]);
  _cleanup_free_ char *cdir = sw_cli_containers_dir(g);
  size_t n = 0, nrows = 1;
  sw_container_t **v = sw_container_list(cdir, &n);
  char ***rows = xcalloc(n + 1, sizeof(char **));
  rows[0] = xcalloc(7, sizeof(char *));
  const char *heads[] = {"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"};
  for (size_t k = 0; k < 7; k++)
    rows[0][k] = xstrdup(heads[k]);
  for (size_t i = n; i-- > 0;) { /* newest first */
    sw_container_state_t st;
    sw_container_state_read(v[i], &st);
    bool up = strcmp(st.status, "running") == 0 || strcmp(st.status, "restarting") == 0;
    if (all || up) {
      if (quiet) {
        printf("%.*s\n", no_trunc ? 64 : 12, v[i]->id);
      } else {
        json_t *cfg = v[i]->config;
        char **row = rows[nrows++] = xcalloc(7, sizeof(char *));
        row[0] = xstrndup(v[i]->id, no_trunc ? 64 : 12);
        row[1] = xstrdup(json_string_value(json_object_get(cfg, "Image")) ?: "");
        row[2] = command_text(json_object_get(cfg, "Cmd"), no_trunc);
        row[3] = sw_cli_ago((int64_t)json_number_value(json_object_get(cfg, "Created")));
        row[4] = status_text(&st);
        row[5] = up ? ports_text(json_object_get(cfg, "Ports")) : xstrdup("");
        row[6] = xstrdup(v[i]->name);
      }
    }
    sw_container_state_clear(&st);
  }
  if (!quiet)
    print_table(rows, nrows, 7);
  for (size_t r = 0; r < nrows; r++) {
    for (size_t k = 0; k < 7; k++)
      free(rows[r][k]);
    free(rows[r]);
  }
  free(rows);
  sw_container_list_free(v, n);
  return 0;
}
