/* netpeer: pings its peers and answers their pings over NE2000 cards, then
 * finishes with a small UDP handshake so that every guest of a session
 * exits on its own, deterministically, with status 0 only when everyone
 * got what they wanted.
 *
 * Command line (besides net_configure's nic= io= irq= ip= ipN= mask= poll=
 * width= mcast=):
 *   peer=A[,B...]   the peers (each reached through the card whose subnet
 *                   holds it)
 *   role=peer       ping every peer, answer pings, exchange "done"  [peer]
 *   role=client     ping every peer, tell them "done", exit once acknowledged
 *   role=server     only answer pings; exit once every peer said "done"
 *   count=N         replies needed from each peer                   [4]
 *   attempts=M      pings allowed per peer before giving up     [2N+10]
 *   wait=MS         how long one ping waits for its reply          [1000]
 *   interval=MS     pause after each successful ping                  [0]
 *   size=N          ICMP data bytes per ping (up to 1472)             [32]
 *   timeout=S       bound on the whole run                           [60]
 *   isolate=1       every card must see broadcasts from its own peers
 *                   and no frame from anyone else (VLAN isolation)
 *
 * The handshake (UDP port 7000): a guest that has finished pinging
 * broadcasts "reel-done" on each card with peers, every 500 ms, until each
 * peer has answered "reel-ack" (sent for every "reel-done" received, even a
 * repeat). A peer-role guest exits when all its peers acknowledged its done
 * and all sent their own; by then nobody needs anything more from it: each
 * peer has had its pings answered (it said done) and its done acknowledged.
 *
 * Output is one line per event the guest caused (ARP resolution, each ping
 * outcome) and a summary in peer order; nothing depends on timing except
 * which pings time out when a peer really is away. */
#include "net.h"

#define CTRL_PORT 7000
#define MAX_PEERS 8
#define PING_ID 0x7265
#define DONE_MSG "reel-done"
#define ACK_MSG "reel-ack"

enum role { ROLE_PEER, ROLE_CLIENT, ROLE_SERVER };
static const char* const role_names[] = {"peer", "client", "server"};

struct peer {
  uint32_t ip;
  int ifx;
  uint8_t done_seen; /* its "reel-done" arrived */
  uint8_t acked;     /* it acknowledged ours */
};

static struct peer peers[MAX_PEERS];
static int peer_count;
static enum role role = ROLE_PEER;
static int ctrl_sock;
static uint32_t run_deadline;

/* VLAN isolation bookkeeping, per card. */
static int isolate;
static uint32_t peer_broadcasts[NET_MAX_IF], foreign_frames[NET_MAX_IF];
static uint32_t first_foreign_ip[NET_MAX_IF];
static uint8_t first_foreign_mac[NET_MAX_IF][ETH_ALEN];

static void fail(const char* what, uint32_t ip) {
  printf("netpeer: FAIL %s%s%s\n", what, ip ? " " : "", ip ? ip_str(ip) : "");
  net_flush();
  rt_exit(3);
}

static struct peer* find_peer(uint32_t ip) {
  for (int i = 0; i < peer_count; ++i) {
    if (peers[i].ip == ip) return &peers[i];
  }
  return 0;
}

static uint32_t deadline_in(uint32_t ticks) {
  uint32_t d = clock_ticks() + ticks;
  return (int32_t)(d - run_deadline) > 0 ? run_deadline : d;
}

/* Runs inside every net_wait: answers and records control messages. */
static void ctrl_service(void) {
  char buf[32];
  struct udp_meta m;
  int n;
  while ((n = udp_recv(ctrl_sock, buf, sizeof buf - 1, &m)) >= 0) {
    buf[n] = 0;
    struct peer* p = find_peer(m.src_ip);
    if (str_eq(buf, DONE_MSG)) {
      if (p) p->done_seen = 1;
      udp_reply(&m, ACK_MSG, sizeof ACK_MSG - 1);
    } else if (str_eq(buf, ACK_MSG)) {
      if (p) p->acked = 1;
    }
  }
}

static uint16_t get16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t get32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void note_foreign(int ifx, uint32_t ip, const uint8_t* mac) {
  if (foreign_frames[ifx]++ == 0) {
    first_foreign_ip[ifx] = ip;
    memcpy(first_foreign_mac[ifx], mac, ETH_ALEN);
  }
}

/* Sorts every received frame into "from a peer of this card" or "foreign".
 * Our own frames looped back by a hub are fine on their own card; one of
 * our other cards' frames here means the VLANs leak into each other. */
static void observe(int ifx, const uint8_t* f, uint32_t len) {
  const uint8_t* src_mac = f + ETH_ALEN;
  for (int j = 0; j < net_if_count(); ++j) {
    if (memcmp(src_mac, net_if_get(j)->mac, ETH_ALEN) == 0) {
      if (j != ifx) note_foreign(ifx, net_if_get(j)->ip, src_mac);
      return;
    }
  }
  uint16_t type = get16(f + 12);
  uint32_t sender = 0;
  if (type == 0x0806 && len >= ETH_HLEN + 28) sender = get32(f + ETH_HLEN + 14);
  else if (type == 0x0800 && len >= ETH_HLEN + 20) sender = get32(f + ETH_HLEN + 12);
  struct peer* p = sender ? find_peer(sender) : 0;
  if (!p || p->ifx != ifx) {
    note_foreign(ifx, sender, src_mac);
    return;
  }
  static const uint8_t all_ones[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  if (memcmp(f, all_ones, ETH_ALEN) == 0) ++peer_broadcasts[ifx];
}

static void parse_peers(void) {
  const char* s = cmdline_arg("peer=");
  if (!s) fail("no peer= given", 0);
  while (*s && *s != ' ') {
    if (peer_count == MAX_PEERS) fail("too many peers", 0);
    uint32_t ip = parse_ip(s, &s);
    if (!ip) fail("peer= takes dotted IPv4 addresses separated by commas", 0);
    peers[peer_count].ip = ip;
    peers[peer_count].ifx = net_route(ip);
    ++peer_count;
    if (*s == ',') ++s;
  }
  if (!peer_count) fail("no peer= given", 0);
}

static uint32_t arg_num(const char* key, uint32_t fallback) {
  const char* v = cmdline_arg(key);
  return v ? parse_num(v, 0) : fallback;
}

static void ping_peer(const struct peer* p, uint32_t count, uint32_t attempts, uint32_t size, uint32_t wait_ticks,
                      uint32_t interval_ticks) {
  uint8_t mac[ETH_ALEN];
  if (arp_resolve(p->ip, mac, clock_ms(500), run_deadline) != 0) fail("no ARP reply from", p->ip);
  printf("arp %s is %s\n", ip_str(p->ip), mac_str(mac));
  uint32_t ok = 0, tries = 0;
  int rtt_ok = 1;
  while (ok < count) {
    if (tries == attempts) {
      printf("ping %s: %u/%u replies after %u attempts\n", ip_str(p->ip), ok, count, tries);
      fail("too many lost pings to", p->ip);
    }
    ++tries;
    uint16_t seq = (uint16_t)tries;
    uint32_t rtt = 0;
    int r = icmp_ping(p->ip, PING_ID, seq, size, deadline_in(wait_ticks), &rtt);
    if (r == 0) {
      ++ok;
      if (rtt > wait_ticks) rtt_ok = 0;
      printf("ping %s seq=%u ok\n", ip_str(p->ip), seq);
      if (ok < count && interval_ticks) net_wait(0, 0, deadline_in(interval_ticks));
    } else if (r == -1) {
      printf("ping %s seq=%u timeout\n", ip_str(p->ip), seq);
    } else {
      fail("could not send a ping to", p->ip);
    }
    if (clock_passed(run_deadline)) fail("run timeout while pinging", p->ip);
  }
  printf("ping %s: %u/%u replies, rtt %s\n", ip_str(p->ip), ok, count, rtt_ok ? "ok" : "TOO LONG");
  if (!rtt_ok) fail("a reply took longer than wait= to", p->ip);
}

static int all_acked(void) {
  for (int i = 0; i < peer_count; ++i) {
    if (!peers[i].acked) return 0;
  }
  return 1;
}

static int all_done(void) {
  for (int i = 0; i < peer_count; ++i) {
    if (!peers[i].done_seen) return 0;
  }
  return 1;
}

static int finished(void* unused) {
  (void)unused;
  if (role != ROLE_SERVER && !all_acked()) return 0;
  if (role != ROLE_CLIENT && !all_done()) return 0;
  return 1;
}

static void finish(void) {
  uint32_t next_done = clock_ticks();
  while (!finished(0)) {
    if (clock_passed(run_deadline)) {
      for (int i = 0; i < peer_count; ++i) {
        if (role != ROLE_SERVER && !peers[i].acked) printf("peer %s: never acknowledged our done\n", ip_str(peers[i].ip));
        if (role != ROLE_CLIENT && !peers[i].done_seen) printf("peer %s: never said done\n", ip_str(peers[i].ip));
      }
      fail("run timeout in the done handshake", 0);
    }
    if (role != ROLE_SERVER && clock_passed(next_done) && !all_acked()) {
      for (int ifx = 0; ifx < net_if_count(); ++ifx) {
        int wanted = 0;
        for (int i = 0; i < peer_count; ++i) wanted |= peers[i].ifx == ifx && !peers[i].acked;
        if (wanted) udp_broadcast(ifx, CTRL_PORT, CTRL_PORT, DONE_MSG, sizeof DONE_MSG - 1);
      }
      next_done = clock_ticks() + clock_ms(500);
    }
    net_wait(finished, 0, deadline_in(clock_ms(100)));
  }
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  net_configure();
  run_deadline = clock_ticks() + arg_num("timeout=", 60) * CLOCK_HZ;
  const char* r = cmdline_arg("role=");
  if (r) {
    if (str_starts(r, "peer")) role = ROLE_PEER;
    else if (str_starts(r, "client")) role = ROLE_CLIENT;
    else if (str_starts(r, "server")) role = ROLE_SERVER;
    else fail("role= takes peer, client or server", 0);
  }
  parse_peers();
  uint32_t count = arg_num("count=", 4);
  uint32_t attempts = arg_num("attempts=", 2 * count + 10);
  uint32_t wait_ticks = clock_ms(arg_num("wait=", 1000));
  uint32_t interval_ticks = clock_ms(arg_num("interval=", 0));
  uint32_t size = arg_num("size=", 32);
  isolate = arg_num("isolate=", 0) != 0;
  if (size > ICMP_MAX_DATA) fail("size= is at most 1472", 0);
  if (!count || !wait_ticks || attempts < count) fail("count=, attempts= and wait= must allow a success", 0);

  ctrl_sock = udp_bind(CTRL_PORT);
  net_set_poll_hook(ctrl_service);
  if (isolate) net_set_observer(observe);

  if (role == ROLE_SERVER)
    printf("netpeer: role server, answering %d peer(s)\n", peer_count);
  else
    printf("netpeer: role %s, %u pings to each of %d peer(s)\n", role_names[role], count, peer_count);
  if (role != ROLE_SERVER) {
    for (int i = 0; i < peer_count; ++i) ping_peer(&peers[i], count, attempts, size, wait_ticks, interval_ticks);
  }
  finish();
  for (int i = 0; i < peer_count; ++i) printf("peer %s: finished\n", ip_str(peers[i].ip));

  if (isolate) {
    int leaks = 0;
    for (int ifx = 0; ifx < net_if_count(); ++ifx) {
      int has_peers = 0;
      for (int i = 0; i < peer_count; ++i) has_peers |= peers[i].ifx == ifx;
      if (!has_peers && !foreign_frames[ifx]) continue;
      if (foreign_frames[ifx]) {
        printf("isolation nic%d: %u frame(s) from outside its VLAN, first from %s (%s)\n", ifx, foreign_frames[ifx],
               ip_str(first_foreign_ip[ifx]), mac_str(first_foreign_mac[ifx]));
        ++leaks;
      } else if (!peer_broadcasts[ifx]) {
        printf("isolation nic%d: no broadcast from its peers seen\n", ifx);
        ++leaks;
      } else {
        printf("isolation nic%d: peer broadcasts seen, nothing from other VLANs\n", ifx);
      }
    }
    if (leaks) fail("VLAN isolation", 0);
  }
  net_flush();
  printf("netpeer: ok\n");
  return 0;
}
