/* slipway: `ADD <git repository>` (`https://host/repo.git#ref:subdir`, `git@host:repo.git`,
 * `git://…`, `ssh://…`) with the system git, as BuildKit's git source: the ref is resolved to a
 * commit first (`git ls-remote`: one round trip), which keys the step, so an unchanged commit
 * never fetches; on a miss the commit is fetched (shallow when the server allows) into a
 * private directory and checked out, `.git` dropped unless --keep-git-dir.
 *
 * git runs in a sandboxed environment: none of the user's git or ssh configuration (HOME is
 * an empty temp dir, no system or global config), no prompts, only the http, https, ssh and
 * git protocols, no hooks or submodules; the build's proxy args and its `--ssh default` agent
 * are passed on.
 */
#ifndef SW_FETCH_GIT_H
#define SW_FETCH_GIT_H

#include "util.h"

typedef struct {
  char *remote; /* the URL without its fragment */
  char *ref;    /* branch, tag, full ref or commit; NULL = the remote's HEAD */
  char *subdir; /* path inside the repository; NULL = its root */
} sw_git_src_t;

typedef struct {
  char *const *proxy_env;    /* K=V: HTTP_PROXY, HTTPS_PROXY, NO_PROXY … (build args), or NULL */
  const char *ssh_auth_sock; /* agent for ssh remotes (--ssh default), or NULL */
} sw_git_opts_t;

/* Split "REMOTE#REF:SUBDIR" (both parts optional). A subdir may not leave the repository. */
int sw_git_parse(const char *src, sw_git_src_t *out, sw_error_t *err);
void sw_git_src_clear(sw_git_src_t *g);

/* The commit (40 hex + NUL) the ref names now. */
int sw_git_resolve(const sw_git_src_t *g, const sw_git_opts_t *o, char commit[41], sw_error_t *err);

/* Fetch and check out `commit` into dir/tree (dir: an empty private directory). *root_out: the
 * directory to copy (dir/tree or its subdir); *ignore_out: a Dockerfile path whose
 * .dockerignore is empty, for sw_context_open (a repository's .dockerignore is content). */
int sw_git_checkout(const sw_git_src_t *g, const sw_git_opts_t *o, const char *commit,
                    bool keep_git_dir, const char *dir, char **root_out, char **ignore_out,
                    sw_error_t *err);

#endif
