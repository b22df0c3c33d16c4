/* slipway logs: print what a detached container wrote (ROOT/containers/<name>/log.jsonl). */
#include "../lib/container.h"
#include "cli.h"

#include <fcntl.h>

static const char usage_text[] =
    "Usage: slipway logs [OPTIONS] CONTAINER\n"
    "\n"
    "Print the output of a container started with `run -d` (stdout and stderr, in order).\n"
    "\n"
    "Options:\n"
    "  -f, --follow       keep printing new output until the container stops\n"
    "  -n, --tail N       only the last N lines (`all`: every line, the default)\n"
    "  -t, --timestamps   prefix each line with the time it was written (RFC 3339, UTC)\n"
    "  -h, --help         print this help\n";

struct logs_opts {
  bool follow, timestamps;
  long tail; /* -1: all */
};

/* Print the complete records of buf[0..len), return the bytes consumed. */
static size_t
print_records(const char *buf, size_t len, long skip, bool timestamps)
{
  size_t done = 0;
  for (;;) {
    const char *nl = memchr(buf + done, '\n', len - done);
    if (nl == NULL)
      return done;
    size_t n = (size_t)(nl - (buf + done));
    if (skip-- <= 0) {
      json_t *j = json_loadb(buf + done, n, 0, NULL);
      const char *log = json_string_value(json_object_get(j, "log"));
      size_t log_len = json_string_length(json_object_get(j, "log"));
      FILE *out = strcmp(json_string_value(json_object_get(j, "stream")) ?: "", "stderr") == 0
                      ? stderr
                      : stdout;
      if (log && timestamps)
        fprintf(out, "%s ", json_string_value(json_object_get(j, "time")) ?: "");
      if (log)
        fwrite(log, 1, log_len, out);
      json_decref(j);
    }
    done += n + 1;
  }
}

static long
count_records(const char *buf, size_t len)
{
  long n = 0;
  for (size_t i = 0; i < len; i++)
    n += buf[i] == '\n';
  return n;
}

static int
logs_one(sw_container_t *c, const char *ref, void *ctx, sw_error_t *err)
{
  const struct logs_opts *o = ctx;
  _cleanup_free_ char *path = xasprintf("%s/log.jsonl", c->dir);
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  if (access(path, F_OK) < 0)
    return 0; /* a foreground container: its output went to the terminal */
  if (sw_read_file(path, 0, &text, &len, err) < 0)
    return -1;
  long total = count_records(text, len);
  long skip = o->tail >= 0 && total > o->tail ? total - o->tail : 0;
  size_t off = print_records(text, len, skip, o->timestamps);
  fflush(stdout);
  fflush(stderr);
  if (!o->follow)
    return 0;
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || lseek(fd, (off_t)off, SEEK_SET) < 0)
    return sw_error(err, errno, "open `%s`", path);
  sw_buf_t pending = {0};
  for (;;) {
    bool up = sw_container_owned(c); /* before the read: output written before the end is seen */
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
      sw_buf_append(&pending, buf, (size_t)r);
    size_t used = print_records(pending.data, pending.len, 0, o->timestamps);
    memmove(pending.data, pending.data + used, pending.len - used);
    pending.len -= used;
    fflush(stdout);
    fflush(stderr);
    if (!up)
      break;
    usleep(100000);
  }
  sw_buf_free(&pending);
  return 0;
}

int
cmd_logs(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                       {"tail", required_argument, NULL, 'n'},
                                       {"timestamps", no_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct logs_opts o = {.tail = -1};
  int c;
  char *end;
  while ((c = getopt_long(argc, argv, "fn:th", opts, NULL)) != -1) {
    switch (c) {
    case 'f':
      o.follow = true;
      break;
    case 'n':
      o.tail = strcmp(optarg, "all") == 0 ? -1 : strtol(optarg, &end, 10);
      if (strcmp(optarg, "all") != 0 && (*end != '\0' || end == optarg || o.tail < 0))
        return sw_cli_usage_error("logs", "--tail `%s`: a number of lines, or `all`", optarg);
      break;
    case 't':
      o.timestamps = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("logs", "bad flags");
    }
  }
  if (optind + 1 != argc)
    return sw_cli_usage_error("logs", "`logs` needs exactly one container");
  return sw_cli_each_container(g, argc, argv, optind, logs_one, &o);
}
