/* slipway build: pieces of `slipway build` kept out of build.c (one concern each). */
#ifndef SW_CLI_BUILD_PRIVATE_H
#define SW_CLI_BUILD_PRIVATE_H

#include "../lib/context.h"
#include "../lib/store.h"

/* --build-context NAME=DIR|docker-image://REF|oci-layout://DIR[@sha256:…], resolved. */
typedef struct {
  char **plan;         /* "NAME=image:REF" / "NAME=dir:PATH", for sw_plan_opts_t.contexts */
  char **paths;        /* the directories, NULL-terminated (sw_solve_opts_t.named_paths) */
  sw_context_t **ctxs; /* opened, one per path */
} build_named_t;

/* Check the specs, load OCI layouts into the store, open the directories. */
int build_named_resolve(sw_store_t *store, char *const *specs, const char *ctx_cache,
                        build_named_t *out, sw_error_t *err);
void build_named_clear(build_named_t *n);

#endif
