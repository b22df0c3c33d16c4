/* slipway: `login`: check credentials against a registry, then store them where `docker login`
 * does (~/.docker/config.json `auths`, mode 0600), so docker, skopeo and slipway share them. */
#include "registry-private.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>

/* Normalise what the user typed: "https://host:5000/v2/" → "host:5000"; Hub names → docker.io. */
static char *
login_host(const char *registry)
{
  const char *s = registry;
  if (sw_str_has_prefix(s, "https://"))
    s += 8;
  else if (sw_str_has_prefix(s, "http://"))
    s += 7;
  char *h = xstrndup(s, strcspn(s, "/"));
  if (strcmp(h, "index.docker.io") == 0 || strcmp(h, "registry-1.docker.io") == 0) {
    free(h);
    h = xstrdup("docker.io");
  }
  return h;
}

static int
config_save(const char *path, const char *host, const char *user, const char *pass, sw_error_t *err)
{
  _cleanup_free_ char *old = NULL;
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ char *dir = xstrdup(path);

  if (sw_read_file(path, 1 << 20, &old, NULL, NULL) < 0 && errno != ENOENT)
    return sw_error(err, errno, "read `%s`", path);
  _cleanup_free_ char *where = NULL;
  _cleanup_free_ char *helper = sw_credhelper_name(old, host, &where);
  if (helper) { /* the secret goes to the helper; the file keeps an empty entry, as docker */
    if (sw_credhelper_store(helper, host, user, pass, err) < 0)
      return sw_error_wrap(err, "%s in `%s`", where, path);
    if (sw_docker_config_mark(old, host, &text, err) < 0)
      return sw_error_wrap(err, "`%s`", path);
  } else if (sw_docker_config_set(old, host, user, pass, &text, err) < 0) {
    return sw_error_wrap(err, "`%s`", path);
  }
  if (sw_mkdir_p(dirname(dir), 0700, err) < 0)
    return -1;
  /* The file holds passwords: 0600 from the start, never world-readable for a moment. */
  if (sw_write_file_atomic(path, text, strlen(text), 0600, err) < 0)
    return -1;
  if (chmod(path, 0600) < 0)
    return sw_error(err, errno, "chmod `%s`", path);
  return 0;
}

int
sw_registry_login(const char *registry, const char *user, const char *pass,
                  const sw_registry_opts_t *opts, sw_error_t *err)
{
  _cleanup_free_ char *host = login_host(registry);
  _cleanup_(sw_reg_freep) sw_reg_t *r = NULL;
  _cleanup_free_ char *path =
      opts && opts->docker_config ? xstrdup(opts->docker_config) : sw_docker_config_path();
  sw_http_req_t req = {.method = "GET", .url = "/v2/", .body_fd = -1, .max_body = 1 << 16};
  sw_http_resp_t resp = {0};

  if (*host == '\0')
    return sw_error_code(err, SW_EXIT_USAGE, 0, "login: empty registry name");
  sw_registry_opts_t o = opts ? *opts : (sw_registry_opts_t){0};
  o.no_stored_creds = true;
  r = sw_reg_new(host, &o, err);
  if (r == NULL)
    return -1;
  sw_reg_set_creds(r, user, pass);
  if (sw_reg_do(r, &req, &resp, err) < 0)
    return sw_error_wrap(err, "login to %s", host);
  if (resp.status != 200) {
    if (resp.status == 401)
      sw_error(err, 0,
               "login to %s: GET %s/v2/: HTTP 401: the registry refused user `%s`; check "
               "the user name and password",
               host, sw_reg_base(r), user);
    else
      sw_reg_status_error(r, "GET", "/v2/", &resp, err);
    sw_http_resp_clear(&resp);
    return -1;
  }
  sw_http_resp_clear(&resp);
  if (config_save(path, host, user, pass, err) < 0)
    return sw_error_wrap(err, "login to %s", host);
  return 0;
}
