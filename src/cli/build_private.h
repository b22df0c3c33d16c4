/* slipway build: pieces of `slipway build` kept out of build.c (one concern each). */
#ifndef SW_CLI_BUILD_PRIVATE_H
#define SW_CLI_BUILD_PRIVATE_H

#include "../lib/context.h"
#include "../lib/plan.h"
#include "../lib/progress.h"
#include "../lib/registry.h"
#include "../lib/solve.h"
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

/* --shm-size: bytes from Docker's size syntax (binary units: 64m = 64 MiB). */
int build_ram_size(const char *s, uint64_t *out, sw_error_t *err);
/* --pull: pull every image the needed stages of the n plans (one per target platform) use
 * (FROM, COPY --from, RUN --mount from=) again before the build, for the platform of the stage
 * that uses it; each takes the name beside the other platforms' images (an index of them when
 * there are several: sw_index_name_platform). A failed pull fails the build.
 * (build_flags.c) */
int build_pull_bases(sw_store_t *store, sw_plan_t *const *plans, size_t n,
                     const sw_registry_opts_t *ro, sw_progress_t *p, sw_error_t *err);
/* -o type=image|registry,name=N[,name=M],push=true: 1 (names added to *tags, *push set), 0 when
 * spec is another type, -1 on a bad spec. */
int build_output_image(const char *spec, char ***tags, bool *push, sw_error_t *err);
/* --push: the stored image or index src (its ID or digest) pushed under each name. */
int build_push(sw_store_t *store, const char *src, char *const *tags, const sw_registry_opts_t *ro,
               sw_progress_t *p, sw_error_t *err);
/* --metadata-file: buildx's JSON (containerimage.digest, containerimage.config.digest,
 * containerimage.descriptor, image.name). */
int build_write_metadata(sw_store_t *store, const sw_image_t *img, char *const *tags,
                         const char *path, sw_error_t *err);

/* ---- several target platforms (build_platforms.c) ---- */
/* --platform A,B (repeatable): each normalised (linux/aarch64 = linux/arm64, arm64/v8 = arm64)
 * and added once to *platforms. */
int build_platforms_add(const char *spec, char ***platforms, sw_error_t *err);
/* --label K=V on an image's config. */
void build_apply_labels(sw_image_t *img, char *const *labels);
typedef struct {
  sw_store_t *store;
  const sw_dockerfile_t *df;
  sw_plan_t *first;                  /* the plan of platforms[0] (the caller's) */
  const sw_plan_opts_t *plan_opts;   /* for the others', platform replaced */
  const sw_solve_opts_t *solve_opts; /* plan replaced by each platform's */
  char *const *platforms;            /* two or more */
  char *const *labels;
  char *const *tags;
  sw_progress_t *progress;
  sw_reblob_t *reblob;            /* the base's smaller blobs being made (may be NULL) */
  const sw_registry_opts_t *pull; /* --pull: the bases again, for every platform (or NULL) */
} build_platforms_opts_t;
/* One plan per platform, solved at once (sw_solve_all), each image committed (no name), then
 * one image index of them under tags (*out). */
int build_platforms(const build_platforms_opts_t *bo, sw_index_t **out, sw_error_t *err);

/* Build checks (lint.h): warnings on stderr, and a failure with `# check=error=true`; with
 * check_only (`build --check`) on stdout, returning 1 when there is any. */
int build_lint(sw_store_t *store, const sw_dockerfile_t *df, const char *context,
               const char *df_path, bool check_only, sw_error_t *err);

#endif
