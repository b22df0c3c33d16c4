/* slipway: what a build needs from this machine, checked before any step runs. */
#ifndef SW_PREFLIGHT_H
#define SW_PREFLIGHT_H

#include "error.h"
#include "plan.h"

/* A needed stage declares a package-index build arg (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
 * UV_INDEX_URL, UV_EXTRA_INDEX_URL, UV_DEFAULT_INDEX) whose value (--build-arg, else the ARG's
 * default, else a global ARG) is an http(s) URL on this machine's loopback where nothing
 * listens. RUN steps on the host's network would retry it for many seconds, then fail; so fail
 * now: the ARG's file:line, the URL, and the comment right above the ARG (its description, as
 * `buildx build --call=outline` shows it), which is where a Dockerfile says how to start its
 * index. Call it only when RUN steps share the host's network. */
int sw_preflight_indexes(const sw_plan_t *p, sw_error_t *err);

#endif
