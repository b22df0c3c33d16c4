/* slipway sandbox: the container's stdio never holds an fd of the caller's terminal.
 *
 * A process holding a terminal fd can push keystrokes into its input queue (TIOCSTI), i.e.
 * type commands into the user's shell. So:
 * - without `tty`, each of the caller's stdio fds that is a terminal is replaced by a pipe,
 *   and the caller relays bytes between the two (files and pipes are passed as they are);
 * - with `tty`, the monitor opens a new pty in the container's own devpts, sends its master to
 *   the caller (SCM_RIGHTS) and gives the slave to pid 1 as stdin/out/err and controlling
 *   terminal; the caller relays the master to its stdout and, when stdin is attached, its
 *   stdin to the master, in raw mode (restored at the end), and passes on window size changes
 *   (SIGWINCH), as `docker run -t` does.
 * The relay runs in sw_sandbox_run()'s loop (sandbox.c), beside the monitor's messages. */
#include "sandbox-private.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>

/* ---- the monitor and pid 1 ---- */

int
sb_pty_open(int sock, int pts, const struct winsize *ws, unsigned int *index)
{
  int unlock = 0;
  int master = openat(pts, "ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);

  if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, index) < 0)
    sb_fail(sock, 1, errno, "sandbox: open a pty in the container's /dev/pts");
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    sb_fail(sock, 1, errno, "sandbox: open the pty's slave");
  if (ws)
    ioctl(master, TIOCSWINSZ, ws);
  sb_send_fd(sock, SB_MSG_PTY, master);
  close(master);
  return slave;
}

void
sb_pty_attach(int sock, int slave, uid_t uid)
{
  if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
    sb_fail(sock, 1, errno, "sandbox: make the pty the controlling terminal");
  /* The user owns its terminal, as after a login (mode stays 0620, group tty). */
  if (fchown(slave, uid, (gid_t)-1) < 0)
    sw_debug("sandbox: chown the pty: %s", strerrorname_np(errno)); /* no strerror after fork */
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0)
      sb_fail(sock, 1, errno, "sandbox: set up fd %d", i);
}

/* ---- the caller ---- */

static int
caller_fd(int fd, int std)
{
  return fd == SW_STDIO_INHERIT ? std : fd;
}

static void
nonblock(int fd)
{
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void
add_stream(sb_stdio_t *io, int from, int to, bool to_container)
{
  sb_stream_t *s = &io->s[io->n++];
  *s = (sb_stream_t){.from = from, .to = to, .to_container = to_container};
}

/* Replace the terminal among the caller's stdio by a pipe: the container gets one end (in
 * *container_fd), the relay the other. */
static int
pipe_for(sb_stdio_t *io, int *container_fd, int std, sw_error_t *err)
{
  int fd = caller_fd(*container_fd, std), p[2];

  if (fd < 0 || !isatty(fd))
    return 0;
  if (pipe2(p, O_CLOEXEC) < 0)
    return sw_error(err, errno, "pipe");
  bool in = std == STDIN_FILENO;
  io->container_end[std] = p[in ? 0 : 1];
  io->pipe_end[std] = p[in ? 1 : 0];
  nonblock(io->pipe_end[std]);
  add_stream(io, in ? fd : p[0], in ? p[1] : fd, in);
  *container_fd = p[in ? 0 : 1];
  return 0;
}

int
sb_stdio_prepare(sb_stdio_t *io, sw_sandbox_opts_t *oc, sw_error_t *err)
{
  *io = (sb_stdio_t){.master = -1, .in = -1, .out = -1};
  for (int i = 0; i < 3; i++)
    io->container_end[i] = io->pipe_end[i] = -1;
  if (oc->tty) {
    io->in = oc->stdin_fd == SW_STDIO_NULL ? -1 : caller_fd(oc->stdin_fd, STDIN_FILENO);
    io->out = caller_fd(oc->stdout_fd, STDOUT_FILENO);
    int term = io->in >= 0 && isatty(io->in) ? io->in : io->out;
    io->have_ws = term >= 0 && ioctl(term, TIOCGWINSZ, &io->ws) == 0;
    oc->stdin_fd = oc->stdout_fd = oc->stderr_fd = SW_STDIO_NULL;
    return 0;
  }
  if (pipe_for(io, &oc->stdin_fd, STDIN_FILENO, err) < 0)
    return -1;
  if (oc->on_output == NULL && (pipe_for(io, &oc->stdout_fd, STDOUT_FILENO, err) < 0 ||
                                pipe_for(io, &oc->stderr_fd, STDERR_FILENO, err) < 0))
    return -1;
  return 0;
}

static volatile sig_atomic_t winch;

static void
winch_handler(int sig)
{
  (void)sig;
  winch = 1;
}

void
sb_stdio_started(sb_stdio_t *io)
{
  for (int i = 0; i < 3; i++)
    if (io->container_end[i] >= 0) {
      close(io->container_end[i]);
      io->container_end[i] = -1;
    }
  /* A closed reader (the container's stdin, or `run -t … | head`) is EPIPE for the relay,
   * not a signal that would kill slipway with the caller's terminal left raw. */
  if (io->n > 0 || io->out >= 0) {
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &io->old_pipe);
    io->pipe_ignored = true;
  }
  if (io->in >= 0 && isatty(io->in) && tcgetattr(io->in, &io->saved) == 0) {
    struct termios raw = io->saved;
    cfmakeraw(&raw);
    io->raw = tcsetattr(io->in, TCSANOW, &raw) == 0;
  }
}

void
sb_stdio_set_pty(sb_stdio_t *io, int master)
{
  if (io->master >= 0 || io->n + 2 > SW_ARRAY_SIZE(io->s)) {
    close(master);
    return;
  }
  io->master = master;
  nonblock(master);
  if (io->in >= 0)
    add_stream(io, io->in, master, true);
  add_stream(io, master, io->out, false);
  /* SIGWINCH is blocked but while the relay waits in ppoll(), so none is missed. */
  struct sigaction sa = {.sa_handler = winch_handler, .sa_flags = SA_RESTART};
  sigset_t block;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, &io->old_winch);
  sigemptyset(&block);
  sigaddset(&block, SIGWINCH);
  pthread_sigmask(SIG_BLOCK, &block, &io->old_mask);
  io->poll_mask = io->old_mask;
  sigdelset(&io->poll_mask, SIGWINCH);
  io->winch_set = true;
  winch = 1; /* the size may have changed since the monitor set it */
}

const sigset_t *
sb_stdio_poll_mask(const sb_stdio_t *io)
{
  return io->winch_set ? &io->poll_mask : NULL;
}

bool
sb_stdio_busy(const sb_stdio_t *io)
{
  for (size_t i = 0; i < io->n; i++)
    if (!io->s[i].to_container && !(io->s[i].eof && io->s[i].len == 0))
      return true;
  return false;
}

size_t
sb_stdio_pollfds(sb_stdio_t *io, struct pollfd *p)
{
  if (winch && io->master >= 0) {
    struct winsize ws;
    int term = io->in >= 0 && isatty(io->in) ? io->in : io->out;
    winch = 0;
    if (ioctl(term, TIOCGWINSZ, &ws) == 0)
      ioctl(io->master, TIOCSWINSZ, &ws);
  }
  for (size_t i = 0; i < io->n; i++) {
    sb_stream_t *s = &io->s[i];
    p[i] = (struct pollfd){.fd = -1};
    if (s->len > 0)
      p[i] = (struct pollfd){.fd = s->to, .events = POLLOUT};
    else if (!s->eof)
      p[i] = (struct pollfd){.fd = s->from, .events = POLLIN};
  }
  return io->n;
}

static void
stream_eof(sb_stdio_t *io, sb_stream_t *s)
{
  s->eof = true;
  s->len = 0;
  /* The container's stdin pipe: it reads end-of-file. A pty keeps its input open. */
  if (s->to_container && s->to != io->master)
    for (int i = 0; i < 3; i++)
      if (io->pipe_end[i] == s->to) {
        close(s->to);
        io->pipe_end[i] = -1;
      }
}

void
sb_stdio_handle(sb_stdio_t *io, const struct pollfd *p)
{
  for (size_t i = 0; i < io->n; i++) {
    sb_stream_t *s = &io->s[i];
    if (p[i].fd < 0 || p[i].revents == 0)
      continue;
    if (s->len == 0) {
      ssize_t n = read(s->from, s->buf, sizeof(s->buf));
      if (n > 0) {
        s->off = 0;
        s->len = s->discard ? 0 : (size_t)n;
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        stream_eof(io, s); /* a pty master reads EIO once the container's side is closed */
      }
      continue;
    }
    ssize_t n = write(s->to, s->buf + s->off, s->len);
    if (n > 0) {
      s->off += (size_t)n;
      s->len -= (size_t)n;
    } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
      /* Nobody reads any more: the caller's input stops; the container's output is still
       * drained (and dropped), so that it never blocks on a full pipe or pty. */
      if (s->to_container) {
        stream_eof(io, s);
      } else {
        s->discard = true;
        s->len = 0;
      }
    }
  }
}

void
sb_stdio_finish(sb_stdio_t *io)
{
  if (io->raw)
    tcsetattr(io->in, TCSADRAIN, &io->saved);
  io->raw = false;
  if (io->winch_set) {
    sigaction(SIGWINCH, &io->old_winch, NULL);
    pthread_sigmask(SIG_SETMASK, &io->old_mask, NULL);
    io->winch_set = false;
  }
  if (io->pipe_ignored)
    sigaction(SIGPIPE, &io->old_pipe, NULL);
  io->pipe_ignored = false;
  for (int i = 0; i < 3; i++) {
    if (io->container_end[i] >= 0)
      close(io->container_end[i]);
    if (io->pipe_end[i] >= 0)
      close(io->pipe_end[i]);
    io->container_end[i] = io->pipe_end[i] = -1;
  }
  if (io->master >= 0)
    close(io->master);
  io->master = -1;
  io->n = 0;
}
