/* libFuzzer target: `-p` specs and the image's ExposedPorts keys (sw_port_parse; `-P` reads
 * them from an image config, untrusted), and the resolv.conf the default network derives from
 * the host's (sb_net_resolv_conf). First byte 'r': the rest is a resolv.conf; else a port spec.
 * A parsed spec printed back as IP:HOST:CONTAINER/PROTO parses to the same port; the derived
 * resolv.conf starts with slirp4netns's 10.0.2.3 and names no loopback or IPv6 server. */
#include "sandbox-private.h"

#include <arpa/inet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_port(const char *spec)
{
  sw_error_t err = NULL;
  sw_port_t p, q;
  struct in_addr a;

  if (sw_port_parse(spec, &p, &err) < 0) {
    sw_error_release(&err);
    return;
  }
  if (p.container_port == 0 || inet_pton(AF_INET, p.host_ip, &a) != 1)
    __builtin_trap();
  char again[64];
  if (p.host_port)
    snprintf(again, sizeof(again), "%s:%u:%u/%s", p.host_ip, (unsigned)p.host_port,
             (unsigned)p.container_port, p.udp ? "udp" : "tcp");
  else
    snprintf(again, sizeof(again), "%s::%u/%s", p.host_ip, (unsigned)p.container_port,
             p.udp ? "udp" : "tcp");
  if (sw_port_parse(again, &q, &err) < 0 || memcmp(&p, &q, sizeof(p)) != 0)
    __builtin_trap();
}

static void
check_resolv(const char *text)
{
  char *r = sb_net_resolv_conf(text);
  if (strncmp(r, "nameserver 10.0.2.3\n", 20) != 0)
    __builtin_trap();
  for (char *l = strstr(r, "nameserver "); l; l = strstr(l + 1, "nameserver ")) {
    if (l != r && l[-1] != '\n')
      continue;
    const char *addr = l + 11;
    if (strncmp(addr, "127.", 4) == 0 || addr[strcspn(addr, ":\n")] == ':')
      __builtin_trap();
  }
  free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  char *s = xstrndup((const char *)data + 1, size - 1);
  if (data[0] == 'r')
    check_resolv(s);
  else
    check_port(s);
  free(s);
  return 0;
}
