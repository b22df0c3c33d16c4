/* slipway sandbox: the caller side (fork, messages, output, signals, status, stub cleanup) and
 * the monitor process (namespaces, mounts, pivot_root). See sandbox.h for the contract and
 * sandbox-private.h for the pieces shared with sandbox-mount.c. */
#include "sandbox-private.h"
#include "userns.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- messages from the monitor and pid 1 to the caller ---- */

void
sb_send(int sock, int type, int value, const char *fmt, ...)
{
  struct sb_msg m = {.type = type, .value = value};
  va_list ap;

  va_start(ap, fmt);
  int n = vsnprintf(m.text, sizeof(m.text), fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof(m.text))
    n = sizeof(m.text) - 1;
  while (send(sock, &m, offsetof(struct sb_msg, text) + (size_t)n + 1, MSG_NOSIGNAL) < 0 &&
         errno == EINTR)
    ;
}

int sb_exec_fd = -1;

void
sb_fail(int sock, int code, int errnum, const char *fmt, ...)
{
  struct sb_msg m = {.type = SB_MSG_ERROR, .value = errnum, .code = code};
  if (sb_exec_fd >= 0 && write(sb_exec_fd, "!", 1) < 0) {
    /* the monitor then sees a plain EOF: it is reported by the error message anyway */
  }
  va_list ap;

  va_start(ap, fmt);
  int n = vsnprintf(m.text, sizeof(m.text), fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof(m.text))
    n = sizeof(m.text) - 1;
  send(sock, &m, offsetof(struct sb_msg, text) + (size_t)n + 1, MSG_NOSIGNAL);
  _exit(code ? code : 1);
}

void
sb_send_fd(int sock, int type, int fd)
{
  struct sb_msg m = {.type = type};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } c;
  struct iovec iov = {.iov_base = &m, .iov_len = offsetof(struct sb_msg, text) + 1};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

  memset(c.buf, 0, sizeof(c.buf));
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
    ;
}

/* ---- running sandboxes, for sw_sandbox_kill_all() and signal forwarding ---- */

#define MAX_RUNNING 64
static _Atomic pid_t running[MAX_RUNNING];

static void
running_add(pid_t pid)
{
  for (size_t i = 0; i < MAX_RUNNING; i++) {
    pid_t expected = 0;
    if (atomic_compare_exchange_strong(&running[i], &expected, pid))
      return;
  }
}

static void
running_del(pid_t pid)
{
  for (size_t i = 0; i < MAX_RUNNING; i++) {
    pid_t expected = pid;
    if (atomic_compare_exchange_strong(&running[i], &expected, 0))
      return;
  }
}

void
sw_sandbox_kill_all(void)
{
  for (size_t i = 0; i < MAX_RUNNING; i++) {
    pid_t p = atomic_load(&running[i]);
    if (p > 0)
      kill(p, SIGKILL);
  }
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static volatile sig_atomic_t forward_count;

static void
forward_handler(int sig)
{
  int saved = errno;
  /* Docker's CLI: the third interrupt forces the container down. Say so each time: a PID 1
   * that ignores SIGINT (a shell, most servers without a handler) otherwise looks like a
   * slipway that ignores Ctrl-C. Only write(2) of constant strings here. */
  static const char *const said[] = {
      "slipway: signal passed to the container; its process may ignore it: 2 more Ctrl-C "
      "(SIGINT/SIGTERM) kill it\n",
      "slipway: signal passed to the container again; one more kills it (SIGKILL)\n",
      "slipway: got 3 SIGTERM/SIGINTs, killing the container\n"};
  bool counted = sig == SIGINT || sig == SIGTERM;
  int n = counted ? ++forward_count : 0;
  bool force = n >= 3;
  for (size_t i = 0; i < MAX_RUNNING; i++) {
    pid_t p = atomic_load(&running[i]);
    if (p > 0)
      kill(p, force ? SIGKILL : sig);
  }
  if (counted && n <= 3 && write(STDERR_FILENO, said[n - 1], strlen(said[n - 1])) < 0) {
    /* nothing to do: stderr is gone */
  }
  errno = saved;
}

void
sw_sandbox_opts_init(sw_sandbox_opts_t *opts)
{
  memset(opts, 0, sizeof(*opts));
  opts->stdin_fd = SW_STDIO_INHERIT;
  opts->stdout_fd = SW_STDIO_INHERIT;
  opts->stderr_fd = SW_STDIO_INHERIT;
  opts->caps = SW_CAPS_DEFAULT;
}

int
sw_sandbox_status_code(const sw_sandbox_status_t *st)
{
  return st->signal ? 128 + st->signal : st->exit_code;
}

/* ---- checks before forking ---- */

static int
check_opts(const sw_sandbox_opts_t *o, sw_error_t *err)
{
  if (o->argv == NULL || o->argv[0] == NULL || o->argv[0][0] == '\0')
    return sw_error(err, 0, "sandbox: no command to run");
  if ((o->upperdir == NULL) != (o->workdir == NULL))
    return sw_error(err, 0, "sandbox: upperdir and workdir go together");
  if (o->cwd && o->cwd[0] != '/')
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "working directory `%s` is not absolute: use a path starting with `/`",
                         o->cwd);
  for (char *const *l = o->lowerdirs; l && *l; l++)
    if ((*l)[0] != '/')
      return sw_error(err, 0, "sandbox: layer dir `%s` is not absolute", *l);
  for (size_t i = 0; i < o->n_mounts; i++) {
    const sw_mount_t *m = &o->mounts[i];
    if (m->target == NULL || m->target[0] != '/')
      return sw_error_code(err, SW_EXIT_USAGE, 0, "mount target `%s` is not absolute",
                           m->target ? m->target : "");
    if (m->kind == SW_MOUNT_BIND && (m->source == NULL || m->source[0] != '/'))
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "bind mount source `%s` for `%s` is not an absolute host path",
                           m->source ? m->source : "", m->target);
    if (m->kind == SW_MOUNT_BIND && access(m->source, F_OK) < 0)
      return sw_error_code(err, SW_EXIT_USAGE, errno, "bind mount source `%s`", m->source);
    if (m->kind == SW_MOUNT_LAYERS && (m->layers == NULL || m->layers[0] == NULL))
      return sw_error(err, 0, "sandbox: mount at `%s` has no layers", m->target);
  }
  if (o->n_ports > 0 && o->network != SW_NET_PRIVATE)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "publishing ports (-p) needs the container's own network, not "
                         "--network %s",
                         o->network == SW_NET_NONE ? "none" : "host");
  for (size_t i = 0; i < o->n_ports; i++)
    if (o->ports[i].host_port == 0 || o->ports[i].container_port == 0)
      return sw_error(err, 0, "sandbox: published port %zu has no host port", i);
  /* The root is mounted `volatile` (no syncs to the upper fs: the engine commits a layer
   * itself); overlayfs then refuses a work dir that a previous mount left marked dirty. */
  if (o->workdir) {
    _cleanup_free_ char *w = xasprintf("%s/work", o->workdir);
    if (sw_rm_rf(w, err) < 0)
      return -1;
  }
  if (mkdir(SB_RUNDIR, 0700) < 0 && errno != EEXIST)
    return sw_error(err, errno, "mkdir `%s`", SB_RUNDIR);
  return 0;
}

/* ---- the caller's side ---- */

struct run_state {
  const sw_sandbox_opts_t *o;
  int sock;
  int out; /* read end of the output pipe, or -1 */
  sw_error_t child_err;
  char **stubs;
  bool have_exit;
  int wstatus;
  sb_stdio_t io;
};

/* A message, and the fd it may carry (the pty master). */
static ssize_t
recv_message(int sock, struct sb_msg *m, int *fd)
{
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } c;
  struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};

  *fd = -1;
  ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(fd, CMSG_DATA(cm), sizeof(int));
  return n;
}

static void
read_message(struct run_state *rs, bool *sock_open)
{
  struct sb_msg m;
  int fd;
  ssize_t n = recv_message(rs->sock, &m, &fd);

  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0) {
    *sock_open = false;
    return;
  }
  m.text[sizeof(m.text) - 1] = '\0';
  if (m.type == SB_MSG_PTY && fd >= 0)
    sb_stdio_set_pty(&rs->io, steal_fd(&fd));
  else if (m.type == SB_MSG_ERROR && rs->child_err == NULL)
    sw_error_code(&rs->child_err, m.code ? m.code : SW_EXIT_FAILURE, m.value, "%s", m.text);
  else if (m.type == SB_MSG_STUB)
    sw_strv_push(&rs->stubs, m.text);
  else if (m.type == SB_MSG_PID && rs->o->on_start)
    rs->o->on_start(rs->o->output_ctx, (pid_t)m.value);
  else if (m.type == SB_MSG_EXIT) {
    rs->have_exit = true;
    rs->wstatus = m.value;
  }
  if (fd >= 0)
    close(fd);
}

/* Until the monitor is gone and all output is relayed: its messages, the output callback's
 * pipe, and the stdio relay (sandbox-stdio.c). */
static void
pump(struct run_state *rs, const sw_sandbox_opts_t *o)
{
  bool sock_open = true, out_open = rs->out >= 0;
  char buf[65536];

  while (sock_open || out_open || sb_stdio_busy(&rs->io)) {
    struct pollfd p[2 + SW_ARRAY_SIZE(rs->io.s)] = {
        {.fd = sock_open ? rs->sock : -1, .events = POLLIN},
        {.fd = out_open ? rs->out : -1, .events = POLLIN}};
    size_t n = 2 + sb_stdio_pollfds(&rs->io, p + 2);
    if (ppoll(p, n, NULL, sb_stdio_poll_mask(&rs->io)) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p[0].revents)
      read_message(rs, &sock_open);
    if (p[1].revents) {
      ssize_t r = read(rs->out, buf, sizeof(buf));
      if (r > 0)
        o->on_output(o->output_ctx, buf, (size_t)r);
      else if (r == 0 || errno != EINTR)
        out_open = false;
    }
    sb_stdio_handle(&rs->io, p + 2);
  }
}

/* Remove mount points that had to be created in the upper dir, deepest first, if unchanged. */
static void
remove_stubs(const char *upperdir, char **stubs)
{
  for (size_t i = sw_strv_len(stubs); upperdir && i-- > 0;) {
    _cleanup_free_ char *p = xasprintf("%s/%s", upperdir, stubs[i]);
    struct stat sb;
    if (lstat(p, &sb) < 0)
      continue;
    if (S_ISDIR(sb.st_mode))
      rmdir(p); /* fails, as it should, if the process put something there */
    else if (S_ISREG(sb.st_mode) && sb.st_size == 0)
      unlink(p);
  }
}

static void
wait_status(int wstatus, sw_sandbox_status_t *st)
{
  if (WIFEXITED(wstatus)) {
    st->exit_code = WEXITSTATUS(wstatus);
    st->signal = 0;
  } else {
    st->exit_code = -1;
    st->signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : SIGKILL;
  }
}

static int
spawn(const sw_sandbox_opts_t *o, const sb_stdio_t *io, int sv[2], int outp[2], pid_t *out_pid,
      sw_error_t *err)
{
  pid_t parent = getpid();
  pid_t pid = fork();

  if (pid < 0)
    return sw_error(err, errno, "fork");
  if (pid == 0) {
    close(sv[0]);
    if (outp[0] >= 0)
      close(outp[0]);
    sb_monitor(o, sv[1], outp[1], parent, o->tty && io->have_ws ? &io->ws : NULL);
    _exit(1);
  }
  *out_pid = pid;
  return 0;
}

int
sw_sandbox_run(const sw_sandbox_opts_t *opts, sw_sandbox_status_t *st, sw_error_t *err)
{
  int sv[2], outp[2] = {-1, -1};
  struct sigaction old[SW_ARRAY_SIZE(forwarded)];
  sw_sandbox_opts_t copy = *opts, *o = &copy; /* with pipes in place of a terminal */
  struct run_state rs = {.o = o, .out = -1};
  pid_t pid;
  int wstatus = 0;

  if (sw_userns_need("a sandbox", err) < 0)
    return -1;

  if (check_opts(o, err) < 0 || sb_seccomp_prepare(o, err) < 0)
    return -1;
  if (sb_stdio_prepare(&rs.io, o, err) < 0) {
    sb_stdio_finish(&rs.io);
    return -1;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    sb_stdio_finish(&rs.io);
    return sw_error(err, errno, "socketpair");
  }
  if (o->on_output && pipe2(outp, O_CLOEXEC) < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    sb_stdio_finish(&rs.io);
    return sw_error(err, e, "pipe");
  }
  if (o->forward_signals) {
    struct sigaction sa = {.sa_handler = forward_handler, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    forward_count = 0;
    for (size_t i = 0; i < SW_ARRAY_SIZE(forwarded); i++)
      sigaction(forwarded[i], &sa, &old[i]);
  }
  int r = spawn(o, &rs.io, sv, outp, &pid, err);
  close(sv[1]);
  if (outp[1] >= 0)
    close(outp[1]);
  rs.sock = sv[0];
  rs.out = outp[0];
  if (r == 0) {
    running_add(pid);
    sb_stdio_started(&rs.io);
    pump(&rs, o);
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
      ;
    running_del(pid);
  }
  sb_stdio_finish(&rs.io);
  if (o->forward_signals)
    for (size_t i = 0; i < SW_ARRAY_SIZE(forwarded); i++)
      sigaction(forwarded[i], &old[i], NULL);
  close(sv[0]);
  if (outp[0] >= 0)
    close(outp[0]);
  remove_stubs(o->upperdir, rs.stubs);
  sw_strv_free(rs.stubs);
  if (r < 0)
    return -1;
  if (rs.child_err) {
    *err = rs.child_err;
    return -1;
  }
  /* Without the monitor's report, the monitor itself was killed (kill_all, 3rd Ctrl-C). */
  wait_status(rs.have_exit ? rs.wstatus : wstatus, st);
  if (!rs.have_exit && st->signal == 0)
    return sw_error(err, 0, "sandbox: the monitor process exited with status %d", st->exit_code);
  return 0;
}
