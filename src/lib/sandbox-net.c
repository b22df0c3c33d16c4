/* slipway sandbox: the container's network. SW_NET_NONE: a new namespace with `lo` up.
 * SW_NET_PRIVATE (`slipway run`'s default, as Docker's bridge): a new namespace whose `eth0`
 * is a tap device that slirp4netns, a userspace NAT running in the host's namespaces, turns into
 * ordinary host sockets. So the container reaches what the host can reach, except the host's
 * loopback (--disable-host-loopback: a service on 127.0.0.1 stays private to the host), and
 * sees only its own traffic (with NET_RAW too). Published ports (`-p`) are slirp4netns
 * listeners on the host, added through its API socket.
 *
 * Process tree: the monitor forks a helper before it unshares (so the helper stays in the
 * host's pid, mount and network namespaces), then unshares, then lets the helper exec
 * slirp4netns on its network namespace. slirp4netns is the monitor's child: PR_SET_PDEATHSIG
 * and --exit-fd end it with the monitor, and the monitor kills and reaps it after pid 1 exits.
 *
 * Also the pure parts: `-p` specs, the host port check, resolv.conf and hosts. */
#include "sandbox-private.h"
#include "userns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define SLIRP_GUEST_IP   "10.0.2.100" /* slirp4netns --configure's address for the container */
#define SLIRP_DNS_IP     "10.0.2.3"   /* its DNS forwarder (to the host's first nameserver) */
#define SLIRP_MTU        "65520"      /* as podman: fewer, bigger packets through the NAT */
#define READY_TIMEOUT_MS 30000

/* ---- `-p` specs ---- */

static int
parse_port_number(const char *s, size_t len, bool zero_ok, uint16_t *out)
{
  unsigned long v = 0;

  if (len == 0)
    return zero_ok ? (*out = 0, 0) : -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned long)(s[i] - '0');
    if (v > 65535)
      return -1;
  }
  if (v == 0 && !zero_ok)
    return -1;
  *out = (uint16_t)v;
  return 0;
}

int
sw_port_parse(const char *spec, sw_port_t *out, sw_error_t *err)
{
  sw_port_t p = {0};
  _cleanup_free_ char *s = xstrdup(spec);
  char *proto = strrchr(s, '/');

  if (proto) {
    *proto++ = '\0';
    if (strcmp(proto, "udp") == 0)
      p.udp = true;
    else if (strcmp(proto, "tcp") != 0)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "-p `%s`: protocol `%s`: use tcp or udp", spec,
                           proto);
  }
  if (strchr(s, '[') || strchr(s, '-'))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "-p `%s`: port ranges and IPv6 host addresses are not supported", spec);
  char *c1 = strchr(s, ':');
  char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  if (c2 && strchr(c2 + 1, ':'))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "-p `%s`: use [IP:][HOST:]CONTAINER[/udp] (IPv6 host addresses are not "
                         "supported)",
                         spec);
  const char *ip = c2 ? s : "0.0.0.0";
  const char *host = c2 ? c1 + 1 : c1 ? s : "";
  const char *ctr = c2 ? c2 + 1 : c1 ? c1 + 1 : s;
  size_t host_len = c2 ? (size_t)(c2 - host) : c1 ? (size_t)(c1 - s) : 0;
  if (c2)
    *c1 = '\0';
  struct in_addr a;
  if (inet_pton(AF_INET, ip, &a) != 1)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "-p `%s`: `%s` is not an IPv4 address", spec, ip);
  inet_ntop(AF_INET, &a, p.host_ip, sizeof(p.host_ip));
  if (parse_port_number(host, host_len, !c1 || c2, &p.host_port) < 0 ||
      parse_port_number(ctr, strlen(ctr), false, &p.container_port) < 0)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "-p `%s`: use [IP:][HOST:]CONTAINER[/udp] with ports 1-65535", spec);
  *out = p;
  return 0;
}

void
sw_port_format(const sw_port_t *p, char *out, size_t len)
{
  snprintf(out, len, "%u/%s -> %s:%u", (unsigned)p->container_port, p->udp ? "udp" : "tcp",
           p->host_ip, (unsigned)p->host_port);
}

int
sw_port_reserve(sw_port_t *p, int *fd, sw_error_t *err)
{
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->host_port)};
  socklen_t len = sizeof(sa);
  int one = 1;

  *fd = -1;
  inet_pton(AF_INET, p->host_ip, &sa.sin_addr);
  _cleanup_close_ int s = socket(AF_INET, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (s < 0)
    return sw_error(err, errno, "-p: socket");
  /* slirp4netns binds its listener with SO_REUSEADDR too: both may hold the port as long as
   * this one never listens. */
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    int e = errno;
    if (e == EADDRINUSE)
      return sw_error_code(err, SW_EXIT_FAILURE, 0,
                           "publish %s:%u/%s: the port is already in use: choose another host "
                           "port (-p HOST:%u)",
                           p->host_ip, (unsigned)p->host_port, p->udp ? "udp" : "tcp",
                           (unsigned)p->container_port);
    return sw_error(err, e, "publish %s:%u/%s", p->host_ip, (unsigned)p->host_port,
                    p->udp ? "udp" : "tcp");
  }
  if (getsockname(s, (struct sockaddr *)&sa, &len) < 0)
    return sw_error(err, errno, "-p: getsockname");
  p->host_port = ntohs(sa.sin_port);
  if (!p->udp)
    *fd = steal_fd(&s);
  return 0;
}

/* ---- resolv.conf and hosts ---- */

static bool
nameserver_reachable(const char *addr)
{
  struct in_addr a;
  /* Loopback resolvers (systemd-resolved's 127.0.0.53, dnsmasq) are the host's own: 10.0.2.3
   * reaches them through slirp4netns. The container has no IPv6 route. */
  return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) != 127 && a.s_addr != 0;
}

char *
sb_net_resolv_conf(const char *host_text)
{
  _cleanup_free_ char *text = xstrdup(host_text ? host_text : "");
  sw_buf_t servers = {0}, rest = {0};
  char *save = NULL;

  sw_buf_puts(&servers, "nameserver " SLIRP_DNS_IP "\n");
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *l = line + strspn(line, " \t");
    if (strncmp(l, "nameserver", 10) == 0 && (l[10] == ' ' || l[10] == '\t')) {
      char *addr = l + 10 + strspn(l + 10, " \t");
      addr[strcspn(addr, " \t\r#;")] = '\0';
      if (nameserver_reachable(addr) && strcmp(addr, SLIRP_DNS_IP) != 0)
        sw_buf_printf(&servers, "nameserver %s\n", addr);
    } else if (*l && *l != '#' && *l != ';') {
      sw_buf_printf(&rest, "%s\n", l);
    }
  }
  sw_buf_puts(&servers, rest.data ? rest.data : "");
  sw_buf_free(&rest);
  return sw_buf_steal(&servers);
}

char *
sb_net_hosts(const char *hostname)
{
  return xasprintf("127.0.0.1\tlocalhost\n"
                   "::1\tlocalhost ip6-localhost ip6-loopback\n"
                   "fe00::0\tip6-localnet\n"
                   "ff00::0\tip6-mcastprefix\n"
                   "ff02::1\tip6-allnodes\n"
                   "ff02::2\tip6-allrouters\n" SLIRP_GUEST_IP "\t%s\n",
                   hostname ? hostname : "slipway");
}

static void
write_etc_file(const char *dir, const char *name, const char *text, int sock)
{
  _cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
  _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  if (fd < 0 || sw_write_all(fd, text, strlen(text)) < 0)
    sb_fail(sock, 1, errno, "sandbox: write `%s`", path);
}

bool
sb_net_etc(const sw_sandbox_opts_t *o, const char *dir, int sock)
{
  _cleanup_free_ char *host = NULL, *resolv = NULL, *hosts = NULL;
  sw_error_t err = NULL;

  if (o->network != SW_NET_PRIVATE)
    return false;
  if (sw_read_file("/etc/resolv.conf", 1 << 20, &host, NULL, &err) < 0)
    sw_error_release(&err); /* no host config: 10.0.2.3 alone */
  resolv = sb_net_resolv_conf(host);
  hosts = sb_net_hosts(o->hostname);
  write_etc_file(dir, "resolv.conf", resolv, sock);
  write_etc_file(dir, "hosts", hosts, sock);
  return true;
}

/* ---- the namespace ---- */

static void
loopback_up(int sock)
{
  _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};

  memcpy(ifr.ifr_name, "lo", 3);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    sb_fail(sock, 1, errno, "sandbox: network: find `lo`");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    sb_fail(sock, 1, errno, "sandbox: network: bring `lo` up");
}

/* The helper: waits in the host's namespaces for the monitor's go, then becomes slirp4netns. */
static void __attribute__((noreturn))
helper_main(int sock, int go, int ready, int ex, pid_t monitor, const char *api)
{
  char c, fd_ready[32], fd_exit[32], pid[32],
      api_opt[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
  ssize_t n;

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != monitor)
    _exit(1);
  /* Its own session: a terminal's Ctrl-C is for the container (through slipway), and must not
   * cut its network while it shuts down. */
  setsid();
  while ((n = read(go, &c, 1)) < 0 && errno == EINTR)
    ;
  if (n != 1)
    _exit(0);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || (!sw_verbose && dup2(null, 2) < 0))
    sb_fail(sock, 1, errno, "sandbox: network: /dev/null");
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  /* Rootless: slirp4netns opens the tun device as the user. Nothing unprivileged gets around
   * a device the user may not open (no mknod in a user namespace; pasta, podman's other
   * network, needs it too), so say how to open it up, and the two networks that need none. */
  if (sw_userns_nested() && access("/dev/net/tun", R_OK | W_OK) < 0) {
    struct stat st;
    int e = errno;
    char mode[48] = "";
    if (stat("/dev/net/tun", &st) == 0)
      snprintf(mode, sizeof(mode), " (it is mode %04o here)", (unsigned)(st.st_mode & 07777));
    sb_fail(sock, 1, e,
            "network: rootless: `run`'s default network (slirp4netns, as podman's) opens "
            "`/dev/net/tun` as your user, which it may not%s. Distributions with udev make it "
            "0666 (`KERNEL==\"tun\", MODE=\"0666\"`); as root: chmod 0666 /dev/net/tun (and, "
            "to keep it after a reboot without udev, a tmpfiles.d line `z /dev/net/tun 0666 - "
            "- -`). Or run with --network host (the host's network: the container binds host "
            "ports >= 1024 itself, no -p) or --network none",
            mode);
  }
  if (fcntl(ready, F_SETFD, 0) < 0 || fcntl(ex, F_SETFD, 0) < 0)
    sb_fail(sock, 1, errno, "sandbox: network: pass fds to slirp4netns");
  snprintf(fd_ready, sizeof(fd_ready), "--ready-fd=%d", ready);
  snprintf(fd_exit, sizeof(fd_exit), "--exit-fd=%d", ex);
  snprintf(pid, sizeof(pid), "%d", (int)monitor);
  snprintf(api_opt, sizeof(api_opt), "--api-socket=%s", api ? api : "");
  char *argv[16];
  size_t k = 0;
  argv[k++] = "slirp4netns";
  argv[k++] = "--configure";
  argv[k++] = "--mtu=" SLIRP_MTU;
  argv[k++] = "--disable-host-loopback";
  argv[k++] = "--enable-sandbox";
  argv[k++] = "--enable-seccomp";
  argv[k++] = fd_ready;
  argv[k++] = fd_exit;
  if (api)
    argv[k++] = api_opt;
  argv[k++] = pid;
  argv[k++] = "eth0";
  argv[k] = NULL;
  execvp(argv[0], argv);
  sb_fail(sock, 1, errno,
          "network: cannot run `slirp4netns`, the NAT of `slipway run`'s default network "
          "(install it: apt-get install slirp4netns; or use --network host)");
}

/* An API socket whose monitor is gone: that run was killed in the moment between slirp4netns's
 * start and the socket's removal. */
static void
sweep_stale_sockets(void)
{
  _cleanup_dir_ DIR *d = opendir(SB_RUNDIR);
  struct dirent *e;

  while (d && (e = readdir(d)) != NULL) {
    int pid = 0, len = 0;
    if (sscanf(e->d_name, "net-%d.sock%n", &pid, &len) != 1 || len == 0 || e->d_name[len])
      continue;
    if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
      unlinkat(dirfd(d), e->d_name, 0);
  }
}

void
sb_net_fork(struct sb_net *n, const sw_sandbox_opts_t *o, int sock)
{
  int go[2], ready[2], ex[2];
  pid_t monitor = getpid();

  *n = (struct sb_net){.go = -1, .ready = -1, .exit = -1};
  if (o->network != SW_NET_PRIVATE)
    return;
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0)
    sb_fail(sock, 1, errno, "sandbox: network: pipe");
  if (o->n_ports > 0) {
    sweep_stale_sockets();
    n->api = xasprintf(SB_RUNDIR "/net-%d.sock", (int)monitor);
  }
  pid_t pid = fork();
  if (pid < 0)
    sb_fail(sock, 1, errno, "sandbox: network: fork");
  if (pid == 0) {
    close(go[1]);
    close(ready[0]);
    close(ex[1]);
    helper_main(sock, go[0], ready[1], ex[0], monitor, n->api);
  }
  close(go[0]);
  close(ready[1]);
  close(ex[0]);
  n->helper = pid;
  n->go = go[1];
  n->ready = ready[0];
  n->exit = ex[1];
}

static void
wait_ready(struct sb_net *n, int sock)
{
  struct pollfd p = {.fd = n->ready, .events = POLLIN};
  char c = 0;
  int r;

  while ((r = poll(&p, 1, READY_TIMEOUT_MS)) < 0 && errno == EINTR)
    ;
  if (r == 0)
    sb_fail(sock, 1, 0, "network: slirp4netns did not configure `eth0` within %d s",
            READY_TIMEOUT_MS / 1000);
  if (r < 0 || read(n->ready, &c, 1) != 1 || c != '1')
    sb_fail(sock, 1, 0,
            "network: slirp4netns exited before `eth0` was up (`slipway --debug run ...` shows "
            "its messages; or use --network host)");
  close(n->ready);
  n->ready = -1;
}

/* One request per connection, as slirp4netns's API wants. Its listener may come up a moment
 * after the ready byte (the tap is configured first), so a missing socket is retried. */
static void
publish(const char *api, const sw_port_t *p, int sock)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  char req[256], reply[512];
  size_t got = 0;
  ssize_t r;
  _cleanup_close_ int fd = -1;

  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", api);
  snprintf(req, sizeof(req),
           "{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"%s\",\"host_addr\":\"%s\","
           "\"host_port\":%u,\"guest_addr\":\"" SLIRP_GUEST_IP "\",\"guest_port\":%u}}",
           p->udp ? "udp" : "tcp", p->host_ip, (unsigned)p->host_port, (unsigned)p->container_port);
  for (int tries = 0;; tries++) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
      break;
    int e = errno;
    if (fd >= 0)
      close(fd);
    fd = -1;
    if ((e != ENOENT && e != ECONNREFUSED) || tries >= 1000)
      sb_fail(sock, 1, e, "network: connect to slirp4netns's API `%s`", api);
    usleep(5000);
  }
  if (sw_write_all(fd, req, strlen(req)) < 0)
    sb_fail(sock, 1, errno, "network: write to slirp4netns's API `%s`", api);
  while (got < sizeof(reply) - 1 &&
         ((r = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0 || (r < 0 && errno == EINTR)))
    got += r > 0 ? (size_t)r : 0;
  reply[got] = '\0';
  if (strstr(reply, "\"return\"") == NULL)
    sb_fail(sock, 1, 0, "publish %s:%u -> %u/%s: slirp4netns refused: %s", p->host_ip,
            (unsigned)p->host_port, (unsigned)p->container_port, p->udp ? "udp" : "tcp",
            got ? reply : "no answer");
}

void
sb_net_setup(struct sb_net *n, const sw_sandbox_opts_t *o, int sock)
{
  if (o->network == SW_NET_HOST)
    return;
  loopback_up(sock);
  if (o->network != SW_NET_PRIVATE)
    return;
  if (write(n->go, "g", 1) != 1)
    sb_fail(sock, 1, errno, "sandbox: network: start slirp4netns");
  close(n->go);
  n->go = -1;
  wait_ready(n, sock);
  for (size_t i = 0; i < o->n_ports; i++)
    publish(n->api, &o->ports[i], sock);
  /* Nothing else is ever asked: the socket goes, so no file outlives the run. */
  if (n->api)
    unlink(n->api);
}

void
sb_net_stop(struct sb_net *n)
{
  if (n->helper <= 0)
    return;
  kill(n->helper, SIGKILL);
  while (waitpid(n->helper, NULL, 0) < 0 && errno == EINTR)
    ;
  n->helper = 0;
}
