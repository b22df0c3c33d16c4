/* slipway rootless: an ordinary user's slipway runs in a user namespace of its own, entered once
 * at startup (sw_userns_enter), where it is root: the user's uid is 0 inside and the
 * subordinate ids of /etc/subuid and /etc/subgid (mapped by the setuid `newuidmap` and
 * `newgidmap` of Debian's `uidmap`) are 1..N. Everything after that (store, overlayfs mounts,
 * sandboxes) runs unchanged; the one thing that differs is the xattr namespace overlayfs keeps
 * its metadata in (sw_overlay_opaque_xattr): `trusted.` needs root in the initial namespace, so a
 * store made in a user namespace says `user.overlay.opaque` and overlay is mounted with
 * `userxattr`. */
#ifndef SW_USERNS_H
#define SW_USERNS_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* One subordinate id range: host ids start..start+count-1. */
typedef struct {
  unsigned long start, count;
} sw_subid_t;

/* The ranges of /etc/subuid-style `text` that belong to the user `name` or numeric `id`, in
 * file order; lines that are malformed or have a zero count are skipped. Returns how many
 * (at most max). Pure: no file access. */
size_t sw_subid_parse(const char *text, const char *name, unsigned long id, sw_subid_t *out,
                      size_t max);

/* The id that host id `id` has in the namespace sw_userns_enter makes for the user `own` with
 * the ranges r: `own` is 0, the ranges follow from 1 in file order; an id outside them is the
 * overflow id 65534, as the kernel shows it. Pure. */
unsigned long sw_subid_inside(unsigned long own, const sw_subid_t *r, size_t n, unsigned long id);

/* When not root (euid != 0): enter a new user and mount namespace where this process is root,
 * with the user's subordinate ids mapped (or only the user's own id, with a warning saying how to
 * add a range). Must be called while the process has one thread. No-op for root. On failure,
 * err says what the system lacks (package, sysctl, kernel). */
int sw_userns_enter(sw_error_t *err);

/* Instead of sw_userns_enter, for a command that reads or writes only what belongs to the user
 * (the store's database and blobs): it stays outside any namespace, and sw_userns_outside()
 * then says so to the store, which leaves files of subordinate ids alone. */
void sw_userns_stay_outside(void);

/* True after sw_userns_stay_outside() in a process that is not root. */
bool sw_userns_outside(void);

/* A build by an ordinary user first runs outside any namespace (no mapping: two setuid execs,
 * a few ms), in the hope that every step is cached: a no-op rebuild then costs what root's
 * does. Called by main for `build` instead of sw_userns_enter, while the process has one
 * thread; false (enter as usual) for root, for the single-id fallback, and in the process
 * sw_userns_reexec started. When true, the process is outside (sw_userns_outside()), and
 * stdout and stderr are held in memory until sw_userns_release_output(), so that a try that
 * fails leaves no trace. */
bool sw_userns_speculate(int argc, char **argv);

/* True in a build that runs outside its user namespace on the chance that it needs none. */
bool sw_userns_speculating(void);

/* Called before work that needs the namespace (a step that runs or copies, a layer written
 * or unpacked: owners outside are the host's ids). 0, or, in a speculating build, an error
 * saying `what` needs it: the build fails and is run again in the namespace. */
int sw_userns_need(const char *what, sw_error_t *err);

/* In a speculating build, turn the owners of a stat of a file in a snapshot into the ids the
 * namespace would show (the user is 0, its ranges follow), so that what hashes them (COPY
 * --from) gives the keys the namespace gives. No-op otherwise. */
void sw_userns_stat_inside(struct stat *st);

/* The terminal behind fd 1 or 2 while it is held (for isatty, the window size); else fd. */
int sw_userns_real_fd(int fd);

/* A speculating build succeeded (or must report as is): write what was held and put the
 * caller's stdout and stderr back. No-op otherwise. */
void sw_userns_release_output(void);

/* A speculating build needs its namespace (`why`, for --debug) and has one thread again: drop
 * what was held, put stdout and stderr back and enter the namespace in this process (the
 * caller then builds again; no exec, no second start-up). With threads left, as
 * sw_userns_reexec. 0, or -1 when entering failed (err says why, as at startup). No-op when
 * not speculating. */
int sw_userns_enter_late(const char *why, sw_error_t *err);

/* A speculating build needs its namespace (`why`, for --debug): drop what was held, put the
 * signal state back and exec slipway again with the same arguments; that process enters the
 * namespace at startup. Returns only when not speculating. */
void sw_userns_reexec(const char *why);

/* Whether this process runs in a user namespace other than the initial one (slipway's own, or
 * a container's): trusted.* xattrs and device nodes are then out of reach. */
bool sw_userns_nested(void);

/* The xattr overlayfs marks an opaque directory with, for this process:
 * `trusted.overlay.opaque`, or `user.overlay.opaque` in a user namespace (mounts there use the
 * `userxattr` option). */
const char *sw_overlay_opaque_xattr(void);

/* A hint to append to a failed mount or mknod in a user namespace ("" outside one). */
const char *sw_userns_hint(int e);

#endif
