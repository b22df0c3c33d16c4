/* slipway: SSH agent forwarding; see ssh-forward.h. */
#include "ssh-forward.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

extern char **environ;

char *
sw_ssh_tmpdir(sw_error_t *err)
{
  char *d = xstrdup("/tmp/slipway-ssh-XXXXXX");
  if (mkdtemp(d) == NULL) {
    sw_error(err, errno, "mkdtemp `%s`", d);
    free(d);
    return NULL;
  }
  return d;
}

/* ---- the relay: one thread, poll over the listener and every connection pair ---- */

struct pair {
  int a, b; /* the step's end, the agent's end */
};

struct sw_ssh_proxy {
  pthread_t thread;
  bool started;
  int listen_fd;
  int stop[2];
  char *path, *upstream;
  struct pair *pairs;
  size_t n;
};

static int
unix_addr(const char *path, struct sockaddr_un *sa, sw_error_t *err)
{
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sa->sun_path))
    return sw_error(err, ENAMETOOLONG, "socket path `%s`", path);
  memcpy(sa->sun_path, path, strlen(path) + 1);
  return 0;
}

static int
connect_unix(const char *path)
{
  struct sockaddr_un sa;
  if (unix_addr(path, &sa, NULL) < 0)
    return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void
pair_close(sw_ssh_proxy_t *p, size_t i)
{
  close(p->pairs[i].a);
  close(p->pairs[i].b);
  p->pairs[i] = p->pairs[--p->n];
}

/* Copy what is readable on `from` to `to`; false at EOF or error. send(MSG_NOSIGNAL): a peer
 * that went away must not SIGPIPE the build. */
static bool
relay(int from, int to)
{
  char buf[16384];
  ssize_t n = read(from, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  for (ssize_t off = 0; n > 0 && off < n;) {
    ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    off += w;
  }
  return n > 0;
}

static void *
proxy_main(void *ud)
{
  sw_ssh_proxy_t *p = ud;
  for (;;) {
    size_t n = 2 + 2 * p->n;
    struct pollfd *fds = xcalloc(n, sizeof(*fds));
    fds[0] = (struct pollfd){.fd = p->stop[0], .events = POLLIN};
    fds[1] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
    for (size_t i = 0; i < p->n; i++) {
      fds[2 + 2 * i] = (struct pollfd){.fd = p->pairs[i].a, .events = POLLIN};
      fds[3 + 2 * i] = (struct pollfd){.fd = p->pairs[i].b, .events = POLLIN};
    }
    if (poll(fds, n, -1) < 0 && errno != EINTR) {
      free(fds);
      break;
    }
    if (fds[0].revents) {
      free(fds);
      break;
    }
    /* Pairs from the last to the first: pair_close moves the last pair into a freed slot. */
    for (size_t i = p->n; i-- > 0;) {
      short ra = fds[2 + 2 * i].revents, rb = fds[3 + 2 * i].revents;
      bool ok = true;
      if (ra)
        ok = relay(p->pairs[i].a, p->pairs[i].b);
      if (ok && rb)
        ok = relay(p->pairs[i].b, p->pairs[i].a);
      if (!ok)
        pair_close(p, i);
    }
    if (fds[1].revents & POLLIN) {
      int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      int u = c >= 0 ? connect_unix(p->upstream) : -1;
      if (c >= 0 && u < 0) {
        sw_debug("ssh forward: cannot reach the agent at %s: %s", p->upstream, strerror(errno));
        close(c);
      } else if (c >= 0) {
        p->pairs = xrealloc(p->pairs, (p->n + 1) * sizeof(*p->pairs));
        p->pairs[p->n++] = (struct pair){c, u};
      }
    }
    free(fds);
  }
  return NULL;
}

int
sw_ssh_proxy_start(const char *dir, const char *upstream, uid_t uid, gid_t gid, mode_t mode,
                   sw_ssh_proxy_t **out, char **sock_out, sw_error_t *err)
{
  sw_ssh_proxy_t *p = xcalloc(1, sizeof(*p));
  p->listen_fd = p->stop[0] = p->stop[1] = -1;
  p->path = xasprintf("%s/agent.sock", dir);
  p->upstream = xstrdup(upstream);
  struct sockaddr_un sa;
  int rc = unix_addr(p->path, &sa, err);
  if (rc == 0 && (p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
    rc = sw_error(err, errno, "ssh forward: socket");
  if (rc == 0 && bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    rc = sw_error(err, errno, "ssh forward: bind `%s`", p->path);
  if (rc == 0 && (chown(p->path, uid, gid) < 0 || chmod(p->path, mode) < 0))
    rc = sw_error(err, errno, "ssh forward: owner and mode of `%s`", p->path);
  if (rc == 0 && listen(p->listen_fd, 16) < 0)
    rc = sw_error(err, errno, "ssh forward: listen");
  if (rc == 0 && pipe2(p->stop, O_CLOEXEC) < 0)
    rc = sw_error(err, errno, "ssh forward: pipe");
  if (rc == 0 && (errno = pthread_create(&p->thread, NULL, proxy_main, p)) != 0)
    rc = sw_error(err, errno, "ssh forward: thread");
  if (rc < 0) {
    sw_ssh_proxy_stop(p);
    return -1;
  }
  p->started = true;
  *sock_out = xstrdup(p->path);
  *out = p;
  return 0;
}

void
sw_ssh_proxy_stop(sw_ssh_proxy_t *p)
{
  if (p == NULL)
    return;
  if (p->started) {
    char c = 0;
    if (write(p->stop[1], &c, 1) < 0)
      sw_debug("ssh forward: stop: %s", strerror(errno));
    pthread_join(p->thread, NULL);
  }
  while (p->n > 0)
    pair_close(p, p->n - 1);
  if (p->listen_fd >= 0)
    close(p->listen_fd);
  for (int i = 0; i < 2; i++)
    if (p->stop[i] >= 0)
      close(p->stop[i]);
  unlink(p->path);
  free(p->pairs);
  free(p->path);
  free(p->upstream);
  free(p);
}

/* ---- --ssh: agents by id ---- */

struct sw_ssh_agents {
  char **socks; /* "ID=SOCKET" */
  pid_t *pids;  /* private agents */
  size_t n_pids;
  char **dirs; /* their directories */
};

const char *
sw_ssh_agents_get(const sw_ssh_agents_t *a, const char *id)
{
  return a ? sw_env_get(a->socks, id) : NULL;
}

void
sw_ssh_agents_free(sw_ssh_agents_t *a)
{
  if (a == NULL)
    return;
  for (size_t i = 0; i < a->n_pids; i++) {
    kill(a->pids[i], SIGTERM);
    while (waitpid(a->pids[i], NULL, 0) < 0 && errno == EINTR)
      ;
  }
  for (size_t i = 0; a->dirs && a->dirs[i]; i++) {
    sw_error_t e = NULL;
    sw_rm_rf(a->dirs[i], &e);
    sw_error_release(&e);
  }
  free(a->pids);
  sw_strv_free(a->dirs);
  sw_strv_free(a->socks);
  free(a);
}

static int
spawn(char *const *argv, char **envp, int devnull, pid_t *pid, sw_error_t *err)
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, devnull, 1);
  int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return sw_error(err, rc, "run `%s` (Debian package openssh-client)", argv[0]);
  return 0;
}

/* A private ssh-agent in a new directory under tmpdir, holding the keys. */
static int
private_agent(sw_ssh_agents_t *a, const char *spec, const char *id, const char *keys,
              sw_error_t *err)
{
  _cleanup_free_ char *tmpl = sw_ssh_tmpdir(err);
  if (tmpl == NULL)
    return sw_error_wrap(err, "--ssh %s", spec);
  sw_strv_push(&a->dirs, tmpl);
  _cleanup_free_ char *sock = xasprintf("%s/agent.sock", tmpl);
  _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  char *agent_argv[] = {"ssh-agent", "-D", "-a", sock, NULL};
  pid_t pid;
  if (spawn(agent_argv, environ, devnull, &pid, err) < 0)
    return sw_error_wrap(err, "--ssh %s", spec);
  a->pids = xrealloc(a->pids, (a->n_pids + 1) * sizeof(pid_t));
  a->pids[a->n_pids++] = pid;
  int probe = -1; /* bound before it listens: ready when a connection is accepted */
  for (int i = 0; i < 500 && (probe = connect_unix(sock)) < 0; i++)
    usleep(10000);
  if (probe < 0)
    return sw_error(err, 0, "--ssh %s: ssh-agent did not start", spec);
  close(probe);
  _cleanup_strv_ char **envp = sw_strv_dup(environ);
  sw_env_set(&envp, "SSH_AUTH_SOCK", sock);
  _cleanup_free_ char *list = xstrdup(keys);
  char *save = NULL;
  for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
    char *add_argv[] = {"ssh-add", "-q", k, NULL};
    int status = 0;
    if (spawn(add_argv, envp, devnull, &pid, err) < 0)
      return sw_error_wrap(err, "--ssh %s", spec);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return sw_error(err, 0,
                      "--ssh %s: `ssh-add %s` failed: is it a private key without a "
                      "passphrase? (load a protected key into your agent and give its socket)",
                      spec, k);
  }
  sw_env_set(&a->socks, id, sock);
  return 0;
}

static int
agent_one(sw_ssh_agents_t *a, const char *spec, sw_error_t *err)
{
  const char *eq = strchr(spec, '=');
  _cleanup_free_ char *id = eq ? xstrndup(spec, (size_t)(eq - spec)) : xstrdup(spec);
  if (*id == '\0' || strchr(id, ','))
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--ssh %s: give ID[=SOCKET|KEY[,KEY]]", spec);
  if (eq == NULL || eq[1] == '\0') {
    const char *sock = getenv("SSH_AUTH_SOCK");
    if (sock == NULL || *sock == '\0')
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "--ssh %s: SSH_AUTH_SOCK is not set: start an agent (eval "
                           "$(ssh-agent); ssh-add) or give a key: --ssh %s=~/.ssh/id_ed25519",
                           spec, id);
    sw_env_set(&a->socks, id, sock);
    return 0;
  }
  struct stat st;
  const char *first = eq + 1;
  _cleanup_free_ char *p1 = xstrndup(first, strcspn(first, ","));
  if (stat(p1, &st) < 0)
    return sw_error_code(err, SW_EXIT_USAGE, errno, "--ssh %s: `%s`", spec, p1);
  if (S_ISSOCK(st.st_mode)) {
    sw_env_set(&a->socks, id, p1);
    return 0;
  }
  return private_agent(a, spec, id, first, err);
}

int
sw_ssh_agents_new(char *const *specs, sw_ssh_agents_t **out, sw_error_t *err)
{
  sw_ssh_agents_t *a = xcalloc(1, sizeof(*a));
  a->socks = xcalloc(1, sizeof(char *));
  a->dirs = xcalloc(1, sizeof(char *));
  for (size_t i = 0; specs && specs[i]; i++)
    if (agent_one(a, specs[i], err) < 0) {
      sw_ssh_agents_free(a);
      return -1;
    }
  *out = a;
  return 0;
}
