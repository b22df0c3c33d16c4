/* slipway: the build plan: a parsed Dockerfile turned into stages and steps.
 *
 * Owns what is decided before anything runs: global ARGs (before the first FROM: visible in
 * FROM lines, and inside a stage only when redeclared), --build-arg, the predefined proxy and
 * platform ARGs, stage names (case-insensitive) and indexes, `FROM stage`, `COPY --from=STAGE |
 * INDEX | IMAGE`, `RUN --mount=...,from=STAGE`, --target, which stages the target needs (only
 * those are built), unknown instructions and flags, references to unknown or later stages and
 * self-references, each reported with the Dockerfile line. ONBUILD triggers of a base stage are
 * placed right after the downstream FROM (those of a base *image* are known only when the
 * image is loaded: sw_plan_trigger_steps() turns them into steps then).
 *
 * Also the ARG/ENV scope that the solver carries through a stage (sw_scope_t): which build args
 * a step sees, the environment used to expand its words (ENV wins over ARG), and the
 * environment its process gets.
 */
#ifndef SW_PLAN_H
#define SW_PLAN_H

#include "dockerfile.h"
#include "util.h"

#include <sys/types.h>

/* ---- RUN --mount ---- */
typedef enum {
  SW_RUNMOUNT_BIND,
  SW_RUNMOUNT_CACHE,
  SW_RUNMOUNT_TMPFS,
  SW_RUNMOUNT_SECRET,
  SW_RUNMOUNT_SSH,
} sw_runmount_type_t;

typedef struct {
  sw_runmount_type_t type;
  char *target;  /* absolute or relative to WORKDIR (solve resolves); secret: default
                    /run/secrets/<id> */
  char *source;  /* bind/cache: path in the from-source; NULL = its root */
  char *from;    /* stage name, index or image; NULL = the build context (bind) or none */
  char *id;      /* cache: default = target; secret: default = basename(target) */
  char *env;     /* secret: expose as this env variable instead of (or with) a file */
  bool readonly; /* bind: default true; cache: default false */
  bool required; /* secret */
  int sharing;   /* cache: 0 shared, 1 private, 2 locked */
  mode_t mode;   /* cache/secret: 0 = default (0755 dirs, 0400 secrets) */
  long uid, gid; /* -1 = default */
  uint64_t size; /* tmpfs bytes, 0 = default */
} sw_runmount_t;

/* Parse one --mount value ("type=cache,target=/root/.cache,sharing=locked"). Unknown keys and
 * bad values are errors (code 2). */
int sw_runmount_parse(const char *spec, sw_runmount_t *out, sw_error_t *err);
void sw_runmount_clear(sw_runmount_t *m);

/* ---- plan ---- */
typedef struct {
  const sw_insn_t *insn; /* the instruction (owned by the Dockerfile or the stage) */
  bool onbuild;          /* an ONBUILD trigger of the base */
  int from_stage;        /* COPY/ADD --from=STAGE: stage index, else -1 */
  char *from_image;      /* COPY --from=IMAGE: the reference, else NULL */
  char *from_context;    /* COPY --from=NAME of a --build-context directory: its path */
  int *mount_stages;     /* RUN --mount from=STAGE, one per --mount (-1: not a stage) */
  char **mount_images;   /* same, image references (NULL entries when not an image) */
  size_t n_mounts;
  bool numbered; /* counts in "[stage i/n]" (FROM image, ADD, COPY, RUN, WORKDIR) */
} sw_step_t;

typedef struct {
  int index;
  char *name;    /* the AS name, lower-cased, or NULL */
  char *display; /* name, or "stage-N"; "" when the Dockerfile has a single stage */
  const sw_insn_t *from;
  char *base;     /* the expanded FROM argument ("python:slim", "scratch", a stage name) */
  int base_stage; /* index of the stage it is FROM, or -1 */
  bool scratch;
  /* The platform the stage runs on (normalised): its FROM --platform (expanded), else that of
   * the stage it is FROM, else the build's target. Its steps' cache keys hold it, so a stage on
   * $BUILDPLATFORM has the same keys whatever the target, and two targets never share a step. */
  char *platform;
  bool platform_given; /* FROM --platform was written */
  sw_step_t *steps;
  size_t n_steps;
  int *deps; /* stages this one needs (base and --from), each once */
  size_t n_deps;
  bool needed;   /* the target needs it */
  bool replaced; /* a --build-context of its name replaced it: FROM that, no steps */
  int total;     /* n of "[stage i/n]" */
  sw_dockerfile_t **trigger_dfs; /* parsed ONBUILD texts this stage owns */
  size_t n_trigger_dfs;
} sw_stage_t;

typedef struct {
  const char *platform;    /* target, "linux/arm64" (NULL: the host's); normalised here */
  char *const *build_args; /* "K=V" from --build-arg (a bare "K" takes K from the environment) */
  const char *target;      /* stage name, NULL = the last stage */
  /* --build-context, resolved by the caller: "NAME=image:REF" (docker-image://, oci-layout://
   * once loaded) or "NAME=dir:PATH" (a local directory) */
  char *const *contexts;
} sw_plan_opts_t;

typedef struct {
  const sw_dockerfile_t *df;
  sw_stage_t *stages;
  size_t n_stages;
  int target;
  char **global_args;   /* "K=V": meta args (ARG before the first FROM) with values, after
                           --build-arg, plus the platform args */
  char **build_args;    /* "K=V" as given (bare "K" resolved from the environment) */
  char *platform;       /* the target platform, normalised ("linux/arm64"): TARGETPLATFORM */
  char *build_platform; /* the host's ("linux/amd64"): BUILDPLATFORM */
  char **used_args;     /* build args some ARG declared (for the "not consumed" warning) */
  char **all_names;     /* lower-cased AS name of every stage by index ("" if none) */
  char **contexts;      /* sw_plan_opts_t.contexts */
} sw_plan_t;

/* ---- named contexts (plan-context.c) ---- */
typedef enum { SW_NAMED_IMAGE, SW_NAMED_DIR } sw_named_kind_t;
/* The named context `name` refers to (a stage name, a FROM base or a --from value), or NULL.
 * Returns the image reference or the directory; *kind says which. */
const char *sw_plan_named_context(const sw_plan_t *p, const char *name, sw_named_kind_t *kind);

int sw_plan_new(const sw_dockerfile_t *df, const sw_plan_opts_t *opts, sw_plan_t **out,
                sw_error_t *err);
void sw_plan_free(sw_plan_t *p);
static inline void
sw_plan_freep(sw_plan_t **p)
{
  sw_plan_free(*p);
}
/* Stages in an order where every stage comes after those it needs (needed ones only). */
size_t sw_plan_order(const sw_plan_t *p, int *order);
/* Build args given but declared by no ARG of a needed stage (caller frees). */
char **sw_plan_unused_build_args(const sw_plan_t *p);

/* Turn ONBUILD trigger texts of a base image into steps for `stage` (the solver calls this
 * once the image's config is known). `--from` in a trigger may name an earlier stage. */
int sw_plan_trigger_steps(sw_plan_t *p, sw_stage_t *stage, char *const *triggers, sw_step_t **steps,
                          size_t *n, sw_error_t *err);
void sw_steps_free(sw_step_t *steps, size_t n);

/* ---- ARG / ENV scope during a stage ---- */
typedef struct {
  char **args; /* "K=V" declared args that have a value, in declaration order */
  char **keys; /* every declared arg name (also those without value) */
  char **over; /* "K=V" arg values newer than the config's Env of K (BuildKit's state env: the
                * last ARG or ENV wins), also those inherited from a base stage */
} sw_scope_t;

void sw_scope_init(sw_scope_t *s);
void sw_scope_clear(sw_scope_t *s);
void sw_scope_copy(sw_scope_t *dst, const sw_scope_t *src);
/* A stage FROM another stage starts with that stage's arg values that its config's Env does not
 * set (BuildKit re-applies the image's Env over the inherited state), and its declared names
 * (current BuildKit lists them in `RUN |N`; BuildKit 0.8 did not), not their values. */
void sw_scope_inherit(sw_scope_t *dst, const sw_scope_t *base, char *const *base_config_env);
/* ENV KEY=...: the config's Env now holds the newest value of KEY. */
void sw_scope_env_set(sw_scope_t *s, const char *key);
/* ARG KEY[=default]: `value` is the default already expanded, or NULL. The build arg wins,
 * then the default, then a global (meta) arg of that name. Returns the value in effect (or
 * NULL). */
const char *sw_scope_declare(sw_scope_t *s, const sw_plan_t *p, const char *key, const char *value);
/* Environment to expand words with, and that shapes a RUN (its key): the config's Env,
 * overridden by the args declared (or inherited) after the ENV of their name. Caller frees. */
char **sw_scope_env(const sw_scope_t *s, char *const *config_env);
/* Environment of a RUN process: sw_scope_env plus proxy build args (never declared, never in
 * the key). Caller frees. */
char **sw_scope_run_env(const sw_scope_t *s, const sw_plan_t *p, char *const *config_env);
/* Is this one of the predefined proxy args? */
bool sw_is_proxy_arg(const char *key);

#endif
