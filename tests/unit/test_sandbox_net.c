/* Unit tests for the pure parts of the sandbox's network (sandbox-net.c): Docker's `-p` forms,
 * `docker port`'s line, and the container's resolv.conf and hosts on the default network. The
 * namespace and slirp4netns are tested end to end in tests/e2e/test_network.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sandbox-private.h"

static sw_port_t
parse_ok(const char *spec)
{
  sw_port_t p;
  sw_error_t err = NULL;
  int r = sw_port_parse(spec, &p, &err);
  if (r < 0)
    fail_msg("%s: %s", spec, err->msg);
  return p;
}

static void
parse_bad(const char *spec, const char *msg_part)
{
  sw_port_t p;
  sw_error_t err = NULL;
  assert_int_equal(sw_port_parse(spec, &p, &err), -1);
  assert_int_equal(err->code, SW_EXIT_USAGE);
  if (strstr(err->msg, msg_part) == NULL)
    fail_msg("%s: `%s` lacks `%s`", spec, err->msg, msg_part);
  sw_error_release(&err);
}

static void
test_port_forms(void **state)
{
  sw_port_t p = parse_ok("8080:80");
  assert_string_equal(p.host_ip, "0.0.0.0");
  assert_int_equal(p.host_port, 8080);
  assert_int_equal(p.container_port, 80);
  assert_false(p.udp);

  p = parse_ok("127.0.0.1:8080:80/udp");
  assert_string_equal(p.host_ip, "127.0.0.1");
  assert_int_equal(p.host_port, 8080);
  assert_int_equal(p.container_port, 80);
  assert_true(p.udp);

  p = parse_ok("80");
  assert_string_equal(p.host_ip, "0.0.0.0");
  assert_int_equal(p.host_port, 0);
  assert_int_equal(p.container_port, 80);

  p = parse_ok("127.0.0.1::5353/udp");
  assert_int_equal(p.host_port, 0);
  assert_int_equal(p.container_port, 5353);
  assert_true(p.udp);

  p = parse_ok("65535:1/tcp");
  assert_int_equal(p.host_port, 65535);
  assert_int_equal(p.container_port, 1);
}

static void
test_port_errors(void **state)
{
  parse_bad("80/sctp", "protocol `sctp`");
  parse_bad("8000-8010:80", "ranges");
  parse_bad("[::1]:80:80", "IPv6");
  parse_bad("::1:80:80", "IPv6");
  parse_bad("host:80:80", "not an IPv4 address");
  parse_bad("0:80", "ports 1-65535");
  parse_bad("80:0", "ports 1-65535");
  parse_bad("65536:80", "ports 1-65535");
  parse_bad("", "ports 1-65535");
  parse_bad(":80", "ports 1-65535");
  parse_bad("8080:", "ports 1-65535");
  parse_bad("a:80", "ports 1-65535");
}

static void
test_port_format(void **state)
{
  sw_port_t p = parse_ok("127.0.0.1:32768:80/udp");
  char line[64];
  sw_port_format(&p, line, sizeof(line));
  assert_string_equal(line, "80/udp -> 127.0.0.1:32768");
}

static void
test_resolv_conf(void **state)
{
  /* systemd-resolved's stub and an IPv6 server go (unreachable from the namespace); a real
   * IPv4 server stays after slirp4netns's forwarder; search and options are kept. */
  _cleanup_free_ char *r = sb_net_resolv_conf("# generated\n"
                                              "nameserver 127.0.0.53\n"
                                              "nameserver 192.0.2.53 # office\n"
                                              "nameserver ::1\n"
                                              "nameserver 2001:db8::53\n"
                                              "\tnameserver 10.0.2.3\n"
                                              "search example.org\n"
                                              "options edns0 trust-ad\n");
  assert_string_equal(r, "nameserver 10.0.2.3\n"
                         "nameserver 192.0.2.53\n"
                         "search example.org\n"
                         "options edns0 trust-ad\n");
  _cleanup_free_ char *empty = sb_net_resolv_conf(NULL);
  assert_string_equal(empty, "nameserver 10.0.2.3\n");
}

static void
test_hosts(void **state)
{
  _cleanup_free_ char *h = sb_net_hosts("web1");
  assert_non_null(strstr(h, "127.0.0.1\tlocalhost\n"));
  assert_non_null(strstr(h, "::1\tlocalhost ip6-localhost ip6-loopback\n"));
  assert_true(sw_str_has_suffix(h, "\n10.0.2.100\tweb1\n"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_port_forms),  cmocka_unit_test(test_port_errors),
      cmocka_unit_test(test_port_format), cmocka_unit_test(test_resolv_conf),
      cmocka_unit_test(test_hosts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
