/* slipway: docker credential helpers (`credsStore`, `credHelpers` in ~/.docker/config.json),
 * as the docker CLI uses them: `docker-credential-NAME get|store|erase` found in PATH, the
 * server address on stdin (`https://index.docker.io/v1/` for Docker Hub, else the host), JSON
 * `{"ServerURL","Username","Secret"}` on stdout. credHelpers[host] wins over credsStore; a host
 * with a helper takes its credentials from the helper only (the file's `auths` entry for it is
 * an empty marker, as docker writes it). Also `logout`. */
#include "registry-private.h"

#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define HELPER_OUT_MAX (1u << 20)

char *
sw_credhelper_name(const char *json, const char *host, char **where)
{
  json_t *root = json ? json_loads(json, 0, NULL) : NULL;
  char *name = NULL;
  json_t *helpers = json_object_get(root, "credHelpers");
  const char *k;
  json_t *v;
  json_object_foreach(helpers, k, v)
  {
    if (name == NULL && json_is_string(v) && sw_config_key_matches(k, host)) {
      name = xstrdup(json_string_value(v));
      if (where)
        *where = xasprintf("credHelpers[\"%s\"]", k);
    }
  }
  json_t *store = json_object_get(root, "credsStore");
  if (name == NULL && json_is_string(store) && json_string_value(store)[0]) {
    name = xstrdup(json_string_value(store));
    if (where)
      *where = xstrdup("credsStore");
  }
  json_decref(root);
  return name;
}

/* Run docker-credential-NAME VERB with `input` on stdin; *out gets stdout and stderr, *status
 * the wait status. A helper missing from PATH is an error naming it. */
static int
helper_run(const char *name, const char *verb, const char *input, char **out, int *status,
           sw_error_t *err)
{
  _cleanup_free_ char *prog = xasprintf("docker-credential-%s", name);
  int in[2], outp[2];
  /* Sockets, not pipes: a helper that exits without reading its stdin must not SIGPIPE us. */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
    return sw_error(err, errno, "credential helper `%s`: socketpair", prog);
  if (pipe2(outp, O_CLOEXEC) < 0) {
    close(in[0]);
    close(in[1]);
    return sw_error(err, errno, "credential helper `%s`: pipe", prog);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[1], 0);
  posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
  posix_spawn_file_actions_adddup2(&fa, outp[1], 2);
  char *argv[] = {prog, (char *)verb, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[1]);
  close(outp[1]);
  if (rc != 0) {
    close(in[0]);
    close(outp[0]);
    if (rc == ENOENT)
      return sw_error(err, 0,
                      "credential helper `%s` not found in PATH: install it, or remove it from "
                      "the docker config",
                      prog);
    return sw_error(err, rc, "run credential helper `%s`", prog);
  }
  size_t len = strlen(input);
  if (len && send(in[0], input, len, MSG_NOSIGNAL) < 0 && errno != EPIPE)
    sw_debug("credential helper %s: write: %s", prog, strerror(errno));
  close(in[0]);
  sw_buf_t b = {0};
  char buf[4096];
  ssize_t n;
  while ((n = read(outp[0], buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    if (b.len < HELPER_OUT_MAX)
      sw_buf_append(&b, buf, (size_t)n);
  }
  close(outp[0]);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR)
    ;
  sw_buf_puts(&b, "");
  *out = sw_buf_steal(&b);
  return 0;
}

/* "exit status 1: <its output>" for a helper that failed. */
static int
helper_failed(const char *name, const char *verb, int status, char *out, sw_error_t *err)
{
  out[strcspn(out, "\n")] = '\0';
  if (WIFEXITED(status))
    return sw_error(err, 0,
                    "credential helper `docker-credential-%s %s` failed (exit status %d)%s%s", name,
                    verb, WEXITSTATUS(status), *out ? ": " : "", out);
  return sw_error(err, 0, "credential helper `docker-credential-%s %s` was killed by signal %d",
                  name, verb, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static bool
not_found(const char *out)
{
  return strstr(out, "credentials not found") != NULL;
}

int
sw_credhelper_get(const char *name, const char *host, char **user, char **pass, sw_error_t *err)
{
  _cleanup_free_ char *server = sw_docker_config_key(host);
  _cleanup_free_ char *out = NULL;
  int status = 0;
  if (helper_run(name, "get", server, &out, &status, err) < 0)
    return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status) && not_found(out))
      return 0;
    return helper_failed(name, "get", status, out, err);
  }
  json_t *j = json_loads(out, 0, NULL);
  const char *u = json_string_value(json_object_get(j, "Username"));
  const char *s = json_string_value(json_object_get(j, "Secret"));
  int rc = 0;
  if (j == NULL || u == NULL || s == NULL)
    rc = sw_error(err, 0,
                  "credential helper `docker-credential-%s get` for %s: its answer is not JSON "
                  "with Username and Secret",
                  name, server);
  else if (*s) {
    *user = xstrdup(u);
    *pass = xstrdup(s);
    rc = 1;
  }
  if (j && s)
    explicit_bzero((char *)s, strlen(s));
  json_decref(j);
  explicit_bzero(out, strlen(out));
  return rc;
}

int
sw_credhelper_store(const char *name, const char *host, const char *user, const char *pass,
                    sw_error_t *err)
{
  _cleanup_free_ char *server = sw_docker_config_key(host);
  json_t *j = json_pack("{s:s, s:s, s:s}", "ServerURL", server, "Username", user, "Secret", pass);
  char *input = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  _cleanup_free_ char *out = NULL;
  int status = 0;
  int rc = helper_run(name, "store", input, &out, &status, err);
  explicit_bzero(input, strlen(input));
  free(input);
  if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
    rc = helper_failed(name, "store", status, out, err);
  return rc;
}

int
sw_credhelper_erase(const char *name, const char *host, sw_error_t *err)
{
  _cleanup_free_ char *server = sw_docker_config_key(host);
  _cleanup_free_ char *out = NULL;
  int status = 0;
  if (helper_run(name, "erase", server, &out, &status, err) < 0)
    return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return not_found(out) ? 0 : helper_failed(name, "erase", status, out, err);
  return 0;
}

int
sw_credhelper_has(const char *name, const char *host, sw_error_t *err)
{
  _cleanup_free_ char *out = NULL;
  int status = 0;
  if (helper_run(name, "list", "", &out, &status, err) < 0)
    return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return helper_failed(name, "list", status, out, err);
  json_t *j = json_loads(out, 0, NULL);
  const char *k;
  json_t *v;
  int has = 0;
  json_object_foreach(j, k, v)
  {
    if (sw_config_key_matches(k, host))
      has = 1;
  }
  json_decref(j);
  return has;
}

/* ---- the config file's side ---- */

static json_t *
config_parse(const char *json, sw_error_t *err)
{
  json_error_t jerr;
  json_t *root = json && *json ? json_loads(json, 0, &jerr) : json_object();
  if (root == NULL || !json_is_object(root)) {
    json_decref(root);
    sw_error(err, 0, "invalid JSON at line %d: %s", jerr.line, jerr.text);
    return NULL;
  }
  return root;
}

/* Drop every `auths` entry of host; returns how many there were. */
static int
drop_auths(json_t *root, const char *host)
{
  json_t *auths = json_object_get(root, "auths");
  const char *k;
  json_t *v;
  void *tmp;
  int n = 0;
  json_object_foreach_safe(auths, tmp, k, v)
  {
    if (sw_config_key_matches(k, host)) {
      json_object_del(auths, k);
      n++;
    }
  }
  return n;
}

static char *
config_text(json_t *root)
{
  char *s = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
  if (s == NULL)
    abort();
  char *out = xasprintf("%s\n", s);
  free(s);
  return out;
}

int
sw_docker_config_mark(const char *json, const char *host, char **out, sw_error_t *err)
{
  json_t *root = config_parse(json, err);
  if (root == NULL)
    return -1;
  drop_auths(root, host);
  json_t *auths = json_object_get(root, "auths");
  if (!json_is_object(auths)) {
    auths = json_object();
    json_object_set_new(root, "auths", auths);
  }
  _cleanup_free_ char *key = sw_docker_config_key(host);
  json_object_set_new(auths, key, json_object());
  *out = config_text(root);
  json_decref(root);
  return 0;
}

/* Normalise what the user typed: "https://host:5000/v2/" → "host:5000"; Hub names → docker.io. */
static char *
registry_host(const char *registry)
{
  _cleanup_free_ char *h = sw_config_key_host(registry);
  if (strcmp(h, "index.docker.io") == 0 || strcmp(h, "registry-1.docker.io") == 0)
    return xstrdup("docker.io");
  return steal_ptr(&h);
}

int
sw_registry_logout(const char *registry, const sw_registry_opts_t *opts, bool *was_in,
                   sw_error_t *err)
{
  _cleanup_free_ char *host = registry_host(registry && *registry ? registry : "docker.io");
  _cleanup_free_ char *path =
      opts && opts->docker_config ? xstrdup(opts->docker_config) : sw_docker_config_path();
  _cleanup_free_ char *json = NULL, *helper = NULL, *where = NULL, *text = NULL;
  *was_in = false;
  if (sw_read_file(path, 1 << 20, &json, NULL, NULL) < 0)
    return errno == ENOENT ? 0 : sw_error(err, errno, "read `%s`", path);
  helper = sw_credhelper_name(json, host, &where);
  int has = helper ? sw_credhelper_has(helper, host, err) : 0;
  if (has < 0 || (has && sw_credhelper_erase(helper, host, err) < 0))
    return sw_error_wrap(err, "logout from %s (%s in `%s`)", host, where, path);
  json_t *root = config_parse(json, err);
  if (root == NULL)
    return sw_error_wrap(err, "`%s`", path);
  *was_in = drop_auths(root, host) > 0 || has;
  text = config_text(root);
  json_decref(root);
  return sw_write_file_atomic(path, text, strlen(text), 0600, err);
}
