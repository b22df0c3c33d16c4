/* slipway: the solver's internals, shared by solve.c (scheduling, stages, config-only
 * instructions), solve-run.c (RUN) and solve-copy.c (COPY, ADD, WORKDIR). Not for other
 * modules. */
#ifndef SW_SOLVE_PRIVATE_H
#define SW_SOLVE_PRIVATE_H

#include "cachekey.h"
#include "fcache.h"
#include "lowerfs.h"
#include "solve.h"

#include <pthread.h>

#define SW_HISTORY_COMMENT "buildkit.dockerfile.v0"

typedef struct solver solver_t;

/* last_created of a FROM scratch stage before its first layer step: a config-only step there
 * takes the time of the next step with a time of its own (BuildKit's normalizeLayersAndHistory:
 * "the first new layer time"), or the build's when none follows, so that a rebuild from the
 * cache gives the same image. */
#define SV_CREATED_PENDING INT64_MIN

/* One stage being built. */
typedef struct {
  solver_t *sv;
  sw_stage_t *st;
  pthread_t thread;
  bool thread_started;
  bool done, failed;

  sw_image_t *img;       /* the stage's image so far (final once done) */
  char key[SW_KEY_SIZE]; /* cache key of the filesystem state so far */
  char **lower;          /* snapshot dirs of img, top first */
  sw_scope_t scope;
  int step_no;          /* numbered steps done, for "[stage i/n]" */
  int64_t last_created; /* created time of the latest layer (config-only history uses it), or
                           SV_CREATED_PENDING: FROM scratch, no layer step yet */
  size_t n_pending;     /* trailing history entries waiting for the next layer's time */
  bool cmd_set;         /* CMD given in this stage (ENTRYPOINT then keeps it) */
  const sw_step_t *cur; /* step being run (for messages) */
  /* A RUN's layer still being hashed on a worker thread while the next steps start (see
   * sv_pending_join); its upper dir is r->lower[0] until then. */
  struct pending_commit *pending;
  char **claims; /* keys of steps this stage is computing (solver.inflight), until recorded */
  /* Speculation (solve-copy.c): a COPY --from took its content from the prediction while the
   * source stage still worked; the stage is then built again, `verifying`, once it is over. */
  bool speculated, verifying;
  int *spec_ids; /* progress numbers of the steps begun since the first guess */
  size_t n_spec_ids;
  struct sv_guess *guesses; /* the COPY --from steps that guessed, in order */
  size_t n_guesses;
} stage_run_t;

/* A COPY --from that went on with its prediction: its progress entry stays open until the
 * second pass says whether the guess held (cached) or not (it and what followed: canceled). */
struct sv_guess {
  const sw_step_t *step;
  int id;
  size_t at; /* index of id in spec_ids */
  bool settled;
};

/* What the solvers of one build share: one per target platform of `build --platform A,B`
 * (sw_solve_all), a single one otherwise. A step of any plan with the key of a step another
 * stage (of any plan) is computing waits for its record instead of running it again: a stage
 * on $BUILDPLATFORM, the same for every target, is built once. The first error stops them all. */
struct sv_shared {
  pthread_mutex_t lock;
  pthread_mutex_t base_lock; /* the targets' bases resolved one at a time (stage_image) */
  pthread_cond_t cond;
  bool failed;
  sw_error_t first_err;
  /* Keys of the steps being computed now, by whichever stage claimed them first: two stages
   * with the same step (the same key) run it once; the other waits for the record (lock). */
  char **inflight;
  char **built;   /* keys recorded by this build: --no-cache hits only these (lock) */
  int waiting;    /* stages blocked in sv_wait_stage (lock) */
  solver_t **all; /* the solvers, for counting active stages */
  size_t n_all;
};

struct solver {
  const sw_solve_opts_t *o;
  struct sv_shared *sh;
  stage_run_t *runs;      /* one per plan stage; only needed ones run */
  int64_t now;            /* build time: SOURCE_DATE_EPOCH or the start time */
  sw_fcache_t *snapcache; /* digests of snapshot files (COPY --from hashing) */
  const char *label;      /* the target platform shown in progress names (several), or NULL */
};

/* ---- helpers (solve.c) ---- */
/* Expansion environment (ARGs, then config Env: ENV wins) and the config's Env as a vector. */
char **sv_expand_env(stage_run_t *r);
char **sv_config_env(stage_run_t *r);
/* Expand one word / a word into words with the stage's environment; errors name the line. */
int sv_expand(stage_run_t *r, const char *word, char **out, sw_error_t *err);
/* "[stage i/n] INSTRUCTION" for progress; advances the step number when numbered. */
char *sv_step_name(stage_run_t *r, const sw_step_t *step);
/* Error about the current step: "FILE:LINE: INSTRUCTION: msg" (code 1). */
int sv_fail(stage_run_t *r, sw_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing error with the step's location. */
int sv_wrap(stage_run_t *r, sw_error_t *err);
/* The stage's current user, workdir ("" = /), shell (default /bin/sh -c). */
const char *sv_user(stage_run_t *r);
const char *sv_workdir(stage_run_t *r);
char **sv_shell(stage_run_t *r);
/* A path as the step sees it: absolute, or relative to WORKDIR (trailing "/" kept). */
char *sv_abs_path(stage_run_t *r, const char *p);
/* The view of the stage's filesystem (caller frees). */
sw_lowerfs_t *sv_lowerfs(stage_run_t *r);

/* Cache records. lookup: 1 hit (fills *layer (zeroed if the step made no layer) and
 * *created), 0 miss. A hit whose layer is gone from the store is a miss. A miss claims the key
 * for this stage until sv_cache_record (or the stage's end); a key another stage has claimed
 * is waited for, then looked up again. */
int sv_cache_lookup(stage_run_t *r, const char *key, sw_layer_desc_t *layer, bool *has_layer,
                    int64_t *created, sw_error_t *err);
/* A lookup that claims nothing: 1 hit, 0 miss (nothing run, nobody waited for). */
int sv_cache_peek(stage_run_t *r, const char *key, sw_layer_desc_t *layer, bool *has_layer,
                  int64_t *created, sw_error_t *err);
/* Second pass of a stage that guessed: the COPY --from `step` found its real content; `held`:
 * it is the one guessed. Settles the progress of that guess (and of what followed it); true if
 * `step` had guessed wrong. */
bool sv_guess_settle(stage_run_t *r, const sw_step_t *step, bool held);
/* Whether stage `index` is over (done or failed). */
bool sv_stage_over(stage_run_t *r, int index);
/* Record a step result (after its layer is committed) and apply it to the stage. */
int sv_cache_record(stage_run_t *r, const char *key, const sw_layer_desc_t *layer, int64_t created,
                    sw_error_t *err);
/* Add a layer (or none) and its history entry to the stage. */
void sv_apply_layer(stage_run_t *r, const sw_layer_desc_t *layer, int64_t created,
                    const char *created_by);
/* Commit a layer dir (consumed): a layer of the final image (target stage and the stages it is
 * FROM) with its blob in one pass (build's codec), any other as a snapshot + diffID only
 * (sw_layer_commit_snapshot). *has gets false when dir is empty. */
int sv_commit_dir(stage_run_t *r, const char *dir, sw_layer_desc_t *out, bool *has,
                  sw_error_t *err);
/* A directory with no entries (an upper dir that made no change). */
bool sv_dir_empty(const char *dir);
/* Whether the stage's layers end up in the image the build produces: the target stage and the
 * stages it is built FROM. */
bool sv_in_final_image(stage_run_t *r);
/* The stage a step refers to; sv_wait_stage() blocks until it is done (-1 if it or another
 * stage failed: the step must stop). */
stage_run_t *sv_stage(stage_run_t *r, int index);
int sv_wait_stage(stage_run_t *r, int index);
/* Resolve an image reference from the store (for --from=IMAGE). */
int sv_image(stage_run_t *r, const char *ref, sw_image_t **out, sw_error_t *err);
/* uid/gid of a --chown / USER spec in the stage's /etc/passwd and /etc/group (BuildKit's
 * rules: a name gives its primary group; a number alone gives gid = uid). */
int sv_resolve_owner(sw_lowerfs_t *fs, const char *spec, uid_t *uid, gid_t *gid, sw_error_t *err);

/* Finish the pending RUN commit, if any: wait for its hash, rename the upper dir to its
 * snapshot, record the step and apply its layer. Every step but RUN calls it first (they read
 * the stage's layers or add history), RUN once its own process is over, the stage at its end
 * (also when a later step failed: the pending step succeeded, so it is recorded). */
int sv_pending_join(stage_run_t *r, sw_error_t *err);

/* ---- steps ---- */
int sv_step_run(stage_run_t *r, const sw_step_t *step, sw_error_t *err);     /* solve-run.c */
int sv_step_copy(stage_run_t *r, const sw_step_t *step, sw_error_t *err);    /* solve-copy.c */
int sv_step_workdir(stage_run_t *r, const sw_step_t *step, sw_error_t *err); /* solve-copy.c */

#endif
