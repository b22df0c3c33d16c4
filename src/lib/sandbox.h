/* slipway sandbox: run one process in a container. Used by RUN build steps (solve.c) and by
 * `slipway run`.
 *
 * What the process gets: new mount, pid, ipc and uts namespaces (and a network namespace of its
 * own unless network is HOST: `lo` up, plus slirp4netns's `eth0` for PRIVATE); an overlayfs root
 * stacked from snapshot dirs with a fresh upper dir (or a read-only root when there is no upper
 * dir); /proc, a minimal /dev (null, zero, full, random, urandom, tty, pts, ptmx, shm as tmpfs,
 * fd/stdin/stdout/stderr links), a read-only /sys, the host's /etc/resolv.conf and /etc/hosts
 * (read-only binds; PRIVATE: its own, writable), extra bind/tmpfs mounts, pivot_root,
 * user/groups from the rootfs's /etc/passwd and /etc/group, env, cwd.
 * Every filesystem it can write or that comes from an image is nodev: it can open only the
 * default devices above, whatever it mknods or its image ships.
 *
 * The upper dir stays a pure overlay diff: mounted with redirect_dir=off, metacopy=off,
 * index=off, xino=off, so deletions are classic whiteouts (char 0/0) and opaque dirs carry
 * trusted.overlay.opaque. Mount points the container needs but the image lacks (/proc, /dev,
 * /etc/resolv.conf, cwd, mount targets) come from a bottom-most private tmpfs layer, so they are
 * never written to the upper dir; in the rare case one must be created in the merged tree (a
 * path under an image symlink), it is removed from the upper dir after the process exits if it
 * is still empty.
 *
 * Process tree: caller ─ monitor (outside the pid namespace; forwards signals, reaps) ─ pid 1
 * of the namespace = the user's process (Docker semantics: no init). When pid 1 exits the kernel
 * kills the rest of the namespace. The monitor dies with the thread that called
 * sw_sandbox_run() (PR_SET_PDEATHSIG), and pid 1 and slirp4netns (PRIVATE, the monitor's other
 * child) with the monitor: a killed slipway leaves nothing running. Safe to call from several
 * threads at once (the child is made by fork()).
 */
#ifndef SW_SANDBOX_H
#define SW_SANDBOX_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
  SW_NET_HOST = 0, /* share the host's network namespace (Docker's build default) */
  SW_NET_NONE,     /* a new network namespace with only `lo`, up */
  SW_NET_PRIVATE,  /* a new network namespace with `lo` and `eth0` (10.0.2.100/24), whose traffic
                      slirp4netns NATs into the host's network (sandbox-net.c): the host's
                      loopback is out of reach, `ports` are published, DNS goes through
                      slirp4netns's forwarder at 10.0.2.3 (`slipway run`'s default) */
} sw_net_t;

/* A port published from the host into an SW_NET_PRIVATE sandbox (`-p`). */
typedef struct {
  bool udp;
  char host_ip[16];        /* IPv4, "0.0.0.0" = every address */
  uint16_t host_port;      /* 0 = any free port (sw_port_reserve picks one) */
  uint16_t container_port; /* reached at the container's 10.0.2.100 */
} sw_port_t;

/* A resource limit (setrlimit) of the process: `--ulimit nofile=1024:2048`. */
typedef struct {
  int resource; /* RLIMIT_* */
  uint64_t soft, hard;
} sw_rlimit_t;

/* Parse Docker's NAME=SOFT[:HARD] (-1 = unlimited). */
int sw_rlimit_parse(const char *spec, sw_rlimit_t *out, sw_error_t *err);

typedef enum {
  SW_MOUNT_BIND = 0, /* bind `source` (a host path: file or dir, e.g. a cache dir, a secret file) */
  SW_MOUNT_TMPFS,    /* a fresh tmpfs (`size`, `mode`) */
  SW_MOUNT_LAYERS,   /* the merged view of `layers` (snapshot dirs, top-most first), at subpath
                        `source` (NULL = "/"): `RUN --mount=type=bind,from=STAGE`. With
                        readonly=false, writes go to a throw-away tmpfs upper. */
} sw_mount_kind_t;

typedef struct {
  sw_mount_kind_t kind;
  const char *source; /* BIND: absolute host path; LAYERS: path inside the layers */
  const char *target; /* absolute path in the container; created (as a stub) if missing */
  bool readonly;
  uint64_t size;       /* TMPFS: bytes, 0 = the kernel default (half of RAM) */
  mode_t mode;         /* TMPFS: mode of its root, 0 = 01777 */
  char *const *layers; /* LAYERS: NULL-terminated, top-most first */
} sw_mount_t;

/* Values for the stdio fields. */
#define SW_STDIO_INHERIT (-1) /* the caller's fd 0/1/2 */
#define SW_STDIO_NULL    (-2) /* /dev/null */

typedef struct {
  /* The root filesystem. lowerdirs: absolute snapshot dirs, top-most first, NULL-terminated;
   * may be NULL or empty (FROM scratch). Any number: the new mount API passes them one by one.
   * upperdir + workdir: on the same filesystem, workdir empty; upperdir becomes the step's
   * layer. Both NULL: the root is read-only. */
  char *const *lowerdirs;
  const char *upperdir;
  const char *workdir;

  /* The process. argv[0] is looked up in the container's PATH (from env, else Docker's default
   * PATH). env: "K=V" strings; PATH and HOME are added when missing (HOME from /etc/passwd),
   * HOSTNAME too. cwd: absolute, NULL = "/", created if missing (from the bottom stub layer,
   * so it is in the layer only if the process writes into it). user: "", NULL (root), "name",
   * "uid", "uid:gid", "name:group", "uid:group"...; resolved in the container's /etc/passwd and
   * /etc/group; supplementary groups from /etc/group when no group is given (as runc does). */
  char *const *argv;
  char *const *env;
  const char *cwd;
  const char *user;

  sw_net_t network;
  const char *hostname; /* NULL = "slipway" */
  /* SW_NET_PRIVATE only: ports to publish, each with its host port set (sw_port_reserve). */
  const sw_port_t *ports;
  size_t n_ports;

  const sw_mount_t *mounts; /* applied in order, after /proc, /dev, /sys and /etc binds */
  size_t n_mounts;

  /* fds to become the process's 0, 1, 2 (dup'ed; the caller keeps its own), or SW_STDIO_*.
   * A zero-initialised struct means fd 0 for all three: set them explicitly. Ignored for
   * stdout/stderr when on_output is set. */
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;

  /* If set, stdout and stderr go to one pipe and sw_sandbox_run() calls this with each chunk
   * as it arrives (from the calling thread), so the engine can stream and keep the tail of a
   * step's output without a thread of its own. */
  void (*on_output)(void *ctx, const char *data, size_t len);
  void *output_ctx;
  /* If set, called (from the calling thread, with output_ctx) once pid 1 has exec'ed the
   * command (never if that failed), with its pid in the caller's pid namespace: what `slipway
   * stop`, `kill` and `exec` address. */
  void (*on_start)(void *ctx, pid_t pid);

  /* Forward SIGINT, SIGTERM, SIGHUP and SIGQUIT received by slipway to the process (`slipway
   * run`). The handlers are installed for the duration of the call and restored after; a third
   * SIGINT/SIGTERM kills the container (pid 1 ignores signals it has no handler for, as in
   * Docker). */
  bool forward_signals;
  /* The process never holds an fd of the caller's terminal (sandbox-stdio.c): it gets a new
   * session, and a stdio fd that is a terminal is replaced by a pipe that sw_sandbox_run()
   * relays. With `tty` (`run -t`), its stdin/out/err is instead a new pty of its own devpts,
   * its controlling terminal; the caller relays the master to stdout_fd and, unless stdin_fd
   * is SW_STDIO_NULL, stdin_fd to the master (a terminal stdin is put in raw mode meanwhile),
   * and passes on window size changes (SIGWINCH). stderr_fd is then unused. */
  bool tty;

  /* Security, as `docker run` applies it by default (sandbox-security.c). caps: what a root
   * process keeps in its bounding, permitted and effective sets (a non-root user gets it as
   * the bounding set only; inheritable and ambient are empty), SW_CAPS_DEFAULT after
   * sw_sandbox_opts_init(). privileged: every capability, no masked or read-only /proc and
   * /sys paths, no seccomp, /sys read-write. no_new_privs: PR_SET_NO_NEW_PRIVS (off, as in
   * Docker: setuid binaries work). seccomp_unconfined: no seccomp filter.
   * systempaths_unconfined: no masked or read-only /proc and /sys paths (Docker's
   * `--security-opt systempaths=unconfined`; what slipway inside the container needs to mount
   * a /proc of its own in a user namespace). */
  uint64_t caps;
  bool privileged;
  bool no_new_privs;
  bool seccomp_unconfined;
  bool systempaths_unconfined;

  /* `slipway exec`: instead of making a container, join the namespaces (mount, uts, ipc, net,
   * pid, and user when it differs from the caller's) and root of the running process join_pid
   * (a container's pid 1, in the caller's pid namespace) and run argv there as a new process of
   * its pid namespace, with the security fields, user, env, cwd, stdio and `tty` (a pty of the
   * container's /dev/pts) as for a container; no filesystem is set up (root fields and mounts
   * must be empty). 0: make a container. */
  pid_t join_pid;

  /* `build --shm-size`: size of /dev/shm in bytes (0 = 64 MiB, Docker's default);
   * `build --ulimit`: limits set before the exec. */
  uint64_t shm_size;
  const sw_rlimit_t *rlimits;
  size_t n_rlimits;
} sw_sandbox_opts_t;

/* Sets the stdio fields to SW_STDIO_INHERIT and the rest to zero/NULL. */
void sw_sandbox_opts_init(sw_sandbox_opts_t *opts);

typedef struct {
  int exit_code; /* 0..255 if the process exited, else -1 */
  int signal;    /* the signal that killed it, else 0 */
} sw_sandbox_status_t;

/* Shell-style status: exit_code, or 128 + signal. */
int sw_sandbox_status_code(const sw_sandbox_status_t *st);

/* Run the process to completion. Returns 0 when it ran (whatever its exit status: see *st),
 * -1 when the sandbox could not be set up or the exec failed; err then says why, e.g.
 * "exec `python`: No such file or directory", with err->code 127 (not found) or 126 (not
 * executable) as a shell would exit. */
int sw_sandbox_run(const sw_sandbox_opts_t *opts, sw_sandbox_status_t *st, sw_error_t *err);

/* Kill (SIGKILL) every sandbox running in this process, whole pid namespaces included.
 * Async-signal-safe: for the engine's SIGINT handler. sw_sandbox_run() then returns with the
 * process killed by SIGKILL. */
void sw_sandbox_kill_all(void);

/* ---- published ports (sandbox-net.c) ---- */

/* Docker's `-p` forms: `HOST:CONTAINER`, `IP:HOST:CONTAINER`, `IP::CONTAINER` and `CONTAINER`
 * (host port 0: any free one), each with an optional `/tcp` or `/udp`. Ranges, IPv6 host
 * addresses and sctp are refused with a usage error (exit 2) naming the spec. */
int sw_port_parse(const char *spec, sw_port_t *out, sw_error_t *err);
/* Check that the host address and port can be bound, and with host_port 0 pick a free one
 * (written back). *fd: a TCP socket bound to the port (SO_REUSEADDR, never listening), which
 * keeps other programs' bind(0) off the port until the caller closes it (after the run:
 * slirp4netns's listener binds beside it); -1 for UDP, where a second bound socket would take
 * datagrams. The error names the port: "0.0.0.0:80 is already in use". */
int sw_port_reserve(sw_port_t *p, int *fd, sw_error_t *err);
/* "80/tcp -> 0.0.0.0:32768", as `docker port` prints it; out: at least 64 bytes. */
void sw_port_format(const sw_port_t *p, char *out, size_t len);

/* ---- capabilities (pure logic; sandbox-security.c) ---- */

/* Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
 * NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP (0xa80425fb). */
#define SW_CAPS_DEFAULT ((uint64_t)0xa80425fbu)
#define SW_CAP_COUNT    41 /* CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40) */
#define SW_CAPS_ALL     ((((uint64_t)1) << SW_CAP_COUNT) - 1)

/* "CAP_NET_ADMIN", "net_admin", "Net_Admin" -> 12; -1 if unknown ("ALL" included). */
int sw_cap_from_name(const char *name);
/* 12 -> "CAP_NET_ADMIN"; NULL if out of range. */
const char *sw_cap_name(int cap);
/* Docker's rules for --cap-add / --cap-drop (each NULL-terminated, names as above or "ALL"):
 * privileged = all; add ALL = all minus drops; drop ALL = only the adds; else (default minus
 * drops) plus adds. An unknown name is a usage error (exit 2). */
int sw_caps_tweak(char *const *add, char *const *drop, bool privileged, uint64_t *out,
                  sw_error_t *err);

/* ---- user resolution (pure logic; exposed for tests and for COPY --chown) ---- */

typedef struct {
  uid_t uid;
  gid_t gid;
  gid_t *groups; /* supplementary groups (primary gid not repeated), malloc'd */
  size_t n_groups;
  char *name; /* user name, if known from passwd */
  char *home; /* home directory from passwd, else NULL */
} sw_user_t;

/* Resolve `spec` ("name", "uid", "uid:gid", "name:group", ...; NULL or "" = root) against the
 * text of /etc/passwd and /etc/group (either may be NULL: a missing file). Docker's rules: a
 * name must exist; a numeric uid need not (gid then 0 unless passwd says otherwise); a group
 * name must exist in /etc/group; supplementary groups are those of /etc/group listing the user,
 * added only when no group is given. Errors exit code 1 with Docker's wording. */
int sw_user_resolve(const char *spec, const char *passwd, const char *group, sw_user_t *out,
                    sw_error_t *err);
void sw_user_clear(sw_user_t *u);

#endif
