/* The DHCP client of reel's network guests (RFC 2131, options RFC 2132,
 * domain search RFC 3397, long options RFC 3396).
 *
 * One lease per interface, each keyed by its own card's MAC (chaddr and the
 * client identifier), so two cards on one hub get two leases. Every server
 * message is checked against the interface it arrived on, its xid and its
 * chaddr before anything reads it, and every option length is checked
 * against the bytes that hold it. Nothing is random: transaction ids come
 * from the MAC and the retransmission backoff has no jitter, so a run under
 * the same server repeats exactly. */
#include "net.h"

#define BOOTP_FIXED 236    /* op .. file: the BOOTP header */
#define DHCP_MIN 240       /* the header and the magic cookie */
#define BOOTP_MIN_SEND 300 /* RFC 1542: shortest BOOTP message a relay must accept */
#define DHCP_MAGIC 0x63825363u

enum {
  OPT_PAD = 0,
  OPT_MASK = 1,
  OPT_ROUTER = 3,
  OPT_DNS = 6,
  OPT_HOSTNAME = 12,
  OPT_DOMAIN = 15,
  OPT_BROADCAST = 28,
  OPT_REQUESTED_IP = 50,
  OPT_LEASE = 51,
  OPT_OVERLOAD = 52,
  OPT_MSG_TYPE = 53,
  OPT_SERVER_ID = 54,
  OPT_PARAMS = 55,
  OPT_MESSAGE = 56,
  OPT_RENEW = 58,
  OPT_REBIND = 59,
  OPT_CLIENT_ID = 61,
  OPT_TFTP_SERVER = 66,
  OPT_BOOTFILE = 67,
  OPT_SEARCH = 119,
  OPT_END = 255,
};

enum {
  DHCPDISCOVER = 1,
  DHCPOFFER = 2,
  DHCPREQUEST = 3,
  DHCPDECLINE = 4,
  DHCPACK = 5,
  DHCPNAK = 6,
  DHCPRELEASE = 7
};

#define FIRST_RETRY_S 4
#define LAST_RETRY_S 64
#define MAX_RESTARTS 4

static const uint8_t params_wanted[] = {OPT_MASK,   OPT_ROUTER,      OPT_DNS,     OPT_HOSTNAME,
                                        OPT_DOMAIN, OPT_BROADCAST,   OPT_LEASE,   OPT_SERVER_ID,
                                        OPT_SEARCH, OPT_TFTP_SERVER, OPT_BOOTFILE};
static const uint8_t broadcast_mac[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static inline uint32_t rd32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t rd16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* ---- receiving: one message slot per interface ---- */

static int port_bound;
static uint32_t request_offset_once;

void dhcp_set_request_offset_once(uint32_t offset) { request_offset_once = offset; }
static struct {
  uint8_t waiting; /* an exchange runs on this interface */
  uint8_t full;    /* buf holds a message for it */
  uint32_t xid;
  uint32_t len;
  struct udp_meta meta;
  uint8_t buf[UDP_MAX_PAYLOAD];
} inbox[NET_MAX_IF];

/* Runs inside net_poll: keeps a server reply (op 2) for this interface's
 * exchange, with its xid and its card's MAC in chaddr. Everything else
 * (another card's reply seen through the hub, a stale xid) is dropped. */
static void dhcp_input(const struct udp_meta* meta, const uint8_t* data, uint32_t len) {
  int ifx = meta->ifx;
  if (ifx < 0 || ifx >= NET_MAX_IF || !inbox[ifx].waiting || inbox[ifx].full) return;
  if (len < DHCP_MIN || len > UDP_MAX_PAYLOAD) return;
  if (data[0] != 2 || data[1] != 1 || data[2] != ETH_ALEN) return;
  if (rd32(data + 4) != inbox[ifx].xid) return;
  if (memcmp(data + 28, net_if_get(ifx)->mac, ETH_ALEN) != 0) return;
  if (rd32(data + BOOTP_FIXED) != DHCP_MAGIC) return;
  memcpy(inbox[ifx].buf, data, len);
  inbox[ifx].len = len;
  inbox[ifx].meta = *meta;
  inbox[ifx].full = 1;
}

static int inbox_full(void* arg) { return inbox[*(int*)arg].full; }

/* ---- options ---- */

/* What one message says, gathered from its option areas. */
struct parsed {
  int type;
  uint32_t server;
  uint8_t has_server;
  struct dhcp_lease* into; /* when set, every option is stored in it */
  struct dhcp_message_info* info;
  char* message;       /* when set, option 56 is stored here (DHCP_TEXT bytes) */
  uint8_t search[512]; /* option 119, all instances concatenated (RFC 3396) */
  uint32_t search_len;
  uint8_t bad; /* an option ran past its area */
};

/* Appends `len` bytes of option text to a NUL-terminated buffer (several
 * instances of one option concatenate, RFC 3396); non-printables become '?'. */
static void text_append(char* dst, uint32_t cap, const uint8_t* src, uint32_t len) {
  uint32_t n = str_len(dst);
  for (uint32_t i = 0; i < len && n + 1 < cap; ++i) {
    uint8_t c = src[i];
    if (c == 0 && i + 1 == len) break; /* a trailing NUL some servers add */
    dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  dst[n] = 0;
}

static void take_option(struct parsed* m, uint8_t code, const uint8_t* v, uint32_t len) {
  if (m->info && m->info->code_count < DHCP_MAX_OPTIONS) {
    m->info->codes[m->info->code_count] = code;
    m->info->lens[m->info->code_count] = (uint8_t)len;
    ++m->info->code_count;
  }
  if (code == OPT_MSG_TYPE && len == 1) m->type = v[0];
  if (code == OPT_SERVER_ID && len == 4) {
    m->server = rd32(v);
    m->has_server = 1;
  }
  if (code == OPT_SEARCH) {
    for (uint32_t i = 0; i < len && m->search_len < sizeof m->search; ++i) m->search[m->search_len++] = v[i];
  }
  if (code == OPT_MESSAGE && m->message) text_append(m->message, DHCP_TEXT, v, len);
  struct dhcp_lease* L = m->into;
  if (!L) return;
  switch (code) {
    case OPT_MASK:
      if (len == 4) {
        L->mask = rd32(v);
        L->has_mask = 1;
      }
      break;
    case OPT_ROUTER:
      if (len >= 4 && len % 4 == 0 && !L->router) L->router = rd32(v);
      break;
    case OPT_DNS:
      for (uint32_t i = 0; i + 4 <= len && L->dns_count < DHCP_MAX_DNS; i += 4)
        L->dns[L->dns_count++] = rd32(v + i);
      break;
    case OPT_BROADCAST:
      if (len == 4) {
        L->broadcast = rd32(v);
        L->has_broadcast = 1;
      }
      break;
    case OPT_LEASE:
      if (len == 4) {
        L->lease_secs = rd32(v);
        L->has_lease = 1;
      }
      break;
    case OPT_RENEW:
      if (len == 4) {
        L->renew_secs = rd32(v);
        L->has_renew = 1;
      }
      break;
    case OPT_REBIND:
      if (len == 4) {
        L->rebind_secs = rd32(v);
        L->has_rebind = 1;
      }
      break;
    case OPT_HOSTNAME:
      text_append(L->hostname, sizeof L->hostname, v, len);
      break;
    case OPT_DOMAIN:
      text_append(L->domain, sizeof L->domain, v, len);
      break;
    case OPT_TFTP_SERVER:
      text_append(L->tftp_server, sizeof L->tftp_server, v, len);
      break;
    case OPT_BOOTFILE:
      text_append(L->bootfile, sizeof L->bootfile, v, len);
      break;
    default:
      break;
  }
}

/* Walks one option area; returns the overload value (option 52) seen in it.
 * Stops at END; an option whose length runs past the area marks the
 * message bad and ends the walk. */
static int walk_area(struct parsed* m, const uint8_t* p, uint32_t len, uint32_t* used) {
  int overload = 0;
  uint32_t i = 0;
  while (i < len) {
    uint8_t code = p[i];
    if (code == OPT_PAD) {
      ++i;
      continue;
    }
    if (code == OPT_END) {
      ++i;
      break;
    }
    if (i + 2 > len || i + 2 + p[i + 1] > len) {
      m->bad = 1;
      i = len;
      break;
    }
    uint32_t olen = p[i + 1];
    const uint8_t* v = p + i + 2;
    if (code == OPT_OVERLOAD && olen == 1) overload = v[0];
    take_option(m, code, v, olen);
    i += 2 + olen;
  }
  if (used) *used = i;
  return overload;
}

/* One domain name of an RFC 1035 wire-format list at *at (compression
 * pointers allowed, bounded), appended as text; *at moves past it. 0 on a
 * malformed name. */
static int name_at(const uint8_t* buf, uint32_t len, uint32_t* at, char* out, uint32_t cap) {
  uint32_t pos = *at, n = str_len(out), jumps = 0;
  int jumped = 0, first = 1;
  for (;;) {
    if (pos >= len) return 0;
    uint8_t l = buf[pos];
    if (l == 0) {
      if (!jumped) *at = pos + 1;
      break;
    }
    if ((l & 0xc0) == 0xc0) {
      if (pos + 1 >= len || ++jumps > 16) return 0;
      uint32_t target = ((uint32_t)(l & 0x3f) << 8) | buf[pos + 1];
      if (!jumped) *at = pos + 2;
      jumped = 1;
      if (target >= pos) return 0; /* pointers go backwards only: no loops */
      pos = target;
      continue;
    }
    if (l & 0xc0) return 0;
    if (pos + 1 + l > len) return 0;
    if (!first && n + 1 < cap) out[n++] = '.';
    for (uint32_t i = 0; i < l && n + 1 < cap; ++i) {
      uint8_t c = buf[pos + 1 + i];
      out[n++] = (c > 0x20 && c < 0x7f && c != ',') ? (char)c : '?';
    }
    first = 0;
    pos += 1 + l;
  }
  out[n] = 0;
  return 1;
}

static void decode_search(const struct parsed* m, char* out, uint32_t cap) {
  uint32_t at = 0;
  while (at < m->search_len) {
    uint32_t n = str_len(out);
    if (n && n + 2 < cap) {
      out[n] = ',';
      out[n + 1] = 0;
    }
    uint32_t before = str_len(out);
    if (!name_at(m->search, m->search_len, &at, out, cap)) {
      out[before] = 0; /* drop the partial name */
      text_append(out, cap, (const uint8_t*)"<malformed>", 11);
      return;
    }
  }
}

/* Parses the message in inbox[ifx] (options field, then file and sname
 * when option 52 says they hold options). */
static void parse_message(int ifx, struct parsed* m) {
  const uint8_t* d = inbox[ifx].buf;
  uint32_t len = inbox[ifx].len;
  uint32_t used = 0;
  if (m->info) mem_set(m->info, 0, sizeof *m->info);
  int overload = walk_area(m, d + DHCP_MIN, len - DHCP_MIN, &used);
  if (m->info) {
    struct dhcp_message_info* I = m->info;
    I->src_ip = inbox[ifx].meta.src_ip;
    I->dst_ip = inbox[ifx].meta.dst_ip;
    memcpy(I->src_mac, inbox[ifx].meta.src_mac, ETH_ALEN);
    memcpy(I->dst_mac, inbox[ifx].meta.dst_mac, ETH_ALEN);
    I->length = len;
    I->options_length = used;
    I->flags = rd16(d + 10);
    I->ciaddr = rd32(d + 12);
    I->yiaddr = rd32(d + 16);
    I->siaddr = rd32(d + 20);
    I->giaddr = rd32(d + 24);
  }
  if (overload & 1) walk_area(m, d + 108, 128, 0);
  if (overload & 2) walk_area(m, d + 44, 64, 0);
  if (m->into) {
    struct dhcp_lease* L = m->into;
    L->siaddr = rd32(d + 20);
    if (!(overload & 2)) {
      uint32_t n = 0;
      while (n < 64 && d[44 + n]) ++n;
      L->sname[0] = 0;
      text_append(L->sname, sizeof L->sname, d + 44, n);
    }
    if (!(overload & 1)) {
      uint32_t n = 0;
      while (n < 128 && d[108 + n]) ++n;
      L->file[0] = 0;
      text_append(L->file, sizeof L->file, d + 108, n);
    }
    decode_search(m, L->search, sizeof L->search);
  }
}

/* ---- sending ---- */

static uint8_t out_buf[BOOTP_MIN_SEND + 64];

static uint32_t put_option(uint32_t at, uint8_t code, const void* v, uint8_t len) {
  out_buf[at] = code;
  out_buf[at + 1] = len;
  memcpy(out_buf + at + 2, v, len);
  return at + 2 + len;
}

/* A client message: type, xid, ciaddr; requested address and server id
 * when non-zero; the parameter list except in a RELEASE. */
static int send_message(int ifx, int type, uint32_t xid, uint32_t ciaddr, uint32_t requested, uint32_t server,
                        const uint8_t* dst_mac, uint32_t dst_ip) {
  const struct net_if* nif = net_if_get(ifx);
  mem_set(out_buf, 0, sizeof out_buf);
  out_buf[0] = 1; /* BOOTREQUEST */
  out_buf[1] = 1; /* Ethernet */
  out_buf[2] = ETH_ALEN;
  wr32(out_buf + 4, xid);
  /* secs stays 0 and flags 0 (no broadcast bit: this kit hears replies to
   * its MAC before it has an address). */
  wr32(out_buf + 12, ciaddr);
  memcpy(out_buf + 28, nif->mac, ETH_ALEN);
  wr32(out_buf + BOOTP_FIXED, DHCP_MAGIC);
  uint32_t at = DHCP_MIN;
  uint8_t t = (uint8_t)type;
  at = put_option(at, OPT_MSG_TYPE, &t, 1);
  uint8_t client_id[1 + ETH_ALEN];
  client_id[0] = 1;
  memcpy(client_id + 1, nif->mac, ETH_ALEN);
  at = put_option(at, OPT_CLIENT_ID, client_id, sizeof client_id);
  uint8_t a[4];
  if (requested) {
    wr32(a, requested);
    at = put_option(at, OPT_REQUESTED_IP, a, 4);
  }
  if (server) {
    wr32(a, server);
    at = put_option(at, OPT_SERVER_ID, a, 4);
  }
  if (type != DHCPRELEASE) at = put_option(at, OPT_PARAMS, params_wanted, sizeof params_wanted);
  out_buf[at++] = OPT_END;
  if (at < BOOTP_MIN_SEND) at = BOOTP_MIN_SEND;
  return udp_send_via(ifx, dst_mac, ciaddr, dst_ip, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, out_buf, at);
}

/* ---- the exchange ---- */

static void bind_port(void) {
  if (!port_bound) {
    if (udp_bind_handler(DHCP_CLIENT_PORT, dhcp_input) < 0) {
      printf("dhcp: FAIL no UDP socket left for port 68\n");
      rt_exit(2);
    }
    port_bound = 1;
  }
}

static uint32_t clamp(uint32_t t, uint32_t deadline) { return (int32_t)(t - deadline) > 0 ? deadline : t; }

static uint32_t classful_mask(uint32_t ip) {
  if ((ip >> 31) == 0) return 0xff000000u;
  if ((ip >> 30) == 2) return 0xffff0000u;
  return 0xffffff00u;
}

/* Sends `type` now and again on the backoff until a reply of one of the
 * wanted types arrives (returned, left in the inbox) or the deadline (0). */
static int exchange(int ifx, struct dhcp_lease* L, int type, uint32_t requested, uint32_t server,
                    uint32_t deadline, uint32_t* sent) {
  int ifx_arg = ifx;
  uint32_t interval = FIRST_RETRY_S * CLOCK_HZ;
  uint32_t next = clock_ticks();
  uint32_t sent_here = 0;
  inbox[ifx].full = 0;
  for (;;) {
    if (clock_passed(deadline)) return 0;
    if (clock_passed(next)) {
      if (sent_here++) {
        printf("dhcp nic%d: no %s yet, %s again\n", ifx, type == DHCPDISCOVER ? "DHCPOFFER" : "DHCPACK",
               type == DHCPDISCOVER ? "DHCPDISCOVER" : "DHCPREQUEST");
      }
      send_message(ifx, type, L->xid, 0, requested, server, broadcast_mac, 0xffffffffu);
      ++*sent;
      next = clamp(clock_ticks() + interval, deadline);
      if (interval < LAST_RETRY_S * CLOCK_HZ) interval *= 2;
    }
    net_wait(inbox_full, &ifx_arg, next);
    if (!inbox[ifx].full) continue;
    struct parsed m;
    mem_set(&m, 0, sizeof m);
    parse_message(ifx, &m);
    int reply = m.bad ? 0 : m.type;
    if (type == DHCPDISCOVER && reply == DHCPOFFER && m.has_server && rd32(inbox[ifx].buf + 16))
      return DHCPOFFER;
    if (type == DHCPREQUEST && (reply == DHCPACK || reply == DHCPNAK) &&
        (!m.has_server || m.server == server))
      return reply;
    inbox[ifx].full = 0; /* not for this step: keep waiting */
  }
}

int dhcp_acquire(int ifx, struct dhcp_lease* L, uint32_t deadline) {
  if (ifx < 0 || ifx >= net_if_count()) return -1;
  bind_port();
  mem_set(L, 0, sizeof *L);
  L->ifx = ifx;
  const uint8_t* mac = net_if_get(ifx)->mac;
  net_if_set_address(ifx, 0, 0, 0, 0);
  inbox[ifx].waiting = 1;
  for (uint32_t restarts = 0;; ++restarts) {
    /* 'r' 'e' and the card's last four MAC bytes; a restart changes the top. */
    L->xid = (0x72650000u | ((uint32_t)mac[4] << 8) | mac[5]) ^ ((uint32_t)mac[2] << 8) ^
             ((uint32_t)mac[3] << 16) ^ (restarts << 24);
    inbox[ifx].xid = L->xid;
    if (!exchange(ifx, L, DHCPDISCOVER, 0, 0, deadline, &L->discovers)) {
      printf("dhcp nic%d: FAIL no DHCPOFFER after %u DHCPDISCOVER(s)\n", ifx, L->discovers);
      inbox[ifx].waiting = 0;
      return -1;
    }
    struct parsed offer;
    mem_set(&offer, 0, sizeof offer);
    offer.info = &L->offer;
    parse_message(ifx, &offer);
    uint32_t offered = rd32(inbox[ifx].buf + 16);
    uint32_t server = offer.server;
    uint32_t ask = offered + request_offset_once;
    request_offset_once = 0;
    int reply = exchange(ifx, L, DHCPREQUEST, ask, server, deadline, &L->requests);
    if (!reply) {
      printf("dhcp nic%d: FAIL no DHCPACK for %s from %s after %u DHCPREQUEST(s)\n", ifx, ip_str(ask),
             ip_str(server), L->requests);
      inbox[ifx].waiting = 0;
      return -1;
    }
    if (reply == DHCPNAK) {
      ++L->naks;
      struct parsed nak;
      mem_set(&nak, 0, sizeof nak);
      mem_set(&L->nak, 0, sizeof L->nak);
      L->nak_message[0] = 0;
      nak.info = &L->nak;
      nak.message = L->nak_message;
      parse_message(ifx, &nak);
      inbox[ifx].full = 0;
      if (restarts + 1 >= MAX_RESTARTS) {
        printf("dhcp nic%d: FAIL %u DHCPNAK(s) from %s\n", ifx, L->naks, ip_str(server));
        inbox[ifx].waiting = 0;
        return -1;
      }
      printf("dhcp nic%d: DHCPNAK from %s for %s, starting over\n", ifx, ip_str(server), ip_str(ask));
      continue;
    }
    struct parsed ack;
    mem_set(&ack, 0, sizeof ack);
    ack.info = &L->ack;
    ack.into = L;
    parse_message(ifx, &ack);
    inbox[ifx].full = 0;
    inbox[ifx].waiting = 0;
    L->ip = L->ack.yiaddr ? L->ack.yiaddr : offered;
    L->server = ack.has_server ? ack.server : server;
    if (!L->has_mask) L->mask = classful_mask(L->ip);
    net_if_set_address(ifx, L->ip, L->mask, L->router, L->dns_count ? L->dns[0] : 0);
    return 0;
  }
}

int dhcp_release(struct dhcp_lease* L, uint32_t deadline) {
  int ifx = L->ifx;
  if (!L->ip || !L->server) return -1;
  uint8_t mac[ETH_ALEN];
  if (arp_resolve_via(ifx, L->server, mac, clock_ms(500), deadline) != 0) {
    printf("dhcp nic%d: no ARP reply from server %s for the release\n", ifx, ip_str(L->server));
    return -1;
  }
  int r = send_message(ifx, DHCPRELEASE, L->xid, L->ip, 0, L->server, mac, L->server);
  net_flush();
  net_if_set_address(ifx, 0, 0, 0, 0);
  return r;
}
