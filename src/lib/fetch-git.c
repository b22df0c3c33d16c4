/* slipway: `ADD <git repository>`; see fetch-git.h. */
#include "fetch-git.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define GIT_OUT_MAX (4u << 20)

void
sw_git_src_clear(sw_git_src_t *g)
{
  free(g->remote);
  free(g->ref);
  free(g->subdir);
  memset(g, 0, sizeof(*g));
}

int
sw_git_parse(const char *src, sw_git_src_t *out, sw_error_t *err)
{
  memset(out, 0, sizeof(*out));
  const char *hash = strchr(src, '#');
  out->remote = hash ? xstrndup(src, (size_t)(hash - src)) : xstrdup(src);
  if (hash && hash[1]) {
    const char *colon = strchr(hash + 1, ':');
    out->ref = colon ? xstrndup(hash + 1, (size_t)(colon - hash - 1)) : xstrdup(hash + 1);
    if (colon && colon[1])
      out->subdir = xstrdup(colon + 1);
    if (out->ref[0] == '\0') {
      free(out->ref);
      out->ref = NULL;
    }
  }
  if (out->ref && (out->ref[0] == '-' || strstr(out->ref, "..") || strchr(out->ref, ' '))) {
    sw_git_src_clear(out);
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: invalid git ref", src);
  }
  if (out->subdir) {
    _cleanup_free_ char *abs = xasprintf("/%s", out->subdir);
    _cleanup_free_ char *clean = sw_path_clean_abs(abs);
    bool up = false; /* a ".." below the top at any point */
    int depth = 0;
    for (const char *p = out->subdir; *p && !up; p += strcspn(p, "/"), p += *p == '/') {
      size_t n = strcspn(p, "/");
      if (n == 2 && strncmp(p, "..", 2) == 0)
        up = --depth < 0;
      else if (n > 0 && !(n == 1 && *p == '.'))
        depth++;
    }
    if (up) {
      sw_git_src_clear(out);
      return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: the subdirectory leaves the repository",
                           src);
    }
    free(out->subdir);
    out->subdir = strcmp(clean, "/") ? xstrdup(clean + 1) : NULL;
  }
  if (out->remote[0] == '-') {
    sw_git_src_clear(out);
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: invalid git remote", src);
  }
  return 0;
}

/* ---- running git, sandboxed ---- */

static char **
git_env(const sw_git_opts_t *o, const char *home)
{
  char **env = xcalloc(1, sizeof(char *));
  const char *path = getenv("PATH");
  sw_env_set(&env, "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
  sw_env_set(&env, "HOME", home);
  sw_env_set(&env, "GIT_CONFIG_NOSYSTEM", "1");
  sw_env_set(&env, "GIT_CONFIG_GLOBAL", "/dev/null");
  sw_env_set(&env, "GIT_TERMINAL_PROMPT", "0");
  sw_env_set(&env, "GIT_ASKPASS", "/bin/false");
  sw_env_set(&env, "SSH_ASKPASS", "/bin/false");
  sw_env_set(&env, "GIT_PROTOCOL_FROM_USER", "0");
  sw_env_set(&env, "GIT_SSH_COMMAND",
             "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -F /dev/null");
  sw_env_set(&env, "LC_ALL", "C");
  if (o->ssh_auth_sock)
    sw_env_set(&env, "SSH_AUTH_SOCK", o->ssh_auth_sock);
  static const char *const proxies[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                        "NO_PROXY",   "no_proxy",   "ALL_PROXY",   "all_proxy"};
  for (size_t i = 0; i < SW_ARRAY_SIZE(proxies); i++) {
    const char *v = o->proxy_env ? sw_env_get(o->proxy_env, proxies[i]) : NULL;
    if (v == NULL)
      v = getenv(proxies[i]);
    if (v && *v)
      sw_env_set(&env, proxies[i], v);
  }
  return env;
}

/* git -c … ARGS in cwd (may be NULL); *out (may be NULL) gets stdout; stderr is kept for the
 * error message. */
static int
git_run(const sw_git_opts_t *o, const char *home, const char *cwd, char *const *args, char **out,
        sw_error_t *err)
{
  static const char *const pre[] = {
      "git",
      "-c",
      "protocol.allow=never",
      "-c",
      "protocol.https.allow=always",
      "-c",
      "protocol.http.allow=always",
      "-c",
      "protocol.ssh.allow=always",
      "-c",
      "protocol.git.allow=always",
      "-c",
      "core.hooksPath=/dev/null",
      "-c",
      "advice.detachedHead=false",
      "-c",
      "init.defaultBranch=main",
  };
  _cleanup_strv_ char **argv = xcalloc(1, sizeof(char *));
  for (size_t i = 0; i < SW_ARRAY_SIZE(pre); i++)
    sw_strv_push(&argv, pre[i]);
  if (cwd) {
    sw_strv_push(&argv, "-C");
    sw_strv_push(&argv, cwd);
  }
  for (size_t i = 0; args[i]; i++)
    sw_strv_push(&argv, args[i]);
  _cleanup_strv_ char **env = git_env(o, home);
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) < 0)
    return sw_error(err, errno, "pipe");
  if (pipe2(pe, O_CLOEXEC) < 0) {
    close(po[0]);
    close(po[1]);
    return sw_error(err, errno, "pipe");
  }
  _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, "git", &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  if (rc != 0) {
    close(po[0]);
    close(pe[0]);
    return sw_error(err, rc, "run `git` (Debian package git)");
  }
  /* stdout then stderr: git writes little to stderr with -q, and a pipe holds 64 KiB. */
  sw_buf_t ob = {0}, eb = {0};
  char buf[8192];
  ssize_t n;
  while ((n = read(po[0], buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    if (ob.len < GIT_OUT_MAX)
      sw_buf_append(&ob, buf, (size_t)n);
  }
  while ((n = read(pe[0], buf, sizeof(buf))) > 0)
    if (eb.len < 65536)
      sw_buf_append(&eb, buf, (size_t)n);
  close(po[0]);
  close(pe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  sw_buf_puts(&ob, "");
  sw_buf_puts(&eb, "");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char *e = eb.data;
    while (*e && e[strlen(e) - 1] == '\n')
      e[strlen(e) - 1] = '\0';
    rc = sw_error(err, 0, "`git %s` failed: %s", args[0], *e ? e : "(no message)");
  }
  if (rc == 0 && out)
    *out = sw_buf_steal(&ob);
  sw_buf_free(&ob);
  sw_buf_free(&eb);
  return rc;
}

static bool
is_commit(const char *s)
{
  if (s == NULL || strlen(s) != 40)
    return false;
  for (const char *p = s; *p; p++)
    if (!strchr("0123456789abcdef", *p))
      return false;
  return true;
}

/* In `git ls-remote` output, the commit of the best match for ref. */
static bool
pick_ref(const char *ls, const char *ref, char commit[41])
{
  _cleanup_free_ char *heads = xasprintf("refs/heads/%s", ref);
  _cleanup_free_ char *tags = xasprintf("refs/tags/%s", ref);
  _cleanup_free_ char *peeled = xasprintf("refs/tags/%s^{}", ref);
  const char *order[] = {peeled, ref, tags, heads};
  for (size_t k = 0; k < SW_ARRAY_SIZE(order); k++) {
    for (const char *l = ls; *l; l += strcspn(l, "\n"), l += *l == '\n') {
      size_t len = strcspn(l, "\n");
      const char *tab = memchr(l, '\t', len);
      if (tab == NULL || tab - l != 40)
        continue;
      size_t nl = len - 41;
      if (strlen(order[k]) == nl && strncmp(tab + 1, order[k], nl) == 0) {
        memcpy(commit, l, 40);
        commit[40] = '\0';
        return is_commit(commit);
      }
    }
  }
  return false;
}

static char *
temp_home(sw_error_t *err)
{
  char *d = xstrdup("/tmp/slipway-git-XXXXXX");
  if (mkdtemp(d) == NULL) {
    sw_error(err, errno, "mkdtemp `%s`", d);
    free(d);
    return NULL;
  }
  return d;
}

static void
rm_home(char *home)
{
  sw_error_t e = NULL;
  if (home)
    sw_rm_rf(home, &e);
  sw_error_release(&e);
  free(home);
}

int
sw_git_resolve(const sw_git_src_t *g, const sw_git_opts_t *o, char commit[41], sw_error_t *err)
{
  if (is_commit(g->ref)) {
    memcpy(commit, g->ref, 41);
    return 0;
  }
  char *home = temp_home(err);
  if (home == NULL)
    return -1;
  const char *ref = g->ref ? g->ref : "HEAD";
  char *args[] = {"ls-remote", "--", g->remote, (char *)ref, NULL};
  _cleanup_free_ char *out = NULL;
  int rc = git_run(o, home, NULL, args, &out, err);
  rm_home(home);
  if (rc < 0)
    return sw_error_wrap(err, "%s", g->remote);
  if (!pick_ref(out, ref, commit))
    return sw_error(err, 0, "%s: no branch or tag `%s` in the repository", g->remote, ref);
  return 0;
}

int
sw_git_checkout(const sw_git_src_t *g, const sw_git_opts_t *o, const char *commit,
                bool keep_git_dir, const char *dir, char **root_out, char **ignore_out,
                sw_error_t *err)
{
  _cleanup_free_ char *tree = xasprintf("%s/tree", dir);
  _cleanup_free_ char *home = xasprintf("%s/home", dir);
  _cleanup_free_ char *ignore = xasprintf("%s/none.dockerignore", dir);
  if (mkdir(home, 0700) < 0)
    return sw_error(err, errno, "mkdir `%s`", home);
  if (sw_write_file_atomic(ignore, "", 0, 0600, err) < 0)
    return -1;
  char *init[] = {"init", "-q", tree, NULL};
  if (git_run(o, home, NULL, init, NULL, err) < 0)
    return sw_error_wrap(err, "%s", g->remote);
  /* The ref as resolved (a commit needs a server that serves any reachable one); shallow when
   * the server can (a "dumb" HTTP server cannot: then the whole history). */
  const char *what = g->ref && !is_commit(g->ref) ? g->ref : commit;
  char *shallow[] = {"fetch", "-q", "--no-tags", "--depth=1", "--", g->remote, (char *)what, NULL};
  char *full[] = {"fetch", "-q", "--no-tags", "--", g->remote, (char *)what, NULL};
  sw_error_t e = NULL;
  if (git_run(o, home, tree, shallow, NULL, &e) < 0) {
    sw_debug("shallow fetch of %s failed (%s): fetching all", g->remote, e->msg);
    sw_error_release(&e);
    if (git_run(o, home, tree, full, NULL, err) < 0)
      return sw_error_wrap(err, "%s", g->remote);
  }
  char *checkout[] = {"checkout", "-q", "--detach", (char *)commit, NULL};
  if (git_run(o, home, tree, checkout, NULL, err) < 0)
    return sw_error_wrap(err, "%s: commit %s (the ref moved while building? build again)",
                         g->remote, commit);
  if (!keep_git_dir) {
    _cleanup_free_ char *dotgit = xasprintf("%s/.git", tree);
    if (sw_rm_rf(dotgit, err) < 0)
      return -1;
  }
  _cleanup_free_ char *want = g->subdir ? xasprintf("%s/%s", tree, g->subdir) : xstrdup(tree);
  /* A link in the repository must not take the copy out of it. */
  _cleanup_free_ char *root = realpath(want, NULL), *top = realpath(tree, NULL);
  struct stat st;
  if (root == NULL || top == NULL || stat(root, &st) < 0 || !S_ISDIR(st.st_mode) ||
      (strcmp(root, top) != 0 && !(sw_str_has_prefix(root, top) && root[strlen(top)] == '/')))
    return sw_error(err, 0, "%s#%s: no directory `%s` in the repository", g->remote,
                    g->ref ? g->ref : "", g->subdir ? g->subdir : "");
  *root_out = steal_ptr(&root);
  *ignore_out = xasprintf("%s/none", dir);
  return 0;
}
