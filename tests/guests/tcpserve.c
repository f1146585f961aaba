/* tcpserve: takes a DHCP lease, listens on port=, accepts one connection
 * (under a user-mode network: a host client through a port forward) and
 * echoes every byte until the peer closes, then closes its side and
 * prints the byte counts and the FNV-1a 64 hash (stream_hash.h) of what it
 * received.
 *
 * Command line (besides net_configure's nic= io= irq= poll= width=):
 *   port=N      the TCP port to listen on               (required)
 *   timeout=S   bound on the whole run, DHCP included   [60]
 *   expect_bytes=N expect_hash=0x...  check the stream  [no check]
 *
 * Output:
 *   tcpserve: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3
 *   tcpserve: listening on port 8080
 *   tcpserve: connection from 10.0.2.2
 *   tcpserve: received N bytes, sent N bytes, hash 0x...
 *   tcpserve: closed
 *   tcpserve: ok
 * (the peer's port is not printed: the gateway picks it). Failures print
 * "tcpserve: FAIL <why>" and exit with code 3. */
#include "net.h"
#include "stream_hash.h"

static void fail(const char* what) {
  printf("tcpserve: FAIL %s\n", what);
  tcp_print_stats("tcpserve: tcp");
  net_flush();
  rt_exit(3);
}

static uint32_t arg_num(const char* key, uint32_t fallback) {
  const char* v = cmdline_arg(key);
  return v ? parse_num(v, 0) : fallback;
}

/* Decimal or 0x hexadecimal, 64 bits. */
static uint64_t parse_u64(const char* s) {
  uint64_t v = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    for (s += 2;; ++s) {
      char c = *s;
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = (uint32_t)(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = (uint32_t)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = (uint32_t)(c - 'A' + 10);
      else
        break;
      v = (v << 4) | d;
    }
  } else {
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint32_t)(*s++ - '0');
  }
  return v;
}

static uint32_t prefix_of(uint32_t mask) {
  uint32_t p = 0;
  while (p < 32 && (mask & (0x80000000u >> p))) ++p;
  return p;
}

static uint8_t buf[4096];

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  static struct dhcp_lease lease;
  net_configure_flags(NET_CONFIG_ADDRESS_OPTIONAL);
  uint32_t deadline = clock_ticks() + arg_num("timeout=", 60) * CLOCK_HZ;
  uint32_t port = arg_num("port=", 0);
  if (port == 0 || port > 65535) fail("port= must be 1-65535");
  if (dhcp_acquire(0, &lease, deadline) != 0) fail("no lease");
  printf("tcpserve: lease %s/%u router %s dns %s\n", ip_str(lease.ip), prefix_of(lease.mask),
         ip_str(lease.router), lease.dns_count ? ip_str(lease.dns[0]) : "none");

  struct tcp_conn* c = tcp_listen((uint16_t)port);
  if (!c) fail("no free connection");
  printf("tcpserve: listening on port %u\n", port);
  if (tcp_accept(c, deadline) != 0) fail(tcp_error(c) ? tcp_error(c) : "no connection before the deadline");
  uint32_t peer;
  tcp_endpoints(c, 0, 0, &peer, 0);
  printf("tcpserve: connection from %s\n", ip_str(peer));

  uint64_t received = 0, sent = 0;
  uint64_t hash = REEL_FNV64_OFFSET;
  uint32_t pending = 0, pending_at = 0;
  for (;;) {
    int progressed = 0;
    for (;;) {
      if (pending) {
        int n = tcp_write(c, buf + pending_at, pending);
        if (n < 0) fail(tcp_error(c) ? tcp_error(c) : "connection closed while echoing");
        if (n == 0) break;
        pending -= (uint32_t)n;
        pending_at += (uint32_t)n;
        sent += (uint32_t)n;
        progressed = 1;
        if (pending) break;
      }
      int n = tcp_read(c, buf, sizeof buf);
      if (n < 0) fail(tcp_error(c) ? tcp_error(c) : "connection failed");
      if (n == 0) break;
      hash = reel_fnv64_update(hash, buf, (uint32_t)n);
      received += (uint32_t)n;
      pending = (uint32_t)n;
      pending_at = 0;
      progressed = 1;
    }
    if (!pending && tcp_eof(c)) break;
    if (clock_passed(deadline)) {
      printf("tcpserve: FAIL timeout after %llu bytes received, %llu sent\n", (unsigned long long)received,
             (unsigned long long)sent);
      tcp_print_stats("tcpserve: tcp");
      rt_exit(3);
    }
    (void)progressed;
    tcp_step();
  }
  printf("tcpserve: received %llu bytes, sent %llu bytes, hash 0x%016llx\n", (unsigned long long)received,
         (unsigned long long)sent, (unsigned long long)hash);
  if (tcp_close(c, deadline) != 0) fail("close: our FIN was not acknowledged before the deadline");
  printf("tcpserve: closed\n");
  const char* eb = cmdline_arg("expect_bytes=");
  const char* eh = cmdline_arg("expect_hash=");
  if (eb && parse_u64(eb) != received) fail("byte count differs from expect_bytes=");
  if (eh && parse_u64(eh) != hash) fail("hash differs from expect_hash=");
  net_flush();
  printf("tcpserve: ok\n");
  return 0;
}
