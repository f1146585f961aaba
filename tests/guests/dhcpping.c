/* dhcpping: takes a DHCP lease on every NE2000 card, prints what the
 * server said, pings the router and the DNS server through that card, and
 * optionally releases the leases. The reference is QEMU's user-mode
 * network (libslirp): under `-net user` the lease, the options and the
 * echo replies all come from the emulator itself, nothing leaves the host.
 *
 * Command line (besides net_configure's nic= io= irq= poll= width=):
 *   count=N     echo replies needed from each address        [3]
 *   timeout=S   bound on the whole run                        [30]
 *   release=1   DHCPRELEASE every lease before exiting        [off]
 *   nak=N       the first REQUEST of each card asks for the offered
 *               address + N, to draw a NAK (then the client starts over)
 *   detail=1    also print how the server's OFFER and ACK looked on the
 *               wire (addresses, sizes, options in order)
 *
 * Output per card, in card order (deterministic: nothing depends on timing
 * except retransmission and timeout lines when something is really lost):
 *   dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400
 *   dhcp nic0: hostname ... / domain ... / search ... / bootfile ... /
 *              tftp-server ... / file ... / sname ... (each when given)
 *   arp 10.0.2.2 is ...
 *   ping 10.0.2.2 seq=1 ok ...
 * Failures print "dhcpping: FAIL <why>" and exit with code 3. */
#include "net.h"

#define PING_ID 0x6468 /* "dh"; the card number is added */

static struct dhcp_lease leases[NET_MAX_IF];
static uint32_t run_deadline;

static void fail(const char* what, int ifx) {
  printf("dhcpping: FAIL %s (nic%d)\n", what, ifx);
  net_flush();
  rt_exit(3);
}

static uint32_t arg_num(const char* key, uint32_t fallback) {
  const char* v = cmdline_arg(key);
  return v ? parse_num(v, 0) : fallback;
}

static uint32_t deadline_in(uint32_t ticks) {
  uint32_t d = clock_ticks() + ticks;
  return (int32_t)(d - run_deadline) > 0 ? run_deadline : d;
}

/* "/24" for a contiguous mask, " mask a.b.c.d" otherwise. */
static void print_mask(uint32_t mask) {
  uint32_t prefix = 0;
  while (prefix < 32 && (mask & (0x80000000u >> prefix))) ++prefix;
  uint32_t rebuilt = prefix ? 0xffffffffu << (32 - prefix) : 0;
  if (rebuilt == mask)
    printf("/%u", prefix);
  else
    printf(" mask %s", ip_str(mask));
}

static void print_lease(int ifx, const struct dhcp_lease* L) {
  printf("dhcp nic%d: lease %s", ifx, ip_str(L->ip));
  print_mask(L->mask);
  printf(" router %s", L->router ? ip_str(L->router) : "none");
  printf(" dns ");
  if (!L->dns_count) printf("none");
  for (int i = 0; i < L->dns_count; ++i) printf("%s%s", i ? "," : "", ip_str(L->dns[i]));
  printf(" server %s", ip_str(L->server));
  if (L->has_lease)
    printf(" lease %u\n", L->lease_secs);
  else
    printf(" lease none\n");
  if (!L->has_mask) printf("dhcp nic%d: no subnet mask given, classful assumed\n", ifx);
  if (L->has_renew) printf("dhcp nic%d: renew %u\n", ifx, L->renew_secs);
  if (L->has_rebind) printf("dhcp nic%d: rebind %u\n", ifx, L->rebind_secs);
  if (L->has_broadcast) printf("dhcp nic%d: broadcast %s\n", ifx, ip_str(L->broadcast));
  if (L->hostname[0]) printf("dhcp nic%d: hostname %s\n", ifx, L->hostname);
  if (L->domain[0]) printf("dhcp nic%d: domain %s\n", ifx, L->domain);
  if (L->search[0]) printf("dhcp nic%d: search %s\n", ifx, L->search);
  if (L->bootfile[0]) printf("dhcp nic%d: bootfile %s\n", ifx, L->bootfile);
  if (L->tftp_server[0]) printf("dhcp nic%d: tftp-server %s\n", ifx, L->tftp_server);
  if (L->sname[0]) printf("dhcp nic%d: sname %s\n", ifx, L->sname);
  if (L->file[0]) printf("dhcp nic%d: file %s\n", ifx, L->file);
}

static void print_message(int ifx, const char* what, const struct dhcp_message_info* I) {
  printf("dhcp nic%d: %s from %s %s to %s %s, %u bytes, options %u bytes:", ifx, what, ip_str(I->src_ip),
         mac_str(I->src_mac), ip_str(I->dst_ip), mac_str(I->dst_mac), I->length, I->options_length);
  for (int i = 0; i < I->code_count; ++i) printf(" %u/%u", I->codes[i], I->lens[i]);
  printf("\n");
  printf("dhcp nic%d: %s flags %x ciaddr %s yiaddr %s siaddr %s giaddr %s\n", ifx, what, I->flags,
         ip_str(I->ciaddr), ip_str(I->yiaddr), ip_str(I->siaddr), ip_str(I->giaddr));
}

static void ping_address(int ifx, uint32_t ip, uint32_t count) {
  uint8_t mac[ETH_ALEN];
  if (arp_resolve_via(ifx, ip, mac, clock_ms(500), run_deadline) != 0) {
    printf("arp %s: no reply\n", ip_str(ip));
    fail("no ARP reply", ifx);
  }
  printf("arp %s is %s\n", ip_str(ip), mac_str(mac));
  uint32_t ok = 0, tries = 0, attempts = 2 * count + 4;
  while (ok < count) {
    if (tries == attempts) {
      printf("ping %s: %u/%u replies after %u attempts\n", ip_str(ip), ok, count, tries);
      fail("too many lost pings", ifx);
    }
    ++tries;
    uint16_t seq = (uint16_t)tries;
    int r = icmp_ping_via(ifx, mac, ip, (uint16_t)(PING_ID + ifx), seq, 32, deadline_in(clock_ms(1000)), 0);
    if (r == 0) {
      ++ok;
      printf("ping %s seq=%u ok\n", ip_str(ip), seq);
    } else if (r == -1) {
      printf("ping %s seq=%u timeout\n", ip_str(ip), seq);
    } else {
      fail("could not send a ping", ifx);
    }
    if (clock_passed(run_deadline)) fail("run timeout while pinging", ifx);
  }
  printf("ping %s: %u/%u replies\n", ip_str(ip), ok, count);
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  int cards = net_configure_flags(NET_CONFIG_ADDRESS_OPTIONAL);
  run_deadline = clock_ticks() + arg_num("timeout=", 30) * CLOCK_HZ;
  uint32_t count = arg_num("count=", 3);
  int release = arg_num("release=", 0) != 0;
  int detail = arg_num("detail=", 0) != 0;
  uint32_t nak_offset = arg_num("nak=", 0);
  if (!count) fail("count= must be at least 1", 0);
  printf("dhcpping: %d card(s), %u pings to the router and the DNS server of each lease\n", cards, count);

  for (int ifx = 0; ifx < cards; ++ifx) {
    struct dhcp_lease* L = &leases[ifx];
    if (nak_offset) dhcp_set_request_offset_once(nak_offset);
    if (dhcp_acquire(ifx, L, run_deadline) != 0) fail("no lease", ifx);
    if (detail && L->naks) {
      print_message(ifx, "nak", &L->nak);
      printf("dhcp nic%d: nak message \"%s\"\n", ifx, L->nak_message);
    }
    if (detail) {
      print_message(ifx, "offer", &L->offer);
      print_message(ifx, "ack", &L->ack);
    }
    print_lease(ifx, L);
    if (L->router) ping_address(ifx, L->router, count);
    for (int i = 0; i < L->dns_count; ++i) {
      if (L->dns[i] != L->router) ping_address(ifx, L->dns[i], count);
    }
  }
  if (release) {
    for (int ifx = 0; ifx < cards; ++ifx) {
      uint32_t ip = leases[ifx].ip;
      if (dhcp_release(&leases[ifx], run_deadline) != 0) fail("release not sent", ifx);
      printf("dhcp nic%d: released %s to %s\n", ifx, ip_str(ip), ip_str(leases[ifx].server));
    }
  }
  net_flush();
  printf("dhcpping: ok\n");
  return 0;
}
