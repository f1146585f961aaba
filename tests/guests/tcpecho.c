/* tcpecho: takes a DHCP lease, connects to an echo server (server=, port=)
 * and streams bytes= of the shared pattern (stream_hash.h, seed=) while
 * reading the echo back, checking every echoed byte at its offset; then
 * closes (FIN both ways) and prints the counts and the FNV-1a 64 hash of
 * the stream. Under a user-mode network the server is a host socket
 * reached through the gateway's NAT (10.0.2.2 is the host's loopback).
 *
 * Command line (besides net_configure's nic= io= irq= poll= width=):
 *   server=A   the echo server                      [the lease's router]
 *   port=N     its TCP port                          (required)
 *   bytes=N    bytes to send, up to 4 GiB - 1        [1048576]
 *   seed=N     pattern seed                          [1]
 *   timeout=S  bound on the whole run, DHCP included [60]
 *   stats=1    print the TCP and driver counters at the end
 *
 * Output (nothing depends on timing):
 *   tcpecho: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3
 *   tcpecho: connecting to 10.0.2.2 port 7777
 *   tcpecho: connected, peer mss 1460
 *   tcpecho: sent 1048576 bytes, received 1048576 bytes, hash 0x...
 *   tcpecho: closed
 *   tcpecho: ok
 * Failures print "tcpecho: FAIL <why>" (and the TCP counters) and exit
 * with code 3. */
#include "net.h"
#include "stream_hash.h"

static uint32_t run_deadline;
static struct tcp_conn* conn;

static void print_counters(void) {
  const struct ne2k_stats* n = ne2k_stats(0);
  tcp_print_stats("tcpecho: tcp");
  if (conn) tcp_print_conn(conn, "tcpecho: conn");
  printf("tcpecho: nic0 irqs %u rx %u dropped %u overflows %u tx %u, %u ticks\n", n->irqs, n->rx_frames,
         n->rx_dropped, n->overflows, n->tx_frames, clock_ticks());
}

static void fail(const char* what) {
  printf("tcpecho: FAIL %s\n", what);
  print_counters();
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

static uint8_t out_buf[4096], in_buf[4096];

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  static struct dhcp_lease lease;
  net_configure_flags(NET_CONFIG_ADDRESS_OPTIONAL);
  run_deadline = clock_ticks() + arg_num("timeout=", 60) * CLOCK_HZ;
  if (dhcp_acquire(0, &lease, run_deadline) != 0) fail("no lease");
  printf("tcpecho: lease %s/%u router %s dns %s\n", ip_str(lease.ip), prefix_of(lease.mask),
         ip_str(lease.router), lease.dns_count ? ip_str(lease.dns[0]) : "none");

  const char* server_arg = cmdline_arg("server=");
  uint32_t server = server_arg ? parse_ip(server_arg, 0) : lease.router;
  if (!server) fail("server= is not a dotted IPv4 address (and no router)");
  uint32_t port = arg_num("port=", 0);
  if (port == 0 || port > 65535) fail("port= must be 1-65535");
  uint32_t total = arg_num("bytes=", 1048576);
  uint32_t seed = arg_num("seed=", 1);

  printf("tcpecho: connecting to %s port %u\n", ip_str(server), port);
  struct tcp_conn* c = tcp_connect(server, (uint16_t)port, run_deadline);
  if (!c) {
    printf("tcpecho: FAIL connect: %s\n", tcp_last_error());
    print_counters();
    rt_exit(3);
  }
  printf("tcpecho: connected, peer mss %u\n", tcp_peer_mss(c));
  conn = c;

  uint32_t sent = 0, received = 0;
  uint32_t pending = 0, pending_at = 0; /* generated, not yet accepted */
  uint64_t hash = REEL_FNV64_OFFSET;
  while (received < total) {
    for (;;) {
      if (pending == 0 && sent < total) {
        uint32_t n = total - sent < sizeof out_buf ? total - sent : sizeof out_buf;
        for (uint32_t i = 0; i < n; ++i) out_buf[i] = reel_pattern_byte(seed, sent + i);
        pending = n;
        pending_at = 0;
      }
      if (pending == 0) break;
      int n = tcp_write(c, out_buf + pending_at, pending);
      if (n < 0) fail(tcp_error(c) ? tcp_error(c) : "connection closed while sending");
      if (n == 0) break;
      pending -= (uint32_t)n;
      pending_at += (uint32_t)n;
      sent += (uint32_t)n;
    }
    for (;;) {
      int n = tcp_read(c, in_buf, sizeof in_buf);
      if (n < 0) fail(tcp_error(c) ? tcp_error(c) : "connection failed");
      if (n == 0) break;
      if ((uint32_t)n > total - received) fail("more bytes echoed than sent");
      for (int i = 0; i < n; ++i) {
        uint8_t want = reel_pattern_byte(seed, received + (uint32_t)i);
        if (in_buf[i] != want) {
          printf("tcpecho: FAIL byte %u is 0x%02x, expected 0x%02x\n", received + (uint32_t)i, in_buf[i],
                 want);
          print_counters();
          rt_exit(3);
        }
      }
      hash = reel_fnv64_update(hash, in_buf, (uint32_t)n);
      received += (uint32_t)n;
    }
    if (received == total) break;
    if (tcp_eof(c)) {
      printf("tcpecho: FAIL the server closed after %u of %u bytes\n", received, total);
      rt_exit(3);
    }
    if (tcp_error(c)) fail(tcp_error(c));
    if (clock_passed(run_deadline)) {
      printf("tcpecho: FAIL timeout: sent %u, received %u of %u bytes\n", sent, received, total);
      print_counters();
      rt_exit(3);
    }
    tcp_step();
  }
  printf("tcpecho: sent %u bytes, received %u bytes, hash 0x%016llx\n", sent, received,
         (unsigned long long)hash);
  if (tcp_close(c, run_deadline) != 0) fail("close: no FIN both ways before the deadline");
  conn = 0;
  printf("tcpecho: closed\n");
  if (arg_num("stats=", 0)) print_counters();
  net_flush();
  printf("tcpecho: ok\n");
  return 0;
}
