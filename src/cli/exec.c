/* slipway exec: run a command in a running container, as `docker exec` does: in the namespaces
 * and root of its pid 1 (sandbox.h, join_pid), with the container's environment, user, working
 * directory and security settings (capabilities, seccomp, no_new_privs); its exit status is
 * slipway's. */
#include "../lib/container.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway exec [OPTIONS] CONTAINER COMMAND [ARG...]\n"
    "\n"
    "Run a command in a running container: its namespaces, filesystem, environment and\n"
    "security settings. Exits with the command's status.\n"
    "\n"
    "Options:\n"
    "  -i, --interactive     keep stdin attached\n"
    "  -t, --tty             give the command a terminal of its own (a new pty, relayed)\n"
    "  -e, --env K=V         set an environment variable\n"
    "  -u, --user USER[:GROUP]  user name or uid (and group) to run as\n"
    "  -w, --workdir DIR     working directory inside the container\n"
    "  -h, --help            print this help\n";

struct exec_flags {
  bool interactive, tty;
  char **env;
  const char *user, *workdir;
};

/* HOSTNAME as pid 1 got it (run sets it after the config is written). */
static void
add_hostname(char ***env, pid_t pid)
{
  _cleanup_free_ char *path = xasprintf("/proc/%d/environ", (int)pid);
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  if (sw_env_get(*env, "HOSTNAME") || sw_read_file(path, 1 << 20, &text, &len, NULL) < 0)
    return;
  for (size_t off = 0; off < len; off += strlen(text + off) + 1)
    if (sw_str_has_prefix(text + off, "HOSTNAME=")) {
      sw_env_set(env, "HOSTNAME", text + off + strlen("HOSTNAME="));
      return;
    }
}

static int
exec_in(sw_container_t *c, const struct exec_flags *f, char **argv, int *status, sw_error_t *err)
{
  sw_container_state_t st;
  sw_container_state_read(c, &st);
  bool up = strcmp(st.status, "running") == 0 && st.pid > 0;
  sw_container_state_clear(&st);
  if (!up)
    return sw_error(err, 0, "container `%s` is not running (see `slipway ps -a`)", c->name);
  if (f->tty && f->interactive && !isatty(STDIN_FILENO))
    return sw_error(err, 0, "the input device is not a TTY: drop -t, or run from a terminal");

  json_t *cfg = c->config;
  _cleanup_strv_ char **env = sw_cli_json_strv(json_object_get(cfg, "Env"));
  for (char **e = f->env; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (eq) {
      _cleanup_free_ char *k = xstrndup(*e, (size_t)(eq - *e));
      sw_env_set(&env, k, eq + 1);
    } else if (getenv(*e)) {
      sw_env_set(&env, *e, getenv(*e));
    }
  }
  add_hostname(&env, st.pid);
  if (f->tty && sw_env_get(env, "TERM") == NULL)
    sw_env_set(&env, "TERM", "xterm");

  sw_sandbox_opts_t o;
  sw_sandbox_status_t sst = {0};
  sw_sandbox_opts_init(&o);
  o.join_pid = st.pid;
  o.argv = argv;
  o.env = env;
  o.cwd = f->workdir ? f->workdir : sw_cli_json_str(cfg, "WorkingDir");
  o.user = f->user ? f->user : sw_cli_json_str(cfg, "User");
  o.stdin_fd = f->interactive ? SW_STDIO_INHERIT : SW_STDIO_NULL;
  o.forward_signals = true;
  o.tty = f->tty;
  json_t *caps = json_object_get(cfg, "Caps");
  o.caps = json_is_integer(caps) ? (uint64_t)json_integer_value(caps) : SW_CAPS_DEFAULT;
  o.privileged = json_is_true(json_object_get(cfg, "Privileged"));
  o.no_new_privs = json_is_true(json_object_get(cfg, "NoNewPrivs"));
  o.seccomp_unconfined = json_is_true(json_object_get(cfg, "SeccompUnconfined"));
  if (sw_sandbox_run(&o, &sst, err) < 0)
    return -1;
  *status = sw_sandbox_status_code(&sst);
  return 0;
}

int
cmd_exec(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"interactive", no_argument, NULL, 'i'},
                                       {"tty", no_argument, NULL, 't'},
                                       {"env", required_argument, NULL, 'e'},
                                       {"user", required_argument, NULL, 'u'},
                                       {"workdir", required_argument, NULL, 'w'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct exec_flags f = {0};
  sw_error_t err = NULL;
  int c, status = 0, rc;

  while ((c = getopt_long(argc, argv, "+ite:u:w:h", opts, NULL)) != -1) {
    switch (c) {
    case 'i':
      f.interactive = true;
      break;
    case 't':
      f.tty = true;
      break;
    case 'e':
      sw_strv_push(&f.env, optarg);
      break;
    case 'u':
      f.user = optarg;
      break;
    case 'w':
      f.workdir = optarg;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      sw_strv_free(f.env);
      return sw_cli_usage_error("exec", "bad flags");
    }
  }
  if (argc - optind < 2) {
    sw_strv_free(f.env);
    return sw_cli_usage_error("exec", "`exec` needs a container and a command");
  }
  _cleanup_free_ char *cdir = sw_cli_containers_dir(g);
  _cleanup_(sw_container_freep) sw_container_t *ctr = NULL;
  if (sw_container_open(cdir, argv[optind], &ctr, &err) < 0 ||
      exec_in(ctr, &f, argv + optind + 1, &status, &err) < 0)
    rc = sw_error_report(&err);
  else
    rc = status;
  sw_strv_free(f.env);
  return rc;
}
