/* slipway: SSH agent forwarding for `build --ssh` and `RUN --mount=type=ssh`.
 *
 * A step never sees the user's agent socket: each ssh mount gets a socket of its own in a
 * private directory (owner and mode as the mount asks, 0600 root by default), relayed
 * connection by connection to the agent by a thread that lives as long as the step. A private
 * key given to --ssh is served by a private `ssh-agent` started for the build. Nothing of it
 * reaches a layer (the socket is a bind mount), the cache key (only the mount's id and target
 * do) or the history.
 */
#ifndef SW_SSH_FORWARD_H
#define SW_SSH_FORWARD_H

#include "util.h"

#include <sys/types.h>

/* A new private (0700) directory for sockets: under /tmp, since a socket path must fit in
 * 108 bytes (a store's tmp/ may be too deep). */
char *sw_ssh_tmpdir(sw_error_t *err);

/* ---- the relay ---- */
typedef struct sw_ssh_proxy sw_ssh_proxy_t;

/* Listen on DIR/agent.sock (DIR must exist, private), chown uid:gid, chmod mode; relay each
 * connection to the agent at `upstream`. *sock_out gets the socket path (malloc'd). */
int sw_ssh_proxy_start(const char *dir, const char *upstream, uid_t uid, gid_t gid, mode_t mode,
                       sw_ssh_proxy_t **out, char **sock_out, sw_error_t *err);
/* Stop relaying, close everything, remove the socket. NULL is a no-op. */
void sw_ssh_proxy_stop(sw_ssh_proxy_t *p);

/* ---- --ssh ID[=SOCKET|KEY[,KEY…]] ---- */
typedef struct sw_ssh_agents sw_ssh_agents_t;

/* Resolve the --ssh specs: "default" (or "ID" alone) = $SSH_AUTH_SOCK; "ID=SOCKET" = that
 * agent; "ID=KEY[,KEY]" = a private ssh-agent (socket in sw_ssh_tmpdir) holding those keys.
 * Errors name the spec. */
int sw_ssh_agents_new(char *const *specs, sw_ssh_agents_t **out, sw_error_t *err);
/* The agent socket for an id, or NULL. */
const char *sw_ssh_agents_get(const sw_ssh_agents_t *a, const char *id);
/* Stops the private agents. NULL is a no-op. */
void sw_ssh_agents_free(sw_ssh_agents_t *a);
static inline void
sw_ssh_agents_freep(sw_ssh_agents_t **a)
{
  sw_ssh_agents_free(*a);
}

#endif
