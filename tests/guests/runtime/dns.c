/* A DNS stub resolver for reel's network guests: one A-record question
 * over UDP (RFC 1035), retried with a doubling timeout, and an answer
 * parser that trusts nothing: every name, count and length is checked
 * against the datagram, and compression pointers must point backwards
 * (at most 16 of them per name), so a hostile answer ends in a counted
 * "malformed" instead of a loop or an overrun. Query ids come from a
 * counter: runs repeat. */
#include "net.h"

#define DNS_PORT 53
#define DNS_CLIENT_PORT 53053
#define DNS_HLEN 12
#define DNS_MAX_MSG 512 /* plain UDP DNS (no EDNS) */
#define MAX_POINTERS 16
#define TYPE_A 1
#define CLASS_IN 1

static struct dns_stats stats;
static int sock = -1;
static uint16_t next_id = 0x7265; /* "re" */

const struct dns_stats* dns_get_stats(void) { return &stats; }

static inline uint16_t rd16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* "a.b.c" -> 1 a 1 b 1 c 0; a trailing dot is allowed. Length of the
 * encoding, or 0 for an empty label, a label over 63 bytes or a name over
 * 255 bytes. */
static uint32_t encode_name(const char* name, uint8_t* out, uint32_t cap) {
  uint32_t n = 0;
  const char* p = name;
  if (!*p) return 0;
  while (*p) {
    const char* dot = p;
    while (*dot && *dot != '.') ++dot;
    uint32_t label = (uint32_t)(dot - p);
    if (label == 0 || label > 63 || n + 1 + label + 1 > cap || n + 1 + label + 1 > DNS_MAX_NAME) return 0;
    out[n++] = (uint8_t)label;
    memcpy(out + n, p, label);
    n += label;
    p = *dot ? dot + 1 : dot;
  }
  out[n++] = 0;
  return n;
}

/* Skips the name at *off (following no pointer: its end in the message is
 * where the pointer or the root label sits). Checks every label and
 * pointer it meets by walking a copy with pointers followed. 0 when
 * malformed. */
static int skip_name(const uint8_t* m, uint32_t len, uint32_t* off) {
  uint32_t at = *off, end = 0, total = 0;
  int jumps = 0, jumped = 0;
  for (;;) {
    if (at >= len) return 0;
    uint8_t b = m[at];
    if ((b & 0xc0) == 0xc0) {
      if (at + 1 >= len) return 0;
      uint32_t target = ((uint32_t)(b & 0x3f) << 8) | m[at + 1];
      if (target >= at || ++jumps > MAX_POINTERS) return 0; /* only backwards: no loops */
      if (!jumped) end = at + 2;
      jumped = 1;
      at = target;
      continue;
    }
    if (b & 0xc0) return 0; /* the reserved label types */
    if (b == 0) {
      if (!jumped) end = at + 1;
      break;
    }
    total += 1u + b;
    if (total > DNS_MAX_NAME || at + 1 + b > len) return 0;
    at += 1u + b;
  }
  *off = end;
  return 1;
}

struct answer_wait {
  uint32_t server;
  uint16_t id;
  int got;
  uint8_t msg[DNS_MAX_MSG];
  uint32_t len;
};

static int answered(void* arg) {
  struct answer_wait* w = (struct answer_wait*)arg;
  struct udp_meta meta;
  int n;
  while (!w->got && (n = udp_recv(sock, w->msg, sizeof w->msg, &meta)) >= 0) {
    if (meta.src_ip != w->server || meta.src_port != DNS_PORT || n < DNS_HLEN || rd16(w->msg) != w->id ||
        !(w->msg[2] & 0x80)) {
      ++stats.replies_ignored;
      continue;
    }
    ++stats.replies;
    w->len = (uint32_t)n;
    w->got = 1;
  }
  return w->got;
}

/* Reads the answer: DNS_OK / DNS_RCODE / DNS_NO_A, or -4 when malformed. */
static int parse_answer(const uint8_t* m, uint32_t len, uint32_t* addr, uint32_t* rcode) {
  uint32_t code = m[3] & 15;
  if (code) {
    *rcode = code;
    return DNS_RCODE;
  }
  uint32_t qd = rd16(m + 4), an = rd16(m + 6);
  uint32_t off = DNS_HLEN;
  for (uint32_t i = 0; i < qd; ++i) {
    if (!skip_name(m, len, &off) || off + 4 > len) return -4;
    off += 4;
  }
  for (uint32_t i = 0; i < an; ++i) {
    if (!skip_name(m, len, &off) || off + 10 > len) return -4;
    uint16_t type = rd16(m + off), cls = rd16(m + off + 2), rdlen = rd16(m + off + 8);
    off += 10;
    if (off + rdlen > len) return -4;
    if (type == TYPE_A && cls == CLASS_IN) {
      if (rdlen != 4) return -4;
      *addr = rd32(m + off);
      return DNS_OK;
    }
    off += rdlen;
  }
  return DNS_NO_A;
}

int dns_lookup_a(uint32_t server, const char* name, uint32_t deadline, uint32_t* addr, uint32_t* rcode) {
  static struct answer_wait w;
  uint8_t q[DNS_HLEN + DNS_MAX_NAME + 4 + 1];
  uint32_t nlen = encode_name(name, q + DNS_HLEN, DNS_MAX_NAME + 1);
  if (!nlen) return DNS_BAD_NAME;
  int ifx;
  uint8_t mac[ETH_ALEN];
  if (net_resolve_next_hop(server, &ifx, mac, deadline) != 0) return DNS_NO_ROUTE;
  if (sock < 0) sock = udp_bind(DNS_CLIENT_PORT);
  if (sock < 0) return DNS_NO_ROUTE;
  uint16_t id = next_id++;
  wr16(q, id);
  wr16(q + 2, 0x0100); /* a standard query, recursion desired */
  wr16(q + 4, 1);
  wr16(q + 6, 0);
  wr16(q + 8, 0);
  wr16(q + 10, 0);
  wr16(q + DNS_HLEN + nlen, TYPE_A);
  wr16(q + DNS_HLEN + nlen + 2, CLASS_IN);
  uint32_t qlen = DNS_HLEN + nlen + 4;

  /* Stale replies of an earlier question must not answer this one. */
  while (udp_recv(sock, w.msg, sizeof w.msg, 0) >= 0) ++stats.replies_ignored;
  uint32_t wait_ms = 1000;
  while (!clock_passed(deadline)) {
    w.server = server;
    w.id = id;
    w.got = 0;
    const struct net_if* nif = net_if_get(ifx);
    if (udp_send_via(ifx, mac, nif->ip, server, DNS_CLIENT_PORT, DNS_PORT, q, qlen) == 0)
      ++stats.queries_sent;
    uint32_t until = clock_ticks() + clock_ms(wait_ms);
    if ((int32_t)(until - deadline) > 0) until = deadline;
    while (net_wait(answered, &w, until)) {
      int r = parse_answer(w.msg, w.len, addr, rcode);
      if (r != -4) return r;
      ++stats.malformed;
      w.got = 0; /* keep waiting: a good answer may still come */
    }
    if (wait_ms < 8000) wait_ms *= 2;
  }
  return DNS_TIMEOUT;
}
