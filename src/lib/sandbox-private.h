/* slipway sandbox internals shared by sandbox.c (caller side) and sandbox-mount.c (the monitor
 * and pid 1). Not for other modules. */
#ifndef SW_SANDBOX_PRIVATE_H
#define SW_SANDBOX_PRIVATE_H

#include "sandbox.h"
#include "util.h"

#include <stdarg.h>

/* A host directory used only as a mount point inside each sandbox's private mount namespace:
 * the monitor mounts a tmpfs on it (stub layer + root mount point), invisible to the host. */
#define SB_RUNDIR "/run/slipway"

enum { SB_MSG_ERROR = 1, SB_MSG_STUB, SB_MSG_EXIT };

struct sb_msg {
  int type;
  int value; /* ERROR: errno; EXIT: wait status */
  int code;  /* ERROR: exit code for the CLI */
  char text[4096];
};

/* Send a message (text formatted); sb_fail() sends an error and _exit()s. */
void sb_send(int sock, int type, int value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sb_fail(int sock, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

/* The monitor: runs in the forked child, never returns. */
void sb_monitor(const sw_sandbox_opts_t *o, int sock, int out_fd, pid_t parent)
    __attribute__((noreturn));

/* sandbox-security.c, called by pid 1 in this order: masked and read-only /proc and /sys
 * paths (after /proc is mounted); bounding/ambient sets, no_new_privs and seccomp (before the
 * switch to the user: they need privileges the user lacks); the permitted, effective and
 * inheritable sets (after it, just before exec). Each sends an error and exits on failure. */
void sb_security_mounts(const sw_sandbox_opts_t *o, int sock);
void sb_security_restrict(const sw_sandbox_opts_t *o, int sock);
void sb_security_caps(const sw_sandbox_opts_t *o, int sock);

/* sandbox-seccomp.c: compile the filter for o->caps in the caller, before fork (cached per
 * capability set); install it in pid 1 (called by sb_security_restrict). */
int sb_seccomp_prepare(const sw_sandbox_opts_t *o, sw_error_t *err);
void sb_seccomp_load(const sw_sandbox_opts_t *o, int sock);

#endif
