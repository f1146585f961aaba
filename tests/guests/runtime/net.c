/* The IPv4 kit of reel's network guests: configuration from the command
 * line, Ethernet dispatch, ARP (cache, requests, replies), IPv4 (checksums,
 * fragments dropped), ICMP echo (answers requests, sends pings) and UDP
 * (bound ports with small receive queues, checksums both ways).
 *
 * Interface k is NE2000 card k (probe order). All of this runs in the
 * guest's main flow; frames come from the driver's queue in net_poll(). */
#include "net.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define IPPROTO_ICMP 1
#define IPPROTO_UDP 17
#define IP_HLEN 20
#define ARP_LEN 28
#define UDP_HLEN 8
#define FRAME_BYTES 1536

static struct net_if ifs[NET_MAX_IF];
static int if_count;
static void (*observer)(int ifx, const uint8_t* frame, uint32_t len);
static void (*poll_hook)(void);
static net_ip_handler tcp_handler; /* net_set_tcp_handler: TCP goes there */
static uint8_t rx_frame[FRAME_BYTES];
static uint8_t tx_frame[FRAME_BYTES];
static uint16_t ip_ident = 1;
static const uint8_t broadcast_mac[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* ---- bytes and checksums ---- */

static inline uint16_t get16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t get32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void put32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* The Internet checksum's running sum of big-endian 16-bit words (an odd
 * last byte is padded with zero). */
static uint32_t sum_bytes(uint32_t sum, const uint8_t* p, uint32_t len) {
  while (len > 1) {
    sum += get16(p);
    p += 2;
    len -= 2;
  }
  if (len) sum += (uint32_t)p[0] << 8;
  return sum;
}

static uint16_t sum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static uint32_t pseudo_header_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

/* ---- text ---- */

uint32_t parse_num(const char* s, const char** end) {
  uint32_t v = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    for (;;) {
      char c = *s;
      uint32_t d;
      if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
      else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
      else break;
      v = v * 16 + d;
      ++s;
    }
  } else {
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint32_t)(*s++ - '0');
  }
  if (end) *end = s;
  return v;
}

uint32_t parse_ip(const char* s, const char** end) {
  uint32_t ip = 0;
  for (int i = 0; i < 4; ++i) {
    if (*s < '0' || *s > '9') return 0;
    uint32_t part = parse_num(s, &s);
    if (part > 255) return 0;
    ip = (ip << 8) | part;
    if (i < 3) {
      if (*s != '.') return 0;
      ++s;
    }
  }
  if (end) *end = s;
  return ip;
}

static char text_buffers[4][20];
static int text_next;

static char* next_text_buffer(void) {
  char* b = text_buffers[text_next];
  text_next = (text_next + 1) % 4;
  return b;
}

const char* ip_str(uint32_t ip) {
  char* b = next_text_buffer();
  char* p = b;
  for (int i = 3; i >= 0; --i) {
    uint32_t part = (ip >> (8 * i)) & 0xff;
    if (part >= 100) *p++ = (char)('0' + part / 100);
    if (part >= 10) *p++ = (char)('0' + part / 10 % 10);
    *p++ = (char)('0' + part % 10);
    if (i) *p++ = '.';
  }
  *p = 0;
  return b;
}

const char* mac_str(const uint8_t* mac) {
  static const char hex[] = "0123456789abcdef";
  char* b = next_text_buffer();
  for (int i = 0; i < ETH_ALEN; ++i) {
    b[3 * i] = hex[mac[i] >> 4];
    b[3 * i + 1] = hex[mac[i] & 15];
    b[3 * i + 2] = i < ETH_ALEN - 1 ? ':' : 0;
  }
  return b;
}

/* ---- configuration ---- */

static void config_fail(const char* what) {
  printf("net: FAIL %s\n", what);
  rt_exit(2);
}

static const char* arg_or(const char* key, const char* fallback) {
  const char* v = cmdline_arg(key);
  return v ? v : fallback;
}

static int word_is(const char* v, const char* word) {
  uint32_t n = str_len(word);
  for (uint32_t i = 0; i < n; ++i) {
    if (v[i] != word[i]) return 0;
  }
  return v[n] == 0 || v[n] == ' ' || v[n] == ',';
}

int net_configure(void) { return net_configure_flags(0); }

int net_configure_flags(unsigned config_flags) {
  pic_remap();
  clock_start();
  sti();

  const char* mode = arg_or("nic=", "auto");
  int want_pci = word_is(mode, "auto") || word_is(mode, "pci");
  int want_isa = word_is(mode, "isa");
  if (!want_pci && !want_isa) config_fail("nic= takes auto, pci or isa");
  uint16_t io = (uint16_t)parse_num(arg_or("io=", "0x300"), 0);
  const char* irq_arg = arg_or("irq=", "9");
  int isa_irq = word_is(irq_arg, "none") ? -1 : (int)parse_num(irq_arg, 0);
  if (isa_irq > 15) config_fail("irq= must be 0-15 or none");
  unsigned flags = 0;
  if (word_is(arg_or("poll=", "0"), "1")) flags |= NE2K_POLLED;
  if (word_is(arg_or("width=", "16"), "8")) flags |= NE2K_BYTE_MODE;
  if (word_is(arg_or("mcast=", "0"), "1")) flags |= NE2K_MULTICAST;
  uint32_t prefix = parse_num(arg_or("mask=", "24"), 0);
  if (prefix > 32) config_fail("mask= takes a prefix length 0-32");
  uint32_t mask = prefix ? 0xffffffffu << (32 - prefix) : 0;

  if (want_pci) ne2k_probe_pci();
  if (want_isa || (word_is(mode, "auto") && ne2k_count() == 0)) ne2k_probe_isa(io, isa_irq);
  if (ne2k_count() == 0) config_fail("no NE2000 card found");

  if_count = ne2k_count();
  for (int i = 0; i < if_count; ++i) {
    const struct ne2k_info* info = ne2k_info(i);
    ne2k_start(i, flags);
    if (info->bus == NE2K_PCI)
      printf("net: nic%d ne2k_pci 00:%02x.%u io %x", i, info->pci_dev, info->pci_fn, info->io);
    else
      printf("net: nic%d ne2k_isa io %x", i, info->io);
    if (info->irq >= 0) printf(" irq %d", info->irq);
    printf("%s mac %s %s-bit%s\n", info->polled ? " polled" : "", mac_str(info->mac),
           info->sixteen_bit ? "16" : "8", info->sixteen_bit && !info->word ? " byte-mode" : "");
    ifs[i].nic = i;
    ifs[i].mask = mask;
    for (int b = 0; b < ETH_ALEN; ++b) ifs[i].mac[b] = info->mac[b];
  }

  int configured = 0;
  for (int i = 0; i < NET_MAX_IF; ++i) {
    char key[] = "ipN=";
    key[2] = (char)('0' + i);
    const char* v = cmdline_arg(key);
    if (!v && i == 0) v = cmdline_arg("ip=");
    if (!v) continue;
    uint32_t ip = parse_ip(v, 0);
    if (!ip) config_fail("an ip= value is not a dotted IPv4 address");
    if (i >= if_count) {
      printf("net: FAIL ip%d= given but only %d card(s) found\n", i, if_count);
      rt_exit(2);
    }
    ifs[i].ip = ip;
    ++configured;
    printf("net: nic%d ip %s/%u\n", i, ip_str(ip), prefix);
  }
  if (!configured && !(config_flags & NET_CONFIG_ADDRESS_OPTIONAL))
    config_fail("no address: give ip= (or ip0=, ip1=, ...)");
  return if_count;
}

void net_if_set_address(int ifx, uint32_t ip, uint32_t mask, uint32_t router, uint32_t dns) {
  if (ifx < 0 || ifx >= if_count) return;
  ifs[ifx].ip = ip;
  ifs[ifx].mask = mask;
  ifs[ifx].router = router;
  ifs[ifx].dns = dns;
}

int net_if_count(void) { return if_count; }
const struct net_if* net_if_get(int ifx) { return &ifs[ifx]; }

int net_route(uint32_t ip) {
  for (int i = 0; i < if_count; ++i) {
    if (ifs[i].ip && (ip & ifs[i].mask) == (ifs[i].ip & ifs[i].mask)) return i;
  }
  for (int i = 0; i < if_count; ++i) {
    if (ifs[i].ip) return i;
  }
  return 0;
}

void net_set_observer(void (*fn)(int ifx, const uint8_t* frame, uint32_t len)) { observer = fn; }
void net_set_poll_hook(void (*fn)(void)) { poll_hook = fn; }

/* ---- output ---- */

/* Ethernet header into tx_frame. */
static void eth_header(int ifx, const uint8_t* dst, uint16_t type) {
  memcpy(tx_frame, dst, ETH_ALEN);
  memcpy(tx_frame + ETH_ALEN, ifs[ifx].mac, ETH_ALEN);
  put16(tx_frame + 12, type);
}

/* Sends the IPv4 payload already at tx_frame + 34, from `src_ip`. */
static int ip_send_from(int ifx, const uint8_t* dst_mac, uint32_t src_ip, uint32_t dst_ip, uint8_t proto,
                        uint32_t payload_len) {
  if (payload_len > ETH_FRAME_MAX - ETH_HLEN - IP_HLEN) return -1;
  eth_header(ifx, dst_mac, ETHERTYPE_IPV4);
  uint8_t* ip = tx_frame + ETH_HLEN;
  ip[0] = 0x45;
  ip[1] = 0;
  put16(ip + 2, (uint16_t)(IP_HLEN + payload_len));
  put16(ip + 4, ip_ident++);
  put16(ip + 6, 0);
  ip[8] = 64;
  ip[9] = proto;
  put16(ip + 10, 0);
  put32(ip + 12, src_ip);
  put32(ip + 16, dst_ip);
  put16(ip + 10, sum_fold(sum_bytes(0, ip, IP_HLEN)));
  return ne2k_send(ifs[ifx].nic, tx_frame, ETH_HLEN + IP_HLEN + payload_len);
}

/* The same from the interface's own address. */
static int ip_send(int ifx, const uint8_t* dst_mac, uint32_t dst_ip, uint8_t proto, uint32_t payload_len) {
  return ip_send_from(ifx, dst_mac, ifs[ifx].ip, dst_ip, proto, payload_len);
}

/* ---- ARP ---- */

#define ARP_CACHE 16

struct arp_entry {
  uint32_t ip;
  uint8_t mac[ETH_ALEN];
  uint8_t valid;
  int ifx;
};

static struct arp_entry arp_cache[ARP_CACHE];
static int arp_victim;

/* arp_resolve_via's question: an ARP packet from `ip` on interface `ifx`. */
static struct {
  uint32_t ip;
  int ifx;
  uint8_t active, answered;
  uint8_t mac[ETH_ALEN];
} arp_probe;

static struct arp_entry* arp_find(uint32_t ip) {
  for (int i = 0; i < ARP_CACHE; ++i) {
    if (arp_cache[i].valid && arp_cache[i].ip == ip) return &arp_cache[i];
  }
  return 0;
}

/* RFC 826's merge: refresh a known sender always, add it only when the
 * packet was meant for us. */
static void arp_learn(uint32_t ip, const uint8_t* mac, int ifx, int add) {
  struct arp_entry* e = arp_find(ip);
  if (!e) {
    if (!add) return;
    for (int i = 0; i < ARP_CACHE && !e; ++i) {
      if (!arp_cache[i].valid) e = &arp_cache[i];
    }
    if (!e) {
      e = &arp_cache[arp_victim];
      arp_victim = (arp_victim + 1) % ARP_CACHE;
    }
  }
  e->ip = ip;
  memcpy(e->mac, mac, ETH_ALEN);
  e->ifx = ifx;
  e->valid = 1;
}

static int arp_send(int ifx, uint16_t op, const uint8_t* eth_dst, const uint8_t* tha, uint32_t tpa) {
  eth_header(ifx, eth_dst, ETHERTYPE_ARP);
  uint8_t* a = tx_frame + ETH_HLEN;
  put16(a, 1);                /* Ethernet */
  put16(a + 2, ETHERTYPE_IPV4);
  a[4] = ETH_ALEN;
  a[5] = 4;
  put16(a + 6, op);
  memcpy(a + 8, ifs[ifx].mac, ETH_ALEN);
  put32(a + 14, ifs[ifx].ip);
  memcpy(a + 18, tha, ETH_ALEN);
  put32(a + 24, tpa);
  return ne2k_send(ifs[ifx].nic, tx_frame, ETH_HLEN + ARP_LEN);
}

static void arp_input(int ifx, const uint8_t* f, uint32_t len) {
  if (len < ETH_HLEN + ARP_LEN) return;
  const uint8_t* a = f + ETH_HLEN;
  if (get16(a) != 1 || get16(a + 2) != ETHERTYPE_IPV4 || a[4] != ETH_ALEN || a[5] != 4) return;
  uint16_t op = get16(a + 6);
  const uint8_t* sha = a + 8;
  uint32_t spa = get32(a + 14), tpa = get32(a + 24);
  uint32_t me = ifs[ifx].ip;
  if (!me || spa == 0 || spa == me) return;
  if (arp_probe.active && !arp_probe.answered && ifx == arp_probe.ifx && spa == arp_probe.ip && tpa == me) {
    memcpy(arp_probe.mac, sha, ETH_ALEN);
    arp_probe.answered = 1;
  }
  arp_learn(spa, sha, ifx, tpa == me);
  if (op == 1 && tpa == me) arp_send(ifx, 2, sha, sha, spa);
}

int arp_lookup(uint32_t ip, uint8_t* mac) {
  const struct arp_entry* e = arp_find(ip);
  if (!e) return -1;
  if (mac) memcpy(mac, e->mac, ETH_ALEN);
  return 0;
}

static int arp_known(void* ip) { return arp_find(*(uint32_t*)ip) != 0; }

int arp_resolve(uint32_t ip, uint8_t* mac, uint32_t retry_ticks, uint32_t deadline) {
  static const uint8_t zero_mac[ETH_ALEN] = {0};
  int ifx = net_route(ip);
  if (retry_ticks == 0) retry_ticks = 1;
  while (arp_lookup(ip, mac) != 0) {
    if (clock_passed(deadline)) return -1;
    arp_send(ifx, 1, broadcast_mac, zero_mac, ip);
    uint32_t until = clock_ticks() + retry_ticks;
    if ((int32_t)(until - deadline) > 0) until = deadline;
    net_wait(arp_known, &ip, until);
  }
  return 0;
}

static int arp_probe_answered(void* unused) {
  (void)unused;
  return arp_probe.answered;
}

int arp_resolve_via(int ifx, uint32_t ip, uint8_t* mac, uint32_t retry_ticks, uint32_t deadline) {
  static const uint8_t zero_mac[ETH_ALEN] = {0};
  if (ifx < 0 || ifx >= if_count || !ifs[ifx].ip) return -1;
  const struct arp_entry* e = arp_find(ip);
  if (e && e->ifx == ifx) {
    if (mac) memcpy(mac, e->mac, ETH_ALEN);
    return 0;
  }
  if (retry_ticks == 0) retry_ticks = 1;
  arp_probe.ip = ip;
  arp_probe.ifx = ifx;
  arp_probe.answered = 0;
  arp_probe.active = 1;
  while (!arp_probe.answered) {
    if (clock_passed(deadline)) break;
    arp_send(ifx, 1, broadcast_mac, zero_mac, ip);
    uint32_t until = clock_ticks() + retry_ticks;
    if ((int32_t)(until - deadline) > 0) until = deadline;
    net_wait(arp_probe_answered, 0, until);
  }
  arp_probe.active = 0;
  if (!arp_probe.answered) return -1;
  if (mac) memcpy(mac, arp_probe.mac, ETH_ALEN);
  return 0;
}

/* ---- ICMP ---- */

static struct {
  uint8_t active, answered;
  uint16_t id, seq;
  uint32_t ip, sent, rtt, data_len;
} ping;
static uint32_t echo_answered;

uint32_t icmp_echo_requests_answered(void) { return echo_answered; }

static uint8_t ping_byte(uint16_t seq, uint32_t i) { return (uint8_t)(0x20 + ((seq + i * 5) & 0x3f)); }

static void icmp_input(int ifx, const uint8_t* f, uint32_t src, int broadcast, const uint8_t* m, uint32_t len) {
  if (len < 8 || sum_fold(sum_bytes(0, m, len)) != 0) return;
  uint8_t type = m[0], code = m[1];
  if (type == 8 && code == 0 && !broadcast) {
    /* Echo the request back to the sender's MAC: no ARP round trip. */
    if (len > ETH_FRAME_MAX - ETH_HLEN - IP_HLEN) return;
    uint8_t* r = tx_frame + ETH_HLEN + IP_HLEN;
    memcpy(r, m, len);
    r[0] = 0;
    put16(r + 2, 0);
    put16(r + 2, sum_fold(sum_bytes(0, r, len)));
    if (ip_send(ifx, f + ETH_ALEN, src, IPPROTO_ICMP, len) == 0) ++echo_answered;
  } else if (type == 0 && code == 0 && ping.active && !ping.answered && src == ping.ip &&
             get16(m + 4) == ping.id && get16(m + 6) == ping.seq && len == 8 + ping.data_len) {
    for (uint32_t i = 0; i < ping.data_len; ++i) {
      if (m[8 + i] != ping_byte(ping.seq, i)) return;
    }
    ping.answered = 1;
    ping.rtt = clock_ticks() - ping.sent;
  }
}

static int ping_answered(void* unused) {
  (void)unused;
  return ping.answered;
}

int icmp_ping(uint32_t ip, uint16_t id, uint16_t seq, uint32_t data_len, uint32_t deadline, uint32_t* rtt) {
  const struct arp_entry* e = arp_find(ip);
  if (!e || data_len > ICMP_MAX_DATA) return -2;
  uint8_t mac[ETH_ALEN];
  memcpy(mac, e->mac, ETH_ALEN);
  return icmp_ping_via(e->ifx, mac, ip, id, seq, data_len, deadline, rtt);
}

int icmp_ping_via(int ifx, const uint8_t* mac, uint32_t ip, uint16_t id, uint16_t seq, uint32_t data_len,
                  uint32_t deadline, uint32_t* rtt) {
  if (ifx < 0 || ifx >= if_count || data_len > ICMP_MAX_DATA) return -2;
  uint8_t* m = tx_frame + ETH_HLEN + IP_HLEN;
  m[0] = 8;
  m[1] = 0;
  put16(m + 2, 0);
  put16(m + 4, id);
  put16(m + 6, seq);
  for (uint32_t i = 0; i < data_len; ++i) m[8 + i] = ping_byte(seq, i);
  put16(m + 2, sum_fold(sum_bytes(0, m, 8 + data_len)));
  ping.active = 1;
  ping.answered = 0;
  ping.id = id;
  ping.seq = seq;
  ping.ip = ip;
  ping.data_len = data_len;
  ping.sent = clock_ticks();
  if (ip_send(ifx, mac, ip, IPPROTO_ICMP, 8 + data_len) != 0) {
    ping.active = 0;
    return -2;
  }
  int got = net_wait(ping_answered, 0, deadline);
  ping.active = 0;
  if (!got) return -1;
  if (rtt) *rtt = ping.rtt;
  return 0;
}

/* ---- UDP ---- */

#define UDP_SOCKETS 4
#define UDP_QUEUE 4

struct udp_datagram {
  struct udp_meta meta;
  uint16_t len;
  uint8_t data[UDP_MAX_PAYLOAD];
};

static struct {
  uint16_t port;
  uint8_t bound;
  uint32_t head, tail;
  udp_handler handler; /* set: datagrams go to it, not to q */
  struct udp_datagram q[UDP_QUEUE];
} udp_sockets[UDP_SOCKETS];

int udp_bind(uint16_t port) {
  for (int i = 0; i < UDP_SOCKETS; ++i) {
    if (!udp_sockets[i].bound) {
      udp_sockets[i].bound = 1;
      udp_sockets[i].port = port;
      udp_sockets[i].head = udp_sockets[i].tail = 0;
      udp_sockets[i].handler = 0;
      return i;
    }
  }
  return -1;
}

int udp_bind_handler(uint16_t port, udp_handler fn) {
  int sock = udp_bind(port);
  if (sock >= 0) udp_sockets[sock].handler = fn;
  return sock;
}

int udp_recv(int sock, void* buf, uint32_t cap, struct udp_meta* meta) {
  if (sock < 0 || sock >= UDP_SOCKETS) return -1;
  if (udp_sockets[sock].head == udp_sockets[sock].tail) return -1;
  const struct udp_datagram* d = &udp_sockets[sock].q[udp_sockets[sock].tail % UDP_QUEUE];
  uint32_t n = d->len < cap ? d->len : cap;
  memcpy(buf, d->data, n);
  if (meta) *meta = d->meta;
  ++udp_sockets[sock].tail;
  return (int)n;
}

static void udp_input(int ifx, const uint8_t* f, uint32_t src, uint32_t dst, const uint8_t* u, uint32_t len) {
  if (len < UDP_HLEN) return;
  uint16_t ulen = get16(u + 4);
  if (ulen < UDP_HLEN || ulen > len || ulen - UDP_HLEN > UDP_MAX_PAYLOAD) return;
  if (get16(u + 6) != 0) {
    uint32_t sum = pseudo_header_sum(src, dst, IPPROTO_UDP, ulen);
    if (sum_fold(sum_bytes(sum, u, ulen)) != 0) return;
  }
  uint16_t port = get16(u + 2);
  for (int i = 0; i < UDP_SOCKETS; ++i) {
    if (!udp_sockets[i].bound || udp_sockets[i].port != port) continue;
    if (udp_sockets[i].handler) {
      struct udp_meta meta;
      meta.ifx = ifx;
      meta.src_ip = src;
      meta.dst_ip = dst;
      meta.src_port = get16(u);
      meta.dst_port = port;
      memcpy(meta.src_mac, f + ETH_ALEN, ETH_ALEN);
      memcpy(meta.dst_mac, f, ETH_ALEN);
      udp_sockets[i].handler(&meta, u + UDP_HLEN, (uint32_t)(ulen - UDP_HLEN));
      return;
    }
    if (udp_sockets[i].head - udp_sockets[i].tail >= UDP_QUEUE) return; /* full: dropped */
    struct udp_datagram* d = &udp_sockets[i].q[udp_sockets[i].head % UDP_QUEUE];
    d->meta.ifx = ifx;
    d->meta.src_ip = src;
    d->meta.dst_ip = dst;
    d->meta.src_port = get16(u);
    d->meta.dst_port = port;
    memcpy(d->meta.src_mac, f + ETH_ALEN, ETH_ALEN);
    memcpy(d->meta.dst_mac, f, ETH_ALEN);
    d->len = (uint16_t)(ulen - UDP_HLEN);
    memcpy(d->data, u + UDP_HLEN, d->len);
    ++udp_sockets[i].head;
    return;
  }
}

static int udp_out_from(int ifx, const uint8_t* mac, uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport,
                        const void* data, uint32_t len) {
  if (len > UDP_MAX_PAYLOAD) return -1;
  uint8_t* u = tx_frame + ETH_HLEN + IP_HLEN;
  uint16_t ulen = (uint16_t)(UDP_HLEN + len);
  put16(u, sport);
  put16(u + 2, dport);
  put16(u + 4, ulen);
  put16(u + 6, 0);
  memcpy(u + UDP_HLEN, data, len);
  uint16_t sum = sum_fold(sum_bytes(pseudo_header_sum(src_ip, dst_ip, IPPROTO_UDP, ulen), u, ulen));
  put16(u + 6, sum ? sum : 0xffff);
  return ip_send_from(ifx, mac, src_ip, dst_ip, IPPROTO_UDP, ulen);
}

static int udp_out(int ifx, const uint8_t* mac, uint32_t dst_ip, uint16_t sport, uint16_t dport, const void* data,
                   uint32_t len) {
  if (!ifs[ifx].ip) return -1;
  return udp_out_from(ifx, mac, ifs[ifx].ip, dst_ip, sport, dport, data, len);
}

int udp_send_via(int ifx, const uint8_t* dst_mac, uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                 uint16_t dst_port, const void* data, uint32_t len) {
  if (ifx < 0 || ifx >= if_count) return -1;
  return udp_out_from(ifx, dst_mac, src_ip, dst_ip, src_port, dst_port, data, len);
}

int udp_send(uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, const void* data, uint32_t len) {
  const struct arp_entry* e = arp_find(dst_ip);
  if (!e) return -1;
  uint8_t mac[ETH_ALEN];
  memcpy(mac, e->mac, ETH_ALEN);
  return udp_out(e->ifx, mac, dst_ip, src_port, dst_port, data, len);
}

int udp_broadcast(int ifx, uint16_t src_port, uint16_t dst_port, const void* data, uint32_t len) {
  if (ifx < 0 || ifx >= if_count) return -1;
  return udp_out(ifx, broadcast_mac, 0xffffffffu, src_port, dst_port, data, len);
}

int udp_reply(const struct udp_meta* to, const void* data, uint32_t len) {
  uint8_t mac[ETH_ALEN];
  memcpy(mac, to->src_mac, ETH_ALEN);
  return udp_out(to->ifx, mac, to->src_ip, to->dst_port, to->src_port, data, len);
}

/* ---- IPv4 and dispatch ---- */

static void ip_input(int ifx, const uint8_t* f, uint32_t len) {
  if (len < ETH_HLEN + IP_HLEN) return;
  const uint8_t* ip = f + ETH_HLEN;
  uint32_t room = len - ETH_HLEN;
  uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
  uint16_t total = get16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < IP_HLEN || total < ihl || total > room) return;
  if (sum_fold(sum_bytes(0, ip, ihl)) != 0) return;
  if (get16(ip + 6) & 0x3fff) return; /* a fragment (MF or an offset): never reassembled */
  uint32_t src = get32(ip + 12), dst = get32(ip + 16);
  uint32_t me = ifs[ifx].ip;
  if (!me) {
    /* No address yet: only DHCP replies, whatever they are addressed to
     * (a server may send them to the offered address or to broadcast). */
    if (ip[9] == IPPROTO_UDP && total - ihl >= UDP_HLEN && get16(ip + ihl + 2) == DHCP_CLIENT_PORT)
      udp_input(ifx, f, src, dst, ip + ihl, total - ihl);
    return;
  }
  int broadcast = dst == 0xffffffffu || (ifs[ifx].mask != 0xffffffffu && dst == (me | ~ifs[ifx].mask));
  if (dst != me && !broadcast) return;
  const uint8_t* payload = ip + ihl;
  uint32_t plen = total - ihl;
  if (ip[9] == IPPROTO_ICMP) icmp_input(ifx, f, src, broadcast, payload, plen);
  else if (ip[9] == IPPROTO_UDP) udp_input(ifx, f, src, dst, payload, plen);
  else if (ip[9] == NET_IPPROTO_TCP && tcp_handler && !broadcast) tcp_handler(ifx, f, src, dst, payload, plen);
}

static void frame_input(int ifx, const uint8_t* f, uint32_t len) {
  if (len < ETH_HLEN) return;
  if (observer) observer(ifx, f, len);
  if (memcmp(f + ETH_ALEN, ifs[ifx].mac, ETH_ALEN) == 0) return; /* our own, looped back by a hub */
  if (memcmp(f, ifs[ifx].mac, ETH_ALEN) != 0 && memcmp(f, broadcast_mac, ETH_ALEN) != 0) return;
  uint16_t type = get16(f + 12);
  if (type == ETHERTYPE_ARP) arp_input(ifx, f, len);
  else if (type == ETHERTYPE_IPV4) ip_input(ifx, f, len);
}

void net_poll(void) {
  for (int i = 0; i < if_count; ++i) {
    /* A bounded batch per card, so a flood cannot starve the caller. */
    for (int n = 0; n < 32; ++n) {
      uint32_t len = ne2k_recv(ifs[i].nic, rx_frame, sizeof rx_frame);
      if (!len) break;
      frame_input(i, rx_frame, len);
    }
  }
}

int net_wait(int (*cond)(void* arg), void* arg, uint32_t deadline) {
  for (;;) {
    net_poll();
    if (poll_hook) poll_hook();
    if (cond && cond(arg)) return 1;
    if (clock_passed(deadline)) return 0;
    ne2k_idle();
  }
}

void net_flush(void) { ne2k_flush(); }

/* ---- other IPv4 protocols (tcp.c) ---- */

void net_set_tcp_handler(net_ip_handler fn) { tcp_handler = fn; }

int net_ip_send(int ifx, const uint8_t* dst_mac, uint32_t dst_ip, uint8_t proto, const void* payload,
                uint32_t len) {
  if (ifx < 0 || ifx >= if_count || !ifs[ifx].ip || len > ETH_FRAME_MAX - ETH_HLEN - IP_HLEN) return -1;
  memcpy(tx_frame + ETH_HLEN + IP_HLEN, payload, len);
  return ip_send(ifx, dst_mac, dst_ip, proto, len);
}

int net_resolve_next_hop(uint32_t ip, int* ifx_out, uint8_t* mac, uint32_t deadline) {
  int ifx = net_route(ip);
  if (ifx < 0 || ifx >= if_count || !ifs[ifx].ip) return -1;
  uint32_t hop = ip;
  /* Off-link addresses go through the interface's router (from DHCP). */
  if ((ip & ifs[ifx].mask) != (ifs[ifx].ip & ifs[ifx].mask)) {
    if (!ifs[ifx].router) return -1;
    hop = ifs[ifx].router;
  }
  if (arp_resolve_via(ifx, hop, mac, clock_ms(500), deadline) != 0) return -1;
  if (ifx_out) *ifx_out = ifx;
  return 0;
}
