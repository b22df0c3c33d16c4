/* slipway: the solver: runs a build plan and returns the target stage's image.
 *
 * Per step: compute its cache key (cachekey.h), look the key up in the store; on a hit reuse
 * the recorded layer, else run the step (RUN in the sandbox, whose overlay upper dir *is* the
 * step's diff; COPY/ADD/WORKDIR written straight into a layer dir), commit the layer and record
 * the result. Config-only instructions (ENV, LABEL, CMD, USER ...) only change the image config
 * and its history and are replayed on every build (they cost nothing). Independent stages run
 * at the same time, one thread each. A failing step records nothing.
 *
 * Cache records (JSON, store cache table): {"v":1,"layer":"sha256:<diffID>"|null,
 * "created":<unix seconds>} for a step key; {"v":1,"content":"<hex>"} for the memoized content
 * hash of a path copied by `COPY --from` (keyed by the source stage's layer chain and path).
 */
#ifndef SW_SOLVE_H
#define SW_SOLVE_H

#include "compress.h"
#include "layer_write.h"
#include "context.h"
#include "image.h"
#include "plan.h"
#include "progress.h"
#include "registry.h"
#include "sandbox.h"
#include "store.h"

typedef struct {
  sw_store_t *store;
  sw_plan_t *plan;
  sw_context_t *ctx;
  sw_progress_t *progress;
  bool no_cache;
  sw_net_t network;          /* default for RUN (RUN --network overrides) */
  char *const *secrets;      /* "ID=PATH" */
  sw_compression_t comp;     /* codec for new layers (codec NULL = gzip) */
  int64_t epoch;             /* SOURCE_DATE_EPOCH, or SW_EPOCH_NONE */
  bool allow_insecure;       /* `--allow security.insecure`: RUN --security=insecure may run */
  sw_rcache_t *cache_from;   /* records from --cache-from (NULL = none): a local miss whose key
                                is there is a hit; its layer is fetched into the store */
  sw_cache_log_t *cache_log; /* NULL, or gets every step record the build hit or wrote */
  /* --build-context directories: named_paths[i] (as in the plan) is opened as named_ctxs[i];
   * NULL-terminated */
  char *const *named_paths;
  sw_context_t *const *named_ctxs;
  /* RUN steps: --add-host "HOST:IP" lines added to /etc/hosts, --shm-size, --ulimit (each in
   * the key when given) */
  char *const *add_hosts;
  uint64_t shm_size;
  const sw_rlimit_t *ulimits;
  size_t n_ulimits;
  const struct sw_ssh_agents *ssh; /* --ssh: agents by id (RUN --mount=type=ssh), or NULL */
  /* A package index that refuses connections (preflight.h), or NULL: a RUN that must run with
   * its arg in the environment fails with its message instead */
  const struct sw_index_down_s *index_down;
} sw_solve_opts_t;

/* Run the plan; *out gets the target stage's image (config with history, layers in the store;
 * not committed as an image yet: see sw_image_commit). */
int sw_solve(const sw_solve_opts_t *opts, sw_image_t **out, sw_error_t *err);
/* Run n plans at once (`build --platform A,B`: one plan per target platform, each with its
 * opts): every needed stage of every plan on its own thread. A step whose key another stage of
 * any plan is computing waits for its record and is a hit: stages with the same keys (a FROM
 * --platform=$BUILDPLATFORM stage that uses no TARGET* arg) are built once. Progress names get
 * the plan's platform ("[linux/arm64 build 2/5]"). The first error stops every plan. outs[i]
 * gets plan i's image. */
int sw_solve_all(const sw_solve_opts_t *const *opts, size_t n, sw_image_t **outs, sw_error_t *err);

/* Set from a signal handler: the solver stops before the next step, and kills running steps
 * (sw_sandbox_kill_all). */
void sw_solve_interrupt(void);
bool sw_solve_interrupted(void);

#endif
