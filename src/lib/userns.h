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
