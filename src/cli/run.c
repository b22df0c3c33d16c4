/* slipway run: start an image's command in a sandbox, as `docker run` does (in the foreground):
 * ENTRYPOINT/CMD semantics, the image's Env/WorkingDir/User with flags overriding, a writable
 * upper layer in ROOT/containers/<id>/ that --rm discards, signals forwarded, and the process's
 * exit status (128+signal if killed) as slipway's. */
#include "cli.h"

#include "../lib/binfmt.h"
#include "../lib/container.h"
#include "../lib/image.h"
#include "../lib/platform.h"
#include "../lib/registry.h"
#include "../lib/sandbox.h"
#include "../lib/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

struct run_flags {
  bool rm, interactive, tty, detach;
  const char *restart;
  const char *pull; /* missing (NULL), always, never */
  char *platform;   /* --platform, normalised (NULL: the image's) */
  char **env;
  char **env_files;
  const char *workdir, *user, *entrypoint, *name, *hostname, *rootfs;
  bool has_entrypoint;
  sw_net_t network;
  char **publish;
  bool publish_all;
  char **volumes;
  char **cap_add, **cap_drop;
  bool privileged, no_new_privs, seccomp_unconfined, systempaths_unconfined;
};

static void
usage(FILE *f)
{
  fputs("Usage: slipway run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
        "\n"
        "Run a command in a new container (in the foreground, or in the background with -d).\n"
        "\n"
        "Options:\n"
        "  -d, --detach             run in the background: print the container's id and return;\n"
        "                           a monitor process keeps it and its logs (`slipway logs`)\n"
        "      --restart POLICY     `no` or `on-failure[:N]` (restarted by its monitor; with -d)\n"
        "      --rm                 remove the container when it exits\n"
        "      --pull POLICY        `missing` (default: pull the image if the store lacks it),\n"
        "                           `always` (pull it first), `never`\n"
        "      --platform OS/ARCH[/VARIANT]  the image's platform (pulled for it when missing);\n"
        "                           a foreign one runs under qemu-user-static (binfmt_misc)\n"
        "  -e, --env K=V            set an environment variable (K alone: take it from the host)\n"
        "      --env-file FILE      read K=V lines from FILE\n"
        "  -w, --workdir DIR        working directory inside the container\n"
        "  -u, --user USER[:GROUP]  user name or uid (and group) to run as\n"
        "      --entrypoint CMD     override the image's ENTRYPOINT (and drop its CMD)\n"
        "      --network NET        `default`: a network of its own, NATed by slirp4netns;\n"
        "                           `host`: share the host's; `none`: only loopback\n"
        "  -p, --publish [IP:][HOST:]CONTAINER[/udp]  publish a container port on the host\n"
        "                           (no HOST port: a free one, printed)\n"
        "  -P, --publish-all        publish every EXPOSEd port on a free host port\n"
        "  -v, --volume HOST:CTR[:ro]  bind mount a host path\n"
        "      --name NAME          name of the container (its directory in the store)\n"
        "      --hostname NAME      the container's host name\n"
        "  -i, --interactive        keep stdin attached\n"
        "  -t, --tty                give the process a terminal of its own (a new pty, relayed)\n"
        "      --rootfs DIR         run on a root filesystem directory instead of an image\n"
        "      --cap-add CAP        add a Linux capability (NET_ADMIN, CAP_SYS_ADMIN, ALL)\n"
        "      --cap-drop CAP       drop a Linux capability (ALL: keep only the --cap-add ones)\n"
        "      --privileged         every capability, no seccomp, /proc and /sys unmasked\n"
        "      --security-opt OPT   no-new-privileges[:true|false], seccomp=unconfined,\n"
        "                           systempaths=unconfined (no masked /proc and /sys paths)\n"
        "  -h, --help               print this help\n",
        f);
}

/* K=V, or K alone: the host's value if set, else nothing (Docker's -e/--env-file). */
static void
add_env(char ***env, const char *kv)
{
  const char *eq = strchr(kv, '=');
  if (eq) {
    _cleanup_free_ char *k = xstrndup(kv, (size_t)(eq - kv));
    sw_env_set(env, k, eq + 1);
  } else if (getenv(kv)) {
    sw_env_set(env, kv, getenv(kv));
  }
}

static int
read_env_file(char ***env, const char *path, sw_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  char *save = NULL;

  if (sw_read_file(path, 0, &text, NULL, err) < 0)
    return sw_error_wrap(err, "--env-file");
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    while (*line == ' ' || *line == '\t')
      line++;
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
      line[--len] = '\0';
    if (*line == '\0' || *line == '#')
      continue;
    if (*line == '=')
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--env-file `%s`: invalid line `%s`", path, line);
    add_env(env, line);
  }
  return 0;
}

/* Docker's spellings: `no-new-privileges`, `no-new-privileges:true|false` (or `=`),
 * `seccomp=unconfined` and `systempaths=unconfined` (or `:`). `apparmor=` and `label=` are accepted
 * and ignored: slipway applies neither, as Docker on a host without them. */
static int
security_opt(struct run_flags *f, const char *opt)
{
  size_t k = strcspn(opt, "=:");
  const char *v = opt[k] ? opt + k + 1 : NULL;

  if (strncmp(opt, "no-new-privileges", k) == 0 && k == strlen("no-new-privileges")) {
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
      return -1;
    f->no_new_privs = v == NULL || strcmp(v, "true") == 0;
    return 0;
  }
  if (k == strlen("seccomp") && strncmp(opt, "seccomp", k) == 0 && v &&
      strcmp(v, "unconfined") == 0) {
    f->seccomp_unconfined = true;
    return 0;
  }
  if (k == strlen("systempaths") && strncmp(opt, "systempaths", k) == 0 && v &&
      strcmp(v, "unconfined") == 0) {
    f->systempaths_unconfined = true;
    return 0;
  }
  if (v && ((k == strlen("apparmor") && strncmp(opt, "apparmor", k) == 0) ||
            (k == strlen("label") && strncmp(opt, "label", k) == 0)))
    return 0;
  return -1;
}

static int
parse_flags(int argc, char **argv, struct run_flags *f)
{
  enum {
    O_RM = 256,
    O_ENV_FILE,
    O_ENTRYPOINT,
    O_NETWORK,
    O_NAME,
    O_HOSTNAME,
    O_ROOTFS,
    O_CAP_ADD,
    O_CAP_DROP,
    O_PRIVILEGED,
    O_SECURITY_OPT,
    O_RESTART,
    O_PULL,
    O_PLATFORM
  };
  static const struct option longopts[] = {
      {"rm", no_argument, NULL, O_RM},
      {"detach", no_argument, NULL, 'd'},
      {"restart", required_argument, NULL, O_RESTART},
      {"pull", required_argument, NULL, O_PULL},
      {"platform", required_argument, NULL, O_PLATFORM},
      {"env", required_argument, NULL, 'e'},
      {"env-file", required_argument, NULL, O_ENV_FILE},
      {"workdir", required_argument, NULL, 'w'},
      {"user", required_argument, NULL, 'u'},
      {"entrypoint", required_argument, NULL, O_ENTRYPOINT},
      {"network", required_argument, NULL, O_NETWORK},
      {"net", required_argument, NULL, O_NETWORK},
      {"publish", required_argument, NULL, 'p'},
      {"publish-all", no_argument, NULL, 'P'},
      {"volume", required_argument, NULL, 'v'},
      {"name", required_argument, NULL, O_NAME},
      {"hostname", required_argument, NULL, O_HOSTNAME},
      {"interactive", no_argument, NULL, 'i'},
      {"tty", no_argument, NULL, 't'},
      {"rootfs", required_argument, NULL, O_ROOTFS},
      {"cap-add", required_argument, NULL, O_CAP_ADD},
      {"cap-drop", required_argument, NULL, O_CAP_DROP},
      {"privileged", no_argument, NULL, O_PRIVILEGED},
      {"security-opt", required_argument, NULL, O_SECURITY_OPT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;

  while ((c = getopt_long(argc, argv, "+de:w:u:v:p:Pith", longopts, NULL)) != -1) {
    switch (c) {
    case O_RM:
      f->rm = true;
      break;
    case 'd':
      f->detach = true;
      break;
    case O_RESTART:
      f->restart = optarg;
      break;
    case O_PULL:
      if (strcmp(optarg, "missing") != 0 && strcmp(optarg, "always") != 0 &&
          strcmp(optarg, "never") != 0)
        return sw_cli_usage_error("run", "--pull `%s`: use `missing`, `always` or `never`", optarg);
      f->pull = optarg;
      break;
    case O_PLATFORM: {
      sw_error_t err = NULL;
      free(f->platform);
      f->platform = NULL;
      if (sw_platform_normalize(optarg, &f->platform, &err) < 0) {
        int code = sw_cli_usage_error("run", "--platform: %s", err->msg);
        sw_error_release(&err);
        return code;
      }
      break;
    }
    case 'e':
      sw_strv_push(&f->env, optarg);
      break;
    case O_ENV_FILE:
      sw_strv_push(&f->env_files, optarg);
      break;
    case 'w':
      f->workdir = optarg;
      break;
    case 'u':
      f->user = optarg;
      break;
    case O_ENTRYPOINT:
      f->entrypoint = optarg;
      f->has_entrypoint = true;
      break;
    case O_NETWORK:
      if (strcmp(optarg, "default") == 0 || strcmp(optarg, "bridge") == 0)
        f->network = SW_NET_PRIVATE;
      else if (strcmp(optarg, "host") == 0)
        f->network = SW_NET_HOST;
      else if (strcmp(optarg, "none") == 0)
        f->network = SW_NET_NONE;
      else
        return sw_cli_usage_error("run", "--network `%s`: use `default`, `host` or `none`", optarg);
      break;
    case 'p':
      sw_strv_push(&f->publish, optarg);
      break;
    case 'P':
      f->publish_all = true;
      break;
    case 'v':
      sw_strv_push(&f->volumes, optarg);
      break;
    case O_NAME:
      f->name = optarg;
      break;
    case O_HOSTNAME:
      f->hostname = optarg;
      break;
    case 'i':
      f->interactive = true;
      break;
    case 't':
      f->tty = true;
      break;
    case O_ROOTFS:
      f->rootfs = optarg;
      break;
    case O_CAP_ADD:
      sw_strv_push(&f->cap_add, optarg);
      break;
    case O_CAP_DROP:
      sw_strv_push(&f->cap_drop, optarg);
      break;
    case O_PRIVILEGED:
      f->privileged = true;
      break;
    case O_SECURITY_OPT:
      if (security_opt(f, optarg) < 0)
        return sw_cli_usage_error(
            "run",
            "--security-opt `%s`: use no-new-privileges[:true|false], "
            "systempaths=unconfined or seccomp=unconfined (seccomp profiles, AppArmor and SELinux "
            "are not supported)",
            optarg);
      break;
    case 'h':
      usage(stdout);
      return -1;
    default:
      return sw_cli_usage_error("run", "bad flag");
    }
  }
  return 0;
}

/* -v HOST:CTR[:ro|rw]; a missing host directory is created, as Docker does. */
static int
parse_volumes(char **vols, sw_mount_t **out, size_t *n, sw_error_t *err)
{
  size_t count = sw_strv_len(vols);
  sw_mount_t *m = xcalloc(count + 1, sizeof(*m));

  for (size_t i = 0; i < count; i++) {
    char *v = vols[i];
    char *ctr = strchr(v, ':');
    char *mode = ctr ? strchr(ctr + 1, ':') : NULL;
    if (ctr == NULL || v[0] != '/' || ctr[1] != '/') {
      free(m);
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "-v `%s`: use HOST:CONTAINER[:ro] with absolute paths", v);
    }
    *ctr++ = '\0';
    if (mode)
      *mode++ = '\0';
    if (mode && strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0) {
      free(m);
      return sw_error_code(err, SW_EXIT_USAGE, 0, "-v: mode `%s`: use `ro` or `rw`", mode);
    }
    if (access(v, F_OK) < 0 && sw_mkdir_p(v, 0755, err) < 0) {
      free(m);
      return sw_error_wrap(err, "-v");
    }
    m[i] = (sw_mount_t){.kind = SW_MOUNT_BIND,
                        .source = v,
                        .target = ctr,
                        .readonly = mode && strcmp(mode, "ro") == 0};
  }
  *out = m;
  *n = count;
  return 0;
}

struct published {
  sw_port_t *ports;
  int *fds; /* sw_port_reserve's sockets, held until the container exits */
  size_t n;
};

static void
published_clear(struct published *p)
{
  for (size_t i = 0; i < p->n; i++)
    if (p->fds[i] >= 0)
      close(p->fds[i]);
  free(p->ports);
  free(p->fds);
}

static void
published_add(struct published *p, const sw_port_t *port)
{
  for (size_t i = 0; i < p->n; i++) /* -p wins over -P for the same container port */
    if (p->ports[i].container_port == port->container_port && p->ports[i].udp == port->udp &&
        port->host_port == 0)
      return;
  p->ports = xrealloc(p->ports, (p->n + 1) * sizeof(*p->ports));
  p->fds = xrealloc(p->fds, (p->n + 1) * sizeof(*p->fds));
  p->ports[p->n] = *port;
  p->fds[p->n++] = -1;
}

/* -p specs, then -P's EXPOSEd ports (as Docker: EXPOSE alone publishes nothing); each host
 * port checked and held, a free one picked for `-p CONTAINER` and printed as `docker port`
 * would. */
static int
publish_ports(const struct run_flags *f, json_t *cc, struct published *p, sw_error_t *err)
{
  const char *key;
  json_t *v;
  sw_port_t port;

  for (char **s = f->publish; s && *s; s++) {
    if (sw_port_parse(*s, &port, err) < 0)
      return -1;
    published_add(p, &port);
  }
  if (f->publish_all)
    json_object_foreach(json_object_get(cc, "ExposedPorts"), key, v)
    {
      if (sw_port_parse(key, &port, err) < 0)
        return sw_error_wrap(err, "-P: the image's EXPOSE");
      published_add(p, &port);
    }
  if (p->n > 0 && f->network == SW_NET_HOST) {
    sw_warn("published ports are discarded when using the host's network (--network host)");
    p->n = 0;
  }
  for (size_t i = 0; i < p->n; i++) {
    bool pick = p->ports[i].host_port == 0;
    if (sw_port_reserve(&p->ports[i], &p->fds[i], err) < 0)
      return -1;
    if (pick) {
      char line[64];
      sw_port_format(&p->ports[i], line, sizeof(line));
      fprintf(stderr, "%s\n", line);
    }
  }
  return 0;
}

/* Docker: argv = ENTRYPOINT + (args or CMD); --entrypoint replaces ENTRYPOINT and drops CMD. */
static char **
make_argv(json_t *cc, const struct run_flags *f, char **args)
{
  _cleanup_strv_ char **entry = NULL;
  char **argv = xcalloc(1, sizeof(char *));

  if (f->has_entrypoint)
    entry = f->entrypoint[0] ? sw_strv_dup((char *[]){(char *)f->entrypoint, NULL}) : NULL;
  else
    entry = sw_cli_json_strv(json_object_get(cc, "Entrypoint"));
  for (char **e = entry; e && *e; e++)
    sw_strv_push(&argv, *e);
  if (args[0]) {
    for (char **a = args; *a; a++)
      sw_strv_push(&argv, *a);
  } else if (!f->has_entrypoint) {
    _cleanup_strv_ char **cmd = sw_cli_json_strv(json_object_get(cc, "Cmd"));
    for (char **c = cmd; *c; c++)
      sw_strv_push(&argv, *c);
  }
  return argv;
}

/* Docker's --pull: the store's image, or the registry's when missing (or always). */
static int
find_image(sw_store_t *s, const char *ref, const char *policy, const char *platform,
           sw_image_t **img, sw_error_t *err)
{
  sw_registry_opts_t ro = {.progress = isatty(STDERR_FILENO), .platform = platform};
  bool always = policy && strcmp(policy, "always") == 0;
  bool never = policy && strcmp(policy, "never") == 0;

  if (!always) {
    int r = sw_image_get_platform(s, ref, platform, img, err); /* an index: its image for it */
    if (r != 0)
      return r < 0 ? -1 : 0;
    if (never)
      return sw_image_find(s, ref, img, err); /* the "no such image" error */
    fprintf(stderr, "Unable to find image '%s' locally\n", ref);
  }
  if (sw_registry_pull(s, ref, &ro, img, err) < 0)
    return sw_error_wrap(err, "run: pulling `%s` (--pull=never runs only images of the store)",
                         ref);
  return 0;
}

/* The image's platform: the one --platform asks for (docker's error otherwise); a foreign one
 * runs under emulation (binfmt.c), with docker's notice when --platform did not ask for it. */
static int
image_platform(const char *ref, const sw_image_t *img, const char *wanted, sw_error_t *err)
{
  _cleanup_free_ char *have = sw_platform_of_config(img->config);
  if (wanted && strcmp(have, wanted) != 0)
    return sw_error(err, 0,
                    "image with reference %s was found but does not match the specified "
                    "platform: wanted %s, actual: %s",
                    ref, wanted, have);
  if (sw_platform_native(have))
    return 0;
  if (wanted == NULL) {
    _cleanup_free_ char *host = sw_platform_host();
    sw_warn("the requested image's platform (%s) does not match the detected host platform (%s) "
            "and no specific platform was requested: it runs under emulation",
            have, host);
  }
  return sw_binfmt_ensure(have, err);
}

/* Docker's --restart: `no`, `on-failure` or `on-failure:N` (at most N restarts). */
static int
restart_policy(const char *spec, json_t *config, sw_error_t *err)
{
  if (spec == NULL || strcmp(spec, "no") == 0)
    return 0;
  if (!sw_str_has_prefix(spec, "on-failure") || (spec[10] != '\0' && spec[10] != ':'))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "--restart `%s`: use `no` or `on-failure[:N]` (`always` and "
                         "`unless-stopped` need a daemon that outlives reboots)",
                         spec);
  char *end = NULL;
  long n = spec[10] == ':' ? strtol(spec + 11, &end, 10) : 0;
  if (end && (*end != '\0' || end == spec + 11 || n < 0))
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--restart `%s`: N must be a number", spec);
  json_object_set_new(config, "Restart", json_string("on-failure"));
  json_object_set_new(config, "MaxRetries", json_integer(n));
  return 0;
}

/* What ps shows and stop reads: config.json (container.h). */
static json_t *
container_config(const char *ref, json_t *cc, char **argv, char **env, uint64_t caps,
                 const struct published *pub, const struct run_flags *f)
{
  json_t *cmd = json_array(), *ports = json_array(), *envj = json_array();
  for (char **a = argv; *a; a++)
    json_array_append_new(cmd, json_string(*a));
  for (char **e = env; *e; e++)
    json_array_append_new(envj, json_string(*e));
  for (size_t i = 0; i < pub->n; i++) {
    const sw_port_t *p = &pub->ports[i];
    json_array_append_new(ports, json_sprintf("%s:%u->%u/%s", p->host_ip, p->host_port,
                                              p->container_port, p->udp ? "udp" : "tcp"));
  }
  const char *stop = sw_cli_json_str(cc, "StopSignal");
  const char *cwd = f->workdir ? f->workdir : sw_cli_json_str(cc, "WorkingDir");
  const char *user = f->user ? f->user : sw_cli_json_str(cc, "User");
  /* exec runs its processes with the same environment and security settings */
  return json_pack("{s:s, s:o, s:o, s:s, s:b, s:o, s:s, s:s, s:I, s:b, s:b, s:b}", "Image",
                   ref ? ref : f->rootfs, "Cmd", cmd, "Ports", ports, "StopSignal",
                   stop ? stop : "SIGTERM", "AutoRemove", f->rm, "Env", envj, "WorkingDir",
                   cwd ? cwd : "", "User", user ? user : "", "Caps", (json_int_t)caps, "Privileged",
                   f->privileged, "NoNewPrivs", f->no_new_privs, "SeccompUnconfined",
                   f->seccomp_unconfined || f->privileged);
}

struct container {
  sw_container_t *ctr;
  char *dir, *upper, *work;
  sw_lease_t *lease; /* --rm: prune removes the dir if this process is killed */
};

static int
prepare_container(sw_store_t *s, const char *name, json_t *config, struct container *c,
                  sw_error_t *err)
{
  _cleanup_free_ char *cdir = sw_store_path(s, "containers");
  if (sw_container_create(cdir, name, config, &c->ctr, err) < 0)
    return -1;
  c->dir = xstrdup(c->ctr->dir);
  c->upper = xasprintf("%s/upper", c->dir);
  c->work = xasprintf("%s/work", c->dir);
  if (mkdir(c->upper, 0755) < 0 || mkdir(c->work, 0700) < 0)
    return sw_error(err, errno, "create `%s`", c->upper);
  return 0;
}

static void
container_done(struct container *c, bool rm, const sw_sandbox_status_t *st, bool ok,
               const char *error)
{
  sw_error_t err = NULL;

  if (c->dir == NULL) {
    sw_container_free(c->ctr);
    return;
  }
  if (rm) {
    if (sw_rm_rf(c->dir, &err) < 0)
      sw_error_report(&err);
  } else if (c->ctr) {
    sw_container_finished(c->ctr, ok ? sw_sandbox_status_code(st) : 127, error);
    _cleanup_free_ char *w = xstrdup(c->work);
    sw_rm_rf(w, &err); /* overlay's scratch space is useless once the container stopped */
    sw_error_release(&err);
  }
  sw_container_free(c->ctr); /* drops the owner lock: after the state is final */
  sw_lease_free(c->lease);   /* after the removal: a kill before it leaves the lease stale */
  free(c->dir);
  free(c->upper);
  free(c->work);
}

static void
on_start(void *ctx, pid_t pid)
{
  sw_container_started(ctx, pid);
}

/* -d: the monitor owns the container from here (container.c). */
static int
run_detached(struct container *c, const sw_sandbox_opts_t *o, const struct published *pub,
             int *status, sw_error_t *err)
{
  int r = sw_container_detach(c->ctr, o, pub->fds, pub->n, err);
  if (r == 0)
    printf("%s\n", c->ctr->id);
  sw_container_free(c->ctr);
  free(c->dir);
  free(c->upper);
  free(c->work);
  *status = 0;
  return r;
}

/* The run itself: image config → sandbox options. */
static int
run_image(sw_global_t *g, struct run_flags *f, const char *ref, char **args, int *status,
          sw_error_t *err)
{
  _cleanup_(sw_store_freep) sw_store_t *s = NULL;
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  _cleanup_strv_ char **lowers = NULL, **argv = NULL, **env = NULL;
  _cleanup_free_ sw_mount_t *mounts = NULL;
  struct container c = {0};
  _cleanup_(published_clear) struct published pub = {0};
  sw_sandbox_status_t st = {0};
  sw_sandbox_opts_t o;
  json_t *cc = NULL;
  size_t n_mounts = 0;
  char hostname[64];
  uint64_t caps;

  if (sw_caps_tweak(f->cap_add, f->cap_drop, f->privileged, &caps, err) < 0)
    return -1;
  /* Docker's rule: a pty's input never ends, so `-it` would wait forever after a pipe's. */
  if (f->tty && f->interactive && !isatty(STDIN_FILENO))
    return sw_error(err, 0, "the input device is not a TTY: drop -t, or run from a terminal");

  if (sw_store_open(g->root, &s, err) < 0)
    return -1;
  if (f->rootfs) {
    _cleanup_free_ char *abs = realpath(f->rootfs, NULL);
    if (abs == NULL)
      return sw_error_code(err, SW_EXIT_USAGE, errno, "--rootfs `%s`", f->rootfs);
    sw_strv_push(&lowers, abs);
  } else {
    if (find_image(s, ref, f->pull, f->platform, &img, err) < 0 ||
        image_platform(ref, img, f->platform, err) < 0)
      return -1;
    lowers = sw_image_lowerdirs(s, img);
    for (char **l = lowers; l && *l; l++)
      if (access(*l, F_OK) < 0)
        return sw_error(err, errno, "image `%s`: layer snapshot `%s`", ref, *l);
    cc = json_object_get(img->config, "config");
  }

  argv = make_argv(cc, f, args);
  if (argv[0] == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "no command specified: image `%s` has no ENTRYPOINT or CMD; give one",
                         ref ? ref : f->rootfs);
  env = sw_cli_json_strv(json_object_get(cc, "Env"));
  for (char **e = f->env_files; e && *e; e++)
    if (read_env_file(&env, *e, err) < 0)
      return -1;
  for (char **e = f->env; e && *e; e++)
    add_env(&env, *e);
  if (parse_volumes(f->volumes, &mounts, &n_mounts, err) < 0)
    return -1;
  if (publish_ports(f, cc, &pub, err) < 0)
    return -1;
  json_t *config = container_config(ref, cc, argv, env, caps, &pub, f);
  if (img) /* rmi finds the containers of an image by it */
    json_object_set_new(config, "ImageID", json_string(img->config_digest));
  int pr = restart_policy(f->restart, config, err);
  if (pr == 0 && f->restart && !f->detach && strcmp(f->restart, "no") != 0)
    sw_warn("--restart applies to containers run with -d (their monitor restarts them); this "
            "run in the foreground is not restarted");
  if (pr == 0)
    pr = prepare_container(s, f->name, config, &c, err);
  json_decref(config);
  if (pr < 0 || (f->rm && !f->detach && (c.lease = sw_lease_new(s, c.dir, err)) == NULL)) {
    container_done(&c, true, &st, false, NULL);
    return -1;
  }
  snprintf(hostname, sizeof(hostname), "%s", f->hostname ? f->hostname : strrchr(c.dir, '/') + 1);
  if (sw_env_get(env, "HOSTNAME") == NULL)
    sw_env_set(&env, "HOSTNAME", hostname);
  if (f->tty && sw_env_get(env, "TERM") == NULL) /* Docker's default for -t */
    sw_env_set(&env, "TERM", "xterm");

  sw_sandbox_opts_init(&o);
  o.lowerdirs = lowers;
  o.upperdir = c.upper;
  o.workdir = c.work;
  o.argv = argv;
  o.env = env;
  o.cwd = f->workdir ? f->workdir : sw_cli_json_str(cc, "WorkingDir");
  o.user = f->user ? f->user : sw_cli_json_str(cc, "User");
  o.network = f->network;
  o.ports = pub.ports;
  o.n_ports = pub.n;
  o.hostname = hostname;
  o.mounts = mounts;
  o.n_mounts = n_mounts;
  o.stdin_fd = f->interactive ? SW_STDIO_INHERIT : SW_STDIO_NULL;
  o.forward_signals = true;
  o.tty = f->tty;
  o.caps = caps;
  o.privileged = f->privileged;
  o.no_new_privs = f->no_new_privs;
  o.seccomp_unconfined = f->seccomp_unconfined || f->privileged;
  o.systempaths_unconfined = f->systempaths_unconfined;
  if (f->detach)
    return run_detached(&c, &o, &pub, status, err);
  o.on_start = on_start;
  o.output_ctx = c.ctr;
  int r = sw_sandbox_run(&o, &st, err);
  container_done(&c, f->rm, &st, r == 0, r < 0 ? (*err)->msg : NULL);
  if (r < 0)
    return -1;
  *status = sw_sandbox_status_code(&st);
  return 0;
}

int
cmd_run(int argc, char **argv, sw_global_t *g)
{
  struct run_flags f = {.network = SW_NET_PRIVATE};
  sw_error_t err = NULL;
  int status = 0, r;

  r = parse_flags(argc, argv, &f);
  if (r != 0)
    goto out;
  const char *ref = NULL;
  if (f.rootfs == NULL) {
    if (optind >= argc) {
      r = sw_cli_usage_error("run", "`run` needs an image");
      goto out;
    }
    ref = argv[optind++];
  }
  if (run_image(g, &f, ref, argv + optind, &status, &err) < 0)
    r = sw_error_report(&err);
  else
    r = status;
out:
  sw_strv_free(f.env);
  sw_strv_free(f.env_files);
  sw_strv_free(f.volumes);
  sw_strv_free(f.publish);
  sw_strv_free(f.cap_add);
  sw_strv_free(f.cap_drop);
  free(f.platform);
  return r < 0 ? 0 : r;
}
