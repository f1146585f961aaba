/* dnslookup: takes a DHCP lease and asks the lease's DNS server (or
 * server=) for name='s A record; prints the address or the rcode, and
 * checks expect= / expect_rcode= when given.
 *
 * Command line (besides net_configure's nic= io= irq= poll= width=):
 *   name=NAME        the name to resolve                  (required)
 *   server=A         the DNS server                       [the lease's first]
 *   expect=A.B.C.D   the address the answer must carry    [no check]
 *   expect_rcode=N   the rcode the answer must carry (3: NXDOMAIN)
 *   timeout=S        bound on the whole run, DHCP included [30]
 *
 * Output:
 *   dnslookup: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3
 *   dnslookup: NAME via 10.0.2.3
 *   dnslookup: NAME is 192.0.2.1          or   dnslookup: NAME rcode 3 (NXDOMAIN)
 *   dnslookup: ok
 * An answer without an A record prints "dnslookup: NAME has no A record".
 * Failures (no answer, a malformed one, a mismatch) print
 * "dnslookup: FAIL <why>" and exit with code 3. */
#include "net.h"

static void fail(const char* what) {
  const struct dns_stats* s = dns_get_stats();
  printf("dnslookup: FAIL %s\n", what);
  printf("dnslookup: dns queries %u replies %u ignored %u malformed %u\n", s->queries_sent, s->replies,
         s->replies_ignored, s->malformed);
  net_flush();
  rt_exit(3);
}

static uint32_t arg_num(const char* key, uint32_t fallback) {
  const char* v = cmdline_arg(key);
  return v ? parse_num(v, 0) : fallback;
}

static uint32_t prefix_of(uint32_t mask) {
  uint32_t p = 0;
  while (p < 32 && (mask & (0x80000000u >> p))) ++p;
  return p;
}

static const char* rcode_name(uint32_t rcode) {
  switch (rcode) {
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 3:
      return "NXDOMAIN";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default:
      return "other";
  }
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  static struct dhcp_lease lease;
  static char name[DNS_MAX_NAME + 1];
  net_configure_flags(NET_CONFIG_ADDRESS_OPTIONAL);
  uint32_t deadline = clock_ticks() + arg_num("timeout=", 30) * CLOCK_HZ;
  const char* v = cmdline_arg("name=");
  uint32_t n = 0;
  while (v && v[n] && v[n] != ' ' && n < DNS_MAX_NAME) {
    name[n] = v[n];
    ++n;
  }
  name[n] = 0;
  if (!n) fail("name= is required");
  if (dhcp_acquire(0, &lease, deadline) != 0) fail("no lease");
  printf("dnslookup: lease %s/%u router %s dns %s\n", ip_str(lease.ip), prefix_of(lease.mask),
         ip_str(lease.router), lease.dns_count ? ip_str(lease.dns[0]) : "none");
  const char* server_arg = cmdline_arg("server=");
  uint32_t server = server_arg ? parse_ip(server_arg, 0) : (lease.dns_count ? lease.dns[0] : 0);
  if (!server) fail("no DNS server (none in the lease, no server=)");
  printf("dnslookup: %s via %s\n", name, ip_str(server));

  uint32_t addr = 0, rcode = 0;
  int r = dns_lookup_a(server, name, deadline, &addr, &rcode);
  const char* expect = cmdline_arg("expect=");
  const char* expect_rcode = cmdline_arg("expect_rcode=");
  if (r == DNS_OK) {
    printf("dnslookup: %s is %s\n", name, ip_str(addr));
    if (expect && parse_ip(expect, 0) != addr) fail("address differs from expect=");
    if (expect_rcode && parse_num(expect_rcode, 0) != 0)
      fail("an address, but expect_rcode= wanted an error");
  } else if (r == DNS_RCODE) {
    printf("dnslookup: %s rcode %u (%s)\n", name, rcode, rcode_name(rcode));
    if (expect) fail("an error, but expect= wanted an address");
    if (expect_rcode && parse_num(expect_rcode, 0) != rcode) fail("rcode differs from expect_rcode=");
  } else if (r == DNS_NO_A) {
    printf("dnslookup: %s has no A record\n", name);
    if (expect) fail("no address, but expect= wanted one");
  } else if (r == DNS_BAD_NAME) {
    fail("name= is not a valid domain name");
  } else if (r == DNS_NO_ROUTE) {
    fail("no route to the DNS server");
  } else {
    fail("no answer before the deadline");
  }
  net_flush();
  printf("dnslookup: ok\n");
  return 0;
}
