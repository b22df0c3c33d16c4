/* slipway sandbox internals shared by sandbox.c (caller side) and sandbox-mount.c (the monitor
 * and pid 1). Not for other modules. */
#ifndef SW_SANDBOX_PRIVATE_H
#define SW_SANDBOX_PRIVATE_H

#include "sandbox.h"
#include "util.h"

#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <termios.h>

/* A host directory used only as a mount point inside each sandbox's private mount namespace:
 * the monitor mounts a tmpfs on it (stub layer + root mount point), invisible to the host. */
#define SB_RUNDIR "/run/slipway"

enum { SB_MSG_ERROR = 1, SB_MSG_STUB, SB_MSG_EXIT, SB_MSG_PTY, SB_MSG_PID };

struct sb_msg {
  int type;
  int value; /* ERROR: errno; EXIT: wait status; PID: pid 1's host pid */
  int code;  /* ERROR: exit code for the CLI */
  char text[4096];
};

/* Send an fd (SCM_RIGHTS) with an empty message of `type`: the pty master (SB_MSG_PTY). */
void sb_send_fd(int sock, int type, int fd);

/* Send a message (text formatted); sb_fail() sends an error and _exit()s. */
void sb_send(int sock, int type, int value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sb_fail(int sock, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
/* In pid 1 before its exec: the write end of a close-on-exec pipe, on which sb_fail() writes a
 * byte first, so the monitor tells an exec (end of file, nothing read) from a failure. */
extern int sb_exec_fd;

/* The monitor: runs in the forked child, never returns. ws: the caller's window size for a
 * `tty` sandbox's pty, or NULL. */
void sb_monitor(const sw_sandbox_opts_t *o, int sock, int out_fd, pid_t parent,
                const struct winsize *ws) __attribute__((noreturn));

/* sandbox-security.c, called by pid 1 in this order: masked and read-only /proc and /sys
 * paths (after /proc is mounted); bounding/ambient sets, no_new_privs and seccomp (before the
 * switch to the user: they need privileges the user lacks); the permitted, effective and
 * inheritable sets (after it, just before exec). Each sends an error and exits on failure. */
void sb_security_mounts(const sw_sandbox_opts_t *o, int sock);
void sb_security_restrict(const sw_sandbox_opts_t *o, int sock);
void sb_security_caps(const sw_sandbox_opts_t *o, int sock);

/* sandbox-net.c, called by the monitor. sb_net_fork() before it leaves the host's namespaces
 * (SW_NET_PRIVATE: forks the helper that will exec slirp4netns, in the host's namespaces);
 * sb_net_setup() right after unshare(), while the host's SB_RUNDIR is still visible (`lo` up;
 * SW_NET_PRIVATE: start slirp4netns on the new namespace, wait until `eth0` is configured,
 * publish the ports); sb_net_etc() writes the container's resolv.conf and hosts into `dir`
 * and returns true when it did (SW_NET_PRIVATE; else the host's are bound); sb_net_stop()
 * kills and reaps slirp4netns once pid 1 has exited, so nothing outlives the sandbox. The
 * helper also dies with the monitor (PR_SET_PDEATHSIG, and slirp4netns's --exit-fd). */
struct sb_net {
  pid_t helper;
  int go;    /* write end: one byte tells the helper to exec slirp4netns */
  int ready; /* read end of slirp4netns's --ready-fd */
  int exit;  /* write end of slirp4netns's --exit-fd, held until the monitor exits */
  char *api; /* slirp4netns's API socket (only with ports), removed once they are published */
};
void sb_net_fork(struct sb_net *n, const sw_sandbox_opts_t *o, int sock);
void sb_net_setup(struct sb_net *n, const sw_sandbox_opts_t *o, int sock);
bool sb_net_etc(const sw_sandbox_opts_t *o, const char *dir, int sock);
void sb_net_stop(struct sb_net *n);

/* The container's /etc/resolv.conf and /etc/hosts on SW_NET_PRIVATE (pure; for unit tests):
 * the host's resolv.conf with slirp4netns's 10.0.2.3 first and the loopback and IPv6
 * nameservers dropped (unreachable from the namespace), search and options kept; hosts with
 * localhost and the container's own name on 10.0.2.100. */
char *sb_net_resolv_conf(const char *host_text);
char *sb_net_hosts(const char *hostname);

/* sandbox-limits.c: o->rlimits, set by pid 1 before the switch to the user (raising a hard
 * limit needs root). */
void sb_apply_rlimits(const sw_sandbox_opts_t *o, int sock);

/* sandbox-seccomp.c: compile the filter for o->caps in the caller, before fork (cached per
 * capability set); install it in pid 1 (called by sb_security_restrict). */
int sb_seccomp_prepare(const sw_sandbox_opts_t *o, sw_error_t *err);
void sb_seccomp_load(const sw_sandbox_opts_t *o, int sock);

/* sandbox-stdio.c: the container's stdio, so that it never holds the caller's terminal. */

/* Monitor: open a new pty on the container's devpts (`pts`: its mount), with the caller's
 * window size, send the master to the caller and return the slave (*index: N of pts/N).
 * pid 1: make the slave its controlling terminal (new session) and stdin/out/err, owned by
 * `uid`. */
int sb_pty_open(int sock, int pts, const struct winsize *ws, unsigned int *index);
void sb_pty_attach(int sock, int slave, uid_t uid);

/* Caller: one direction of the relay. */
typedef struct {
  int from, to;
  bool to_container;
  bool eof;
  bool discard; /* the reader is gone: read and drop */
  size_t off, len;
  char buf[16384];
} sb_stream_t;

typedef struct {
  sb_stream_t s[4];
  size_t n;
  int in, out;          /* tty: the caller's fds relayed to/from the master (in: -1 = none) */
  int master;           /* tty: the pty master, once the monitor sent it */
  int container_end[3]; /* pipes given to the container in place of a terminal */
  int pipe_end[3];      /* their ends that the relay keeps */
  struct winsize ws;
  bool have_ws;
  bool raw, winch_set, pipe_ignored;
  struct termios saved;
  struct sigaction old_winch, old_pipe;
  sigset_t old_mask, poll_mask;
} sb_stdio_t;

/* Before fork: replace the caller's terminal fds in `oc` (a copy of the options) by pipes, or
 * for `tty` note the fds to relay and the window size. */
int sb_stdio_prepare(sb_stdio_t *io, sw_sandbox_opts_t *oc, sw_error_t *err);
/* After fork: close the container's ends; raw mode for an attached tty. */
void sb_stdio_started(sb_stdio_t *io);
/* The pty master arrived (SB_MSG_PTY): relay it. */
void sb_stdio_set_pty(sb_stdio_t *io, int master);
/* The relay's share of the poll loop: fill up to SW_ARRAY_SIZE(io->s) entries, then handle
 * them; the mask to pass to ppoll() (NULL: the current one). */
size_t sb_stdio_pollfds(sb_stdio_t *io, struct pollfd *p);
void sb_stdio_handle(sb_stdio_t *io, const struct pollfd *p);
const sigset_t *sb_stdio_poll_mask(const sb_stdio_t *io);
/* Output from the container is still to be relayed. */
bool sb_stdio_busy(const sb_stdio_t *io);
/* Restore the terminal and signals, close what is left. */
void sb_stdio_finish(sb_stdio_t *io);

#endif
