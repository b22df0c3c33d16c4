/* slipway: what a build needs from this machine, checked before any step runs; a step that
 * needs what is missing fails before it runs, a cached one does not need it. */
#ifndef SW_PREFLIGHT_H
#define SW_PREFLIGHT_H

#include "error.h"
#include "plan.h"

/* A package index that refuses connections: the build arg's name, and the message a RUN step
 * with that name in its environment fails with instead of running (solve-run.c). */
typedef struct sw_index_down_s {
  char *arg;
  char *msg;
} sw_index_down_t;

/* Does a needed stage declare a package-index build arg (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
 * UV_INDEX_URL, UV_EXTRA_INDEX_URL, UV_DEFAULT_INDEX) whose value (--build-arg, else the ARG's
 * default, else a global ARG) is an http(s) URL on this machine's loopback where nothing
 * listens? RUN steps on the host's network would retry it for many seconds, then fail. *down
 * gets the first such arg and the message (the ARG's file:line, the URL, and the comment right
 * above the ARG — its description, as `buildx build --call=outline` shows it — which is where a
 * Dockerfile says how to start its index); both NULL when every index answers. The build then
 * fails at the first RUN that must run with the arg in its environment, before running it
 * (typically the first RUN of the build), while a rebuild whose steps are all cached does not
 * need the index. Call it only when RUN steps share the host's network. */
void sw_preflight_indexes(const sw_plan_t *p, sw_index_down_t *down);
void sw_index_down_clear(sw_index_down_t *down);

#endif
