/* slipway containers without a daemon: what `run` leaves in ROOT/containers/<name>/ and what
 * `ps`, `logs`, `stop`, `kill`, `rm` and `container prune` read.
 *
 * A container's directory holds config.json (written once: id, name, image, command, ports,
 * stop signal, restart policy), state.json (replaced atomically: status, pids, times, exit
 * code), log.jsonl (a detached container's output, one JSON object a record: stream, time,
 * log), `lock` and the overlay's upper/ and work/ dirs. Its owner — the `slipway run` process
 * in the foreground, or for `run -d` a monitor process (double-forked, setsid, the sandbox's
 * parent) — holds an flock on `lock` for as long as it lives. The kernel drops it however the
 * owner dies, so a state that says "running" with a free lock is a dead container (its sandbox
 * died with it: PR_SET_PDEATHSIG), shown as such and removable. */
#ifndef SW_CONTAINER_H
#define SW_CONTAINER_H

#include "error.h"
#include "sandbox.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
  char status[16]; /* created, running, restarting, exited, dead */
  pid_t monitor_pid, pid;
  double started, finished; /* unix seconds, 0 = never */
  int exit_code;
  int restarts;
  char *error;
} sw_container_state_t;

typedef struct sw_container_s {
  char *id, *name, *dir; /* dir: absolute */
  json_t *config;
  int lock_fd; /* held by the owner, -1 otherwise */
} sw_container_t;

/* Make ROOT/containers/<name> (name NULL: the short id), lock it, write config (its Id and Name
 * are set here) and a "created" state. A name in use is a usage error telling to `rm` it. */
int sw_container_create(const char *containers_dir, const char *name, json_t *config,
                        sw_container_t **out, sw_error_t *err);
/* By name, full id or unique id prefix. */
int sw_container_open(const char *containers_dir, const char *ref, sw_container_t **out,
                      sw_error_t *err);
/* Every container, oldest first; *n set. */
sw_container_t **sw_container_list(const char *containers_dir, size_t *n);
void sw_container_free(sw_container_t *c);
void sw_container_freep(sw_container_t **c);
void sw_container_list_free(sw_container_t **v, size_t n);

/* The state, "dead" when it says the container runs but its owner is gone. */
void sw_container_state_read(const sw_container_t *c, sw_container_state_t *st);
int sw_container_state_write(const sw_container_t *c, const sw_container_state_t *st,
                             sw_error_t *err);
void sw_container_state_clear(sw_container_state_t *st);
/* Is the owner alive (the lock held by someone)? */
bool sw_container_owned(const sw_container_t *c);

/* Foreground run: record pid 1 and the start, then the end. */
void sw_container_started(sw_container_t *c, pid_t pid);
void sw_container_finished(sw_container_t *c, int status_code, const char *error);

/* `run -d`: start the monitor, which runs the sandbox `o` (its stdio and output fields are
 * replaced), logs its output and restarts it by the config's policy; return once pid 1 runs
 * (or with the error that prevented it). keep: fds the monitor keeps open (published ports'
 * reservations), the others are closed in it. */
int sw_container_detach(sw_container_t *c, const sw_sandbox_opts_t *o, const int *keep,
                        size_t n_keep, sw_error_t *err);

/* Send sig to pid 1 if it runs. stop: the config's StopSignal, then SIGKILL after timeout
 * seconds; wait until the owner has recorded the end. A stop is never restarted. */
int sw_container_kill(sw_container_t *c, int sig, sw_error_t *err);
int sw_container_stop(sw_container_t *c, int timeout, sw_error_t *err);
/* Remove the directory; a running one only with force (killed first). *bytes: what it held. */
int sw_container_remove(sw_container_t *c, bool force, int64_t *bytes, sw_error_t *err);

/* Remove every stopped (exited or dead) container (only_autoremove: only those run with --rm
 * whose owner was killed before removing them): their ids pushed to *removed, the bytes they
 * held in *bytes. -1 if one could not be removed (warned). */
int sw_container_prune(const char *containers_dir, bool only_autoremove, char ***removed,
                       int64_t *bytes);

/* The containers made from the image whose ID (config digest) is image_id (their config's
 * ImageID): *running gets the short id of one not stopped (created, running, restarting),
 * *stopped of one exited or dead; each NULL if none (free them). */
void sw_container_users(const char *containers_dir, const char *image_id, char **running,
                        char **stopped);

/* The image IDs (config digests) of the containers not stopped (strv, never NULL). */
char **sw_container_images_in_use(const char *containers_dir);

/* "SIGTERM", "TERM", "15" -> 15; -1 if unknown. */
int sw_signal_parse(const char *s);

#endif
