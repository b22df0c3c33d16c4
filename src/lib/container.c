/* slipway containers: their directory, state and owner lock, and the monitor of `run -d`
 * (see container.h for the layout). */
#include "container.h"

#include "store_internal.h"
#include "util.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static double
now_unix(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
cpath(const sw_container_t *c, const char *name)
{
  return xasprintf("%s/%s", c->dir, name);
}

void
sw_container_free(sw_container_t *c)
{
  if (c == NULL)
    return;
  if (c->lock_fd >= 0)
    close(c->lock_fd);
  json_decref(c->config);
  free(c->id);
  free(c->name);
  free(c->dir);
  free(c);
}

void
sw_container_freep(sw_container_t **c)
{
  sw_container_free(*c);
}

void
sw_container_list_free(sw_container_t **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    sw_container_free(v[i]);
  free(v);
}

static bool
valid_name(const char *name)
{
  if (name[0] == '\0' || name[0] == '.' || name[0] == '-' || strlen(name) > 128)
    return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '.' || *p == '-'))
      return false;
  return true;
}

static sw_container_t *
load(const char *cdir, const char *name)
{
  _cleanup_free_ char *path = xasprintf("%s/%s/config.json", cdir, name);
  json_t *cfg = json_load_file(path, 0, NULL);
  if (cfg == NULL || !json_is_string(json_object_get(cfg, "Id"))) {
    json_decref(cfg);
    return NULL;
  }
  sw_container_t *c = xcalloc(1, sizeof(*c));
  c->config = cfg;
  c->id = xstrdup(json_string_value(json_object_get(cfg, "Id")));
  c->name = xstrdup(name);
  c->dir = xasprintf("%s/%s", cdir, name);
  c->lock_fd = -1;
  return c;
}

/* Lock, config, "created" state: everything a container is before it runs. */
static int
fill_new(sw_container_t *c, json_t *config, sw_error_t *err)
{
  _cleanup_free_ char *lock = cpath(c, "lock");
  c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c->lock_fd < 0 || flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0)
    return sw_error(err, errno, "lock `%s`", lock);
  c->config = json_incref(config);
  json_object_set_new(config, "Id", json_string(c->id));
  json_object_set_new(config, "Name", json_string(c->name));
  json_object_set_new(config, "Created", json_real(now_unix()));
  _cleanup_free_ char *cfg = cpath(c, "config.json");
  _cleanup_free_ char *text = json_dumps(config, JSON_COMPACT);
  if (sw_write_file_atomic(cfg, text, strlen(text), 0644, err) < 0)
    return -1;
  sw_container_state_t st = {.monitor_pid = getpid()};
  snprintf(st.status, sizeof(st.status), "created");
  return sw_container_state_write(c, &st, err);
}

int
sw_container_create(const char *cdir, const char *name, json_t *config, sw_container_t **out,
                    sw_error_t *err)
{
  char hex[SW_SHA256_HEX_LEN + 1];
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  _cleanup_free_ char *seed =
      xasprintf("%d.%ld.%ld.%ld", getpid(), (long)ts.tv_sec, ts.tv_nsec, random());
  sw_sha256_hex(seed, strlen(seed), hex);
  if (name && !valid_name(name))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "--name `%s`: not a valid name (letters, digits, `_.-`, not first `.-`)",
                         name);
  _cleanup_free_ char *abs = realpath(cdir, NULL);
  if (abs == NULL)
    return sw_error(err, errno, "`%s`", cdir);
  _cleanup_free_ char *short_id = xstrndup(hex, 12);
  const char *n = name ? name : short_id;
  _cleanup_(sw_container_freep) sw_container_t *c = xcalloc(1, sizeof(*c));
  c->lock_fd = -1;
  /* Made complete (locked, config and state written) under a dot name, then renamed into
   * sight: a reader never sees a half-made container, and what a kill leaves under the dot
   * name is swept by sw_container_prune. */
  c->dir = xasprintf("%s/.new-XXXXXX", abs);
  if (mkdtemp(c->dir) == NULL)
    return sw_error(err, errno, "create a container in `%s`", abs);
  c->id = xstrdup(hex);
  c->name = xstrdup(n);
  if (fill_new(c, config, err) < 0) {
    sw_error_t e2 = NULL;
    if (sw_rm_rf(c->dir, &e2) < 0)
      sw_error_release(&e2);
    return -1;
  }
  _cleanup_free_ char *final = xasprintf("%s/%s", abs, n);
  if (renameat2(AT_FDCWD, c->dir, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
    int e = errno;
    sw_error_t e2 = NULL;
    if (sw_rm_rf(c->dir, &e2) < 0)
      sw_error_release(&e2);
    if (e == EEXIST || e == ENOTEMPTY)
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "the container name `%s` is already in use: remove that container "
                           "with `slipway rm %s` (`rm -f` if it runs), or choose another name",
                           n, n);
    return sw_error(err, e, "create `%s`", final);
  }
  free(c->dir);
  c->dir = steal_ptr(&final);
  *out = steal_ptr(&c);
  return 0;
}

int
sw_container_open(const char *cdir, const char *ref, sw_container_t **out, sw_error_t *err)
{
  sw_container_t *found = NULL;
  size_t n = 0, matches = 0;

  if (valid_name(ref) && (found = load(cdir, ref)) != NULL) {
    *out = found;
    return 0;
  }
  sw_container_t **all = sw_container_list(cdir, &n);
  for (size_t i = 0; i < n; i++)
    if (strlen(ref) >= 1 && sw_str_has_prefix(all[i]->id, ref)) {
      matches++;
      found = all[i];
    }
  if (matches == 1) {
    *out = found;
    for (size_t i = 0; i < n; i++)
      if (all[i] != found)
        sw_container_free(all[i]);
    free(all);
    return 0;
  }
  sw_container_list_free(all, n);
  if (matches > 1)
    return sw_error(err, 0, "`%s` matches %zu containers: give more of the id, or the name", ref,
                    matches);
  return sw_error(err, 0, "no such container: `%s` (see `slipway ps -a`)", ref);
}

static int
by_created(const void *a, const void *b)
{
  const sw_container_t *x = *(sw_container_t *const *)a, *y = *(sw_container_t *const *)b;
  double cx = json_number_value(json_object_get(x->config, "Created"));
  double cy = json_number_value(json_object_get(y->config, "Created"));
  return cx < cy ? -1 : cx > cy;
}

sw_container_t **
sw_container_list(const char *cdir, size_t *n)
{
  _cleanup_dir_ DIR *d = opendir(cdir);
  sw_container_t **v = xcalloc(1, sizeof(*v));
  struct dirent *e;

  *n = 0;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    sw_container_t *c = load(cdir, e->d_name);
    if (c == NULL)
      continue;
    v = xrealloc(v, (*n + 1) * sizeof(*v));
    v[(*n)++] = c;
  }
  qsort(v, *n, sizeof(*v), by_created);
  return v;
}

bool
sw_container_owned(const sw_container_t *c)
{
  if (c->lock_fd >= 0)
    return true;
  _cleanup_free_ char *lock = cpath(c, "lock");
  _cleanup_close_ int fd = open(lock, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  return flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

void
sw_container_state_clear(sw_container_state_t *st)
{
  free(st->error);
  st->error = NULL;
}

void
sw_container_state_read(const sw_container_t *c, sw_container_state_t *st)
{
  _cleanup_free_ char *path = cpath(c, "state.json");
  json_t *j = json_load_file(path, 0, NULL);

  memset(st, 0, sizeof(*st));
  snprintf(st->status, sizeof(st->status), "%s",
           json_string_value(json_object_get(j, "Status")) ?: "dead");
  st->monitor_pid = (pid_t)json_integer_value(json_object_get(j, "MonitorPid"));
  st->pid = (pid_t)json_integer_value(json_object_get(j, "Pid"));
  st->started = json_number_value(json_object_get(j, "StartedAt"));
  st->finished = json_number_value(json_object_get(j, "FinishedAt"));
  st->exit_code = (int)json_integer_value(json_object_get(j, "ExitCode"));
  st->restarts = (int)json_integer_value(json_object_get(j, "RestartCount"));
  const char *e = json_string_value(json_object_get(j, "Error"));
  st->error = e && *e ? xstrdup(e) : NULL;
  json_decref(j);
  if (strcmp(st->status, "exited") != 0 && !sw_container_owned(c)) {
    snprintf(st->status, sizeof(st->status), "dead");
    st->pid = 0;
  }
}

int
sw_container_state_write(const sw_container_t *c, const sw_container_state_t *st, sw_error_t *err)
{
  _cleanup_free_ char *path = cpath(c, "state.json");
  json_t *j =
      json_pack("{s:s, s:i, s:i, s:f, s:f, s:i, s:i, s:s}", "Status", st->status, "MonitorPid",
                (json_int_t)st->monitor_pid, "Pid", (json_int_t)st->pid, "StartedAt", st->started,
                "FinishedAt", st->finished, "ExitCode", (json_int_t)st->exit_code, "RestartCount",
                (json_int_t)st->restarts, "Error", st->error ? st->error : "");
  _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return sw_write_file_atomic(path, text, strlen(text), 0644, err);
}

void
sw_container_started(sw_container_t *c, pid_t pid)
{
  sw_container_state_t st;
  sw_error_t err = NULL;
  sw_container_state_read(c, &st);
  snprintf(st.status, sizeof(st.status), "running");
  st.monitor_pid = getpid();
  st.pid = pid;
  st.started = now_unix();
  st.finished = 0;
  if (sw_container_state_write(c, &st, &err) < 0)
    sw_error_report(&err);
  sw_container_state_clear(&st);
}

void
sw_container_finished(sw_container_t *c, int code, const char *error)
{
  sw_container_state_t st;
  sw_error_t err = NULL;
  sw_container_state_read(c, &st);
  snprintf(st.status, sizeof(st.status), "exited");
  st.pid = 0;
  st.finished = now_unix();
  st.exit_code = code;
  free(st.error);
  st.error = error ? xstrdup(error) : NULL;
  if (sw_container_state_write(c, &st, &err) < 0)
    sw_error_report(&err);
  sw_container_state_clear(&st);
}

/* ---- the monitor of `run -d` ---- */

struct monitor {
  sw_container_t *c;
  int log_fd;
  int ready; /* write end of the pipe `run -d` waits on, -1 once told */
};

static void
log_record(int fd, const char *stream, const char *data, size_t len)
{
  struct timespec ts;
  struct tm tm;
  char when[64];

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t k = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + k, sizeof(when) - k, ".%09ldZ", ts.tv_nsec);
  json_t *j = json_pack("{s:s, s:s, s:s%}", "stream", stream, "time", when, "log", data, len);
  if (j == NULL)
    return;
  _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  _cleanup_free_ char *line = xasprintf("%s\n", text);
  (void)!sw_write_all(fd, line, strlen(line)); /* O_APPEND: one write, one whole record */
}

/* One record a line, so `logs -t` can stamp each. */
static void
log_chunk(int fd, const char *stream, const char *data, size_t len)
{
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    size_t n = nl ? (size_t)(nl - data) + 1 : len;
    log_record(fd, stream, data, n);
    data += n;
    len -= n;
  }
}

/* The container's stdout and stderr, each a pipe read by a thread of the monitor (its main
 * thread waits in sw_sandbox_run), so each record keeps its stream. */
struct logger {
  int rd[2], wr[2]; /* stdout, stderr */
  int log_fd;
  pthread_t th;
};

static void *
logger_main(void *arg)
{
  static const char *const names[] = {"stdout", "stderr"};
  struct logger *l = arg;
  struct pollfd p[2] = {{.fd = l->rd[0], .events = POLLIN}, {.fd = l->rd[1], .events = POLLIN}};
  char buf[65536];

  while (p[0].fd >= 0 || p[1].fd >= 0) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || p[i].revents == 0)
        continue;
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n > 0)
        log_chunk(l->log_fd, names[i], buf, (size_t)n);
      else if (n == 0 || errno != EINTR)
        p[i].fd = -1;
    }
  }
  return NULL;
}

static int
logger_start(struct logger *l, int log_fd, sw_error_t *err)
{
  int a[2], b[2];
  if (pipe2(a, O_CLOEXEC) < 0)
    return sw_error(err, errno, "pipe");
  if (pipe2(b, O_CLOEXEC) < 0) {
    close(a[0]);
    close(a[1]);
    return sw_error(err, errno, "pipe");
  }
  *l = (struct logger){.rd = {a[0], b[0]}, .wr = {a[1], b[1]}, .log_fd = log_fd};
  int e = pthread_create(&l->th, NULL, logger_main, l);
  if (e != 0) {
    for (int i = 0; i < 2; i++) {
      close(l->rd[i]);
      close(l->wr[i]);
    }
    return sw_error(err, e, "start the log thread");
  }
  return 0;
}

/* Once the process is gone (and with it its pid namespace, so every writer): the rest of the
 * output, then the thread. */
static void
logger_stop(struct logger *l)
{
  close(l->wr[0]);
  close(l->wr[1]);
  pthread_join(l->th, NULL);
  close(l->rd[0]);
  close(l->rd[1]);
}

/* "ok", or "CODE MESSAGE" (the exit status `run -d` takes). */
static void
tell(struct monitor *m, int code, const char *msg)
{
  if (m->ready < 0)
    return;
  _cleanup_free_ char *text = code ? xasprintf("%d %s", code, msg) : xstrdup(msg);
  (void)!sw_write_all(m->ready, text, strlen(text));
  close(m->ready);
  m->ready = -1;
}

static void
on_start(void *ctx, pid_t pid)
{
  struct monitor *m = ctx;
  sw_container_started(m->c, pid);
  tell(m, 0, "ok");
}

static void
close_others(const int *keep, size_t n_keep)
{
  _cleanup_dir_ DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int self = d ? dirfd(d) : -1;
  int *close_list = NULL;
  size_t n = 0;

  while (d && (e = readdir(d))) {
    int fd = atoi(e->d_name);
    bool keep_it = e->d_name[0] == '.' || fd <= 2 || fd == self;
    for (size_t i = 0; i < n_keep && !keep_it; i++)
      keep_it = keep[i] == fd;
    if (!keep_it) {
      close_list = xrealloc(close_list, (n + 1) * sizeof(int));
      close_list[n++] = fd;
    }
  }
  for (size_t i = 0; i < n; i++)
    close(close_list[i]);
  free(close_list);
}

static bool
stop_requested(const sw_container_t *c)
{
  _cleanup_free_ char *stop = cpath(c, "stop-requested");
  return access(stop, F_OK) == 0;
}

static bool
restart_wanted(sw_container_t *c, int code, int restarts)
{
  const char *policy = json_string_value(json_object_get(c->config, "Restart"));
  if (policy == NULL || strcmp(policy, "on-failure") != 0 || code == 0 || stop_requested(c))
    return false;
  json_int_t max = json_integer_value(json_object_get(c->config, "MaxRetries"));
  return max <= 0 || restarts < max;
}

/* The overlay wants an empty work dir for each mount. */
static void
fresh_workdir(const char *work)
{
  sw_error_t err = NULL;
  _cleanup_free_ char *w = xstrdup(work);
  sw_rm_rf(w, &err);
  sw_error_release(&err);
  mkdir(work, 0700);
}

static void __attribute__((noreturn))
monitor_main(sw_container_t *c, const sw_sandbox_opts_t *opts, int ready)
{
  struct monitor m = {.c = c, .ready = ready};
  sw_sandbox_opts_t o = *opts;
  sw_container_state_t st;
  int restarts = 0;

  prctl(PR_SET_NAME, "slipway-monitor");
  _cleanup_free_ char *log = cpath(c, "log.jsonl");
  m.log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  o.stdin_fd = SW_STDIO_NULL;
  o.on_output = NULL;
  o.on_start = on_start;
  o.output_ctx = &m;
  o.tty = false;
  o.forward_signals = true;
  for (;;) {
    sw_sandbox_status_t sst = {0};
    sw_error_t err = NULL;
    struct logger l;
    int r = logger_start(&l, m.log_fd, &err);
    if (r == 0) {
      o.stdout_fd = l.wr[0];
      o.stderr_fd = l.wr[1];
      r = sw_sandbox_run(&o, &sst, &err);
      logger_stop(&l);
    }
    int code = r == 0 ? sw_sandbox_status_code(&sst) : (err->code ? err->code : 1);
    bool never_ran = m.ready >= 0; /* `run -d` reports it: no restart, as docker */
    if (r < 0) {
      _cleanup_free_ char *line = xasprintf("slipway: %s\n", err->msg);
      log_record(m.log_fd, "stderr", line, strlen(line));
    }
    sw_container_finished(c, code, r < 0 ? err->msg : NULL);
    if (r < 0) /* after the state: `run -d` returns with it final */
      tell(&m, code, err->msg);
    sw_error_release(&err);
    if (never_ran || !restart_wanted(c, code, restarts))
      break;
    restarts++;
    sw_container_state_read(c, &st);
    snprintf(st.status, sizeof(st.status), "restarting");
    st.restarts = restarts;
    sw_container_state_write(c, &st, &err);
    sw_error_release(&err);
    sw_container_state_clear(&st);
    usleep(100000u << (restarts < 4 ? restarts : 4)); /* Docker's doubling delay, capped */
    if (stop_requested(c)) {                          /* stopped (or rm -f) while it waited */
      sw_container_finished(c, code, NULL);
      break;
    }
    if (o.workdir)
      fresh_workdir(o.workdir);
  }
  tell(&m, 1, "exited before it started");
  if (json_is_true(json_object_get(c->config, "AutoRemove"))) { /* run -d --rm */
    sw_error_t err = NULL;
    if (sw_rm_rf(c->dir, &err) < 0)
      sw_error_release(&err);
  }
  _exit(0);
}

int
sw_container_detach(sw_container_t *c, const sw_sandbox_opts_t *o, const int *keep, size_t n_keep,
                    sw_error_t *err)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return sw_error(err, errno, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return sw_error(err, errno, "fork");
  }
  if (pid == 0) {
    /* The intermediate child: a new session, and the monitor is orphaned at once, so no
     * terminal's hangup or the caller's exit reaches it. */
    close(p[0]);
    setsid();
    pid_t mon = fork();
    if (mon != 0)
      _exit(mon < 0 ? 1 : 0);
    (void)!chdir("/"); /* pins no directory: every path it uses is absolute */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      if (null > 2)
        close(null);
    }
    int *k = xcalloc(n_keep + 2, sizeof(int));
    memcpy(k, keep, n_keep * sizeof(int));
    k[n_keep] = p[1];
    k[n_keep + 1] = c->lock_fd;
    close_others(k, n_keep + 2); /* the store's lock and database included */
    free(k);
    monitor_main(c, o, p[1]);
  }
  close(p[1]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  char msg[4096];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof(msg) - 1 && (r = read(p[0], msg + n, sizeof(msg) - 1 - n)) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    n += (size_t)r;
  }
  msg[n] = '\0';
  close(p[0]);
  close(c->lock_fd); /* the monitor holds it now */
  c->lock_fd = -1;
  if (strcmp(msg, "ok") == 0)
    return 0;
  char *text = NULL;
  long code = strtol(msg, &text, 10);
  if (n == 0 || text == msg || *text != ' ')
    return sw_error(err, 0, "container `%s`: %s (see `slipway logs %s`)", c->name,
                    n ? msg : "its monitor died", c->name);
  return sw_error_code(err, (int)code, 0, "container `%s`: %s (see `slipway ps -a`)", c->name,
                       text + 1);
}

/* ---- stop, kill, rm ---- */

int
sw_signal_parse(const char *s)
{
  static const struct {
    const char *name;
    int sig;
  } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"KILL", SIGKILL},
              {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},   {"STOP", SIGSTOP},
              {"CONT", SIGCONT}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR}};
  if (s == NULL || *s == '\0')
    return -1;
  if (*s >= '0' && *s <= '9') {
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 && v < 65 ? (int)v : -1;
  }
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  for (size_t i = 0; i < SW_ARRAY_SIZE(sigs); i++)
    if (strcasecmp(s, sigs[i].name) == 0)
      return sigs[i].sig;
  return -1;
}

static bool
running(const sw_container_t *c, sw_container_state_t *st)
{
  sw_container_state_read(c, st);
  return strcmp(st->status, "running") == 0 && st->pid > 0;
}

static void
request_stop(sw_container_t *c)
{
  _cleanup_free_ char *p = cpath(c, "stop-requested");
  _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
}

int
sw_container_kill(sw_container_t *c, int sig, sw_error_t *err)
{
  sw_container_state_t st;
  bool up = running(c, &st);
  sw_container_state_clear(&st);
  if (!up)
    return sw_error(err, 0, "container `%s` is not running", c->name);
  if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT)
    request_stop(c);
  if (kill(st.pid, sig) < 0 && errno != ESRCH)
    return sw_error(err, errno, "kill container `%s` (pid %d)", c->name, (int)st.pid);
  return 0;
}

/* Until the owner has recorded the end (or died), at most `seconds`. */
static bool
wait_down(sw_container_t *c, double seconds)
{
  double end = sw_now() + seconds;
  sw_container_state_t st;
  for (;;) {
    sw_container_state_read(c, &st);
    bool up = strcmp(st.status, "running") == 0 || strcmp(st.status, "restarting") == 0 ||
              strcmp(st.status, "created") == 0;
    sw_container_state_clear(&st);
    if (!up)
      return true;
    if (sw_now() >= end)
      return false;
    usleep(50000);
  }
}

int
sw_container_stop(sw_container_t *c, int timeout, sw_error_t *err)
{
  sw_container_state_t st;
  bool up = running(c, &st);
  sw_container_state_clear(&st);
  if (!up && strcmp(st.status, "restarting") == 0) { /* its monitor waits to restart it */
    request_stop(c);
    return wait_down(c, 10) ? 0 : sw_error(err, 0, "container `%s` did not stop", c->name);
  }
  if (!up)
    return 0; /* Docker: stopping a stopped container succeeds */
  request_stop(c);
  int sig = sw_signal_parse(json_string_value(json_object_get(c->config, "StopSignal")));
  if (kill(st.pid, sig > 0 ? sig : SIGTERM) < 0 && errno != ESRCH)
    return sw_error(err, errno, "signal container `%s` (pid %d)", c->name, (int)st.pid);
  if (wait_down(c, timeout))
    return 0;
  if (running(c, &st))
    kill(st.pid, SIGKILL);
  sw_container_state_clear(&st);
  if (!wait_down(c, 10))
    return sw_error(err, 0, "container `%s` did not stop after SIGKILL", c->name);
  return 0;
}

int
sw_container_remove(sw_container_t *c, bool force, int64_t *bytes, sw_error_t *err)
{
  sw_container_state_t st;
  sw_container_state_read(c, &st);
  bool owned = sw_container_owned(c);
  sw_container_state_clear(&st);
  if (owned && strcmp(st.status, "exited") != 0) {
    if (!force)
      return sw_error(err, 0,
                      "container `%s` is running: stop it first (`slipway stop %s`) or use "
                      "`slipway rm -f %s`",
                      c->name, c->name, c->name);
    request_stop(c);
    if (st.pid > 0)
      kill(st.pid, SIGKILL);
    if (!wait_down(c, 10))
      return sw_error(err, 0, "container `%s` did not stop after SIGKILL", c->name);
  }
  /* The owner writes the end, then exits: wait for it to let go, so nothing writes after. */
  for (int i = 0; i < 100 && sw_container_owned(c); i++)
    usleep(50000);
  if (sw_container_owned(c) && st.monitor_pid > 0)
    kill(st.monitor_pid, SIGKILL);
  *bytes = sw_tree_bytes(AT_FDCWD, c->dir);
  if (*bytes < 0)
    *bytes = 0;
  return sw_rm_rf(c->dir, err);
}

/* What a killed sw_container_create left: a `.new-*` dir whose lock is free (or not made yet). */
static void
sweep_unfinished(const char *cdir)
{
  _cleanup_dir_ DIR *d = opendir(cdir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strncmp(e->d_name, ".new-", 5) != 0)
      continue;
    _cleanup_free_ char *lock = xasprintf("%s/%s/lock", cdir, e->d_name);
    _cleanup_close_ int fd = open(lock, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
      continue; /* being made */
    sw_error_t err = NULL;
    if (sw_rm_rf_at(dirfd(d), e->d_name, &err) < 0)
      sw_error_release(&err);
  }
}

static bool
is_stopped(const sw_container_t *c)
{
  sw_container_state_t st;
  sw_container_state_read(c, &st);
  bool down = strcmp(st.status, "exited") == 0 || strcmp(st.status, "dead") == 0;
  sw_container_state_clear(&st);
  return down;
}

int
sw_container_prune(const char *cdir, bool only_autoremove, char ***removed, int64_t *bytes)
{
  size_t n = 0;
  sweep_unfinished(cdir);
  sw_container_t **v = sw_container_list(cdir, &n);
  int failed = 0;
  *bytes = 0;
  for (size_t i = 0; i < n; i++) {
    sw_error_t err = NULL;
    int64_t b = 0;
    if (!is_stopped(v[i]) ||
        (only_autoremove && !json_is_true(json_object_get(v[i]->config, "AutoRemove"))))
      continue;
    if (sw_container_remove(v[i], false, &b, &err) < 0) {
      sw_warn("removing container `%s`: %s", v[i]->name, err->msg);
      sw_error_release(&err);
      failed++;
      continue;
    }
    sw_strv_push(removed, v[i]->id);
    *bytes += b;
  }
  sw_container_list_free(v, n);
  return failed ? -1 : 0;
}

char **
sw_container_images_in_use(const char *cdir)
{
  size_t n = 0;
  sw_container_t **v = sw_container_list(cdir, &n);
  char **ids = xcalloc(1, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    const char *id = json_string_value(json_object_get(v[i]->config, "ImageID"));
    if (id && !is_stopped(v[i]) && !sw_strv_contains(ids, id))
      sw_strv_push(&ids, id);
  }
  sw_container_list_free(v, n);
  return ids;
}

void
sw_container_users(const char *cdir, const char *image_id, char **running, char **stopped)
{
  size_t n = 0;
  sw_container_t **v = sw_container_list(cdir, &n);
  *running = *stopped = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *id = json_string_value(json_object_get(v[i]->config, "ImageID"));
    if (id == NULL || strcmp(id, image_id) != 0)
      continue;
    char **slot = is_stopped(v[i]) ? stopped : running;
    if (*slot == NULL)
      *slot = xstrndup(v[i]->id, 12);
  }
  sw_container_list_free(v, n);
}
