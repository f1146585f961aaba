/* TCP for reel's network guests (RFC 9293, reduced): a few connections,
 * active and passive open, MSS option, a sliding send window over a ring
 * buffer (several segments in flight, bounded by the peer's window and
 * TCP_MAX_FLIGHT), go-back-N retransmission on the tick clock with
 * exponential backoff plus a fast retransmit after three duplicate ACKs,
 * in-order receive into a ring buffer whose free space is the advertised
 * window, FIN both ways and RST.
 *
 * Segments arrive through net.c's dispatch (tcp_input, may send but not
 * wait); everything timed happens in tcp_service, which every wait in here
 * runs after each poll. Nothing is random: initial sequence numbers and
 * ephemeral ports come from counters, so a run under the same peer
 * repeats. */
#include "net.h"

#define TCP_HLEN 20
#define TCP_MAX_OPT_HLEN 60
#define DEFAULT_MSS 536

enum { F_FIN = 0x01, F_SYN = 0x02, F_RST = 0x04, F_PSH = 0x08, F_ACK = 0x10 };

enum tcp_state { S_FREE, S_LISTEN, S_SYN_SENT, S_SYN_RCVD, S_OPEN, S_CLOSED };

#define RTO_INITIAL_MS 500
#define RTO_MAX_MS 8000
#define MAX_BACKOFFS 10 /* retransmissions of one segment before giving up */

struct tcp_conn {
  enum tcp_state state;
  int ifx;
  uint8_t mac[ETH_ALEN];
  uint32_t lip, rip;
  uint16_t lport, rport;
  uint16_t peer_mss;

  /* send side: the ring holds bytes [snd_una, snd_una + snd_len) of the
   * data stream (SYN and FIN take sequence numbers but no ring space) */
  uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
  uint32_t snd_len;
  uint8_t fin_queued, fin_sent, fin_acked;
  uint32_t rto, rtx_at; /* rtx_at: tick when the oldest unacked segment times out */
  uint8_t rtx_armed;
  uint32_t backoffs, dupacks;
  uint8_t sndbuf[TCP_SNDBUF];

  /* receive side */
  uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge last advertised */
  uint32_t rcv_head, rcv_len;
  uint8_t fin_rcvd;
  uint32_t ack_owed; /* segments received since our last ACK */
  uint8_t rcvbuf[TCP_RCVBUF];

  const char* error;
};

static struct tcp_conn conns[TCP_MAX_CONNS];
static struct tcp_stats stats;
static int hooked;
static uint16_t next_port = 49152;
static uint32_t next_iss = 0x52450000u; /* "RE": a fixed start, moved per connection */
static const char* last_error;
static uint8_t seg[TCP_HLEN + 4 + TCP_MSS];

/* ---- helpers ---- */

static inline uint16_t rd16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
/* Sequence-space comparisons (mod 2^32). */
static inline int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline int seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }

static uint32_t csum_add(uint32_t sum, const uint8_t* p, uint32_t len) {
  while (len > 1) {
    sum += rd16(p);
    p += 2;
    len -= 2;
  }
  if (len) sum += (uint32_t)p[0] << 8;
  return sum;
}

static uint16_t csum_tcp(uint32_t src, uint32_t dst, const uint8_t* p, uint32_t len) {
  uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + NET_IPPROTO_TCP + len;
  sum = csum_add(sum, p, len);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

const struct tcp_stats* tcp_get_stats(void) { return &stats; }

void tcp_print_stats(const char* prefix) {
  printf(
      "%s segments in %u bad %u no-conn %u out-of-order %u old %u trimmed %u rst %u bad-rst %u, out %u "
      "failed %u, "
      "retransmits %u fast %u timeouts %u\n",
      prefix, stats.rx_segments, stats.rx_bad, stats.rx_no_conn, stats.rx_out_of_order, stats.rx_old,
      stats.rx_trimmed, stats.rx_rst, stats.rx_bad_rst, stats.tx_segments, stats.tx_failed, stats.retransmits,
      stats.fast_retransmits, stats.timeouts);
}

void tcp_print_conn(const struct tcp_conn* c, const char* prefix) {
  printf(
      "%s state %d una +%u nxt +%u max +%u wnd %u queued %u fin %u%u%u, rcv +%u buffered %u fin %u, rto %u "
      "backoffs %u dupacks %u%s\n",
      prefix, (int)c->state, c->snd_una - c->iss, c->snd_nxt - c->iss, c->snd_max - c->iss, c->snd_wnd,
      c->snd_len, c->fin_queued, c->fin_sent, c->fin_acked, c->rcv_nxt - c->irs, c->rcv_len, c->fin_rcvd,
      c->rto, c->backoffs, c->dupacks, c->rtx_armed ? " armed" : "");
}

const char* tcp_error(const struct tcp_conn* c) { return c ? c->error : last_error; }
const char* tcp_last_error(void) { return last_error; }
uint16_t tcp_peer_mss(const struct tcp_conn* c) { return c->peer_mss; }

void tcp_endpoints(const struct tcp_conn* c, uint32_t* local_ip, uint16_t* local_port, uint32_t* remote_ip,
                   uint16_t* remote_port) {
  if (local_ip) *local_ip = c->lip;
  if (local_port) *local_port = c->lport;
  if (remote_ip) *remote_ip = c->rip;
  if (remote_port) *remote_port = c->rport;
}

/* ---- output ---- */

/* Free receive space, but never more than TCP_MAX_RCV_WINDOW: the
 * driver's software queue holds 16 frames between polls, and a window of
 * more segments than that (plus the ACKs of our own data) only makes the
 * peer send frames the driver must drop. */
static uint32_t rcv_window(const struct tcp_conn* c) {
  uint32_t free = TCP_RCVBUF - c->rcv_len;
  return free > TCP_MAX_RCV_WINDOW ? TCP_MAX_RCV_WINDOW : free;
}

/* One segment: flags, sequence number, `len` bytes of the send ring from
 * stream offset `off` (relative to snd_una). */
static int send_segment(struct tcp_conn* c, uint8_t flags, uint32_t seqno, uint32_t off, uint32_t len) {
  uint32_t hlen = TCP_HLEN + ((flags & F_SYN) ? 4 : 0);
  uint8_t* t = seg;
  wr16(t, c->lport);
  wr16(t + 2, c->rport);
  wr32(t + 4, seqno);
  wr32(t + 8, (flags & F_ACK) ? c->rcv_nxt : 0);
  t[12] = (uint8_t)((hlen / 4) << 4);
  t[13] = flags;
  uint32_t win = rcv_window(c);
  wr16(t + 14, (uint16_t)win);
  wr16(t + 16, 0);
  wr16(t + 18, 0);
  if (flags & F_SYN) {
    t[20] = 2; /* MSS */
    t[21] = 4;
    wr16(t + 22, TCP_MSS);
  }
  /* The ring may wrap inside the segment: copy in up to two pieces. */
  uint32_t start = (c->snd_una - (c->iss + 1) + off) & (TCP_SNDBUF - 1);
  uint32_t first = min32(len, TCP_SNDBUF - start);
  memcpy(t + hlen, c->sndbuf + start, first);
  if (len > first) memcpy(t + hlen + first, c->sndbuf, len - first);
  wr16(t + 16, csum_tcp(c->lip, c->rip, t, hlen + len));
  if (flags & F_ACK) {
    c->ack_owed = 0;
    c->rcv_adv = c->rcv_nxt + win;
  }
  if (net_ip_send(c->ifx, c->mac, c->rip, NET_IPPROTO_TCP, t, hlen + len) != 0) {
    ++stats.tx_failed;
    return -1;
  }
  ++stats.tx_segments;
  return 0;
}

static void send_ack(struct tcp_conn* c) {
  /* The ACK carries snd_nxt but no data (an ACK in SYN_RCVD repeats the
   * SYN-ACK instead: tcp_service handles that). */
  send_segment(c, F_ACK, c->snd_nxt, 0, 0);
}

/* A reset answering a segment that belongs to no connection (RFC 9293
 * 3.10.7.1): from the segment's ACK, or ACKing its span. */
static void send_reset_for(int ifx, const uint8_t* frame, uint32_t src, uint32_t dst, const uint8_t* t,
                           uint32_t data_len) {
  uint8_t flags = t[13];
  if (flags & F_RST) return;
  uint8_t r[TCP_HLEN];
  wr16(r, rd16(t + 2));
  wr16(r + 2, rd16(t));
  if (flags & F_ACK) {
    wr32(r + 4, rd32(t + 8));
    wr32(r + 8, 0);
    r[13] = F_RST;
  } else {
    uint32_t span = data_len + ((flags & F_SYN) ? 1 : 0) + ((flags & F_FIN) ? 1 : 0);
    wr32(r + 4, 0);
    wr32(r + 8, rd32(t + 4) + span);
    r[13] = F_RST | F_ACK;
  }
  r[12] = (TCP_HLEN / 4) << 4;
  wr16(r + 14, 0);
  wr16(r + 16, 0);
  wr16(r + 18, 0);
  wr16(r + 16, csum_tcp(dst, src, r, TCP_HLEN));
  if (net_ip_send(ifx, frame + ETH_ALEN, src, NET_IPPROTO_TCP, r, TCP_HLEN) == 0)
    ++stats.tx_segments;
  else
    ++stats.tx_failed;
}

static void arm_rtx(struct tcp_conn* c) {
  c->rtx_at = clock_ticks() + c->rto;
  c->rtx_armed = 1;
}

/* Sends whatever the state and the windows allow: the handshake segment,
 * new data, FIN, or a bare ACK that is owed. */
static void tcp_output(struct tcp_conn* c) {
  if (c->state == S_SYN_SENT || c->state == S_SYN_RCVD) {
    if (c->snd_nxt == c->iss) {
      send_segment(c, c->state == S_SYN_SENT ? F_SYN : (F_SYN | F_ACK), c->iss, 0, 0);
      c->snd_nxt = c->iss + 1;
      if (seq_lt(c->snd_max, c->snd_nxt)) c->snd_max = c->snd_nxt;
      if (!c->rtx_armed) arm_rtx(c);
    }
    return;
  }
  if (c->state != S_OPEN) return;
  uint32_t mss = min32(c->peer_mss, TCP_MSS);
  while (!c->fin_acked) {
    uint32_t data_end = c->snd_una + c->snd_len; /* the FIN's sequence number */
    if (seq_lt(data_end, c->snd_nxt)) break;     /* the FIN is out already */
    uint32_t sent = c->snd_nxt - c->snd_una;
    uint32_t unsent = c->snd_len - sent;
    uint32_t wnd = min32(c->snd_wnd, TCP_MAX_FLIGHT);
    /* Zero window with nothing in flight: the timer probes with one byte
     * (and the retransmission path then keeps probing). */
    if (wnd == 0 && sent == 0 && unsent) {
      if (!c->rtx_armed) arm_rtx(c);
      break;
    }
    uint32_t room = wnd > sent ? wnd - sent : 0;
    uint32_t n = min32(min32(unsent, room), mss);
    if (n > 0) {
      /* No silly small segment while the window is what limits us. */
      if (n < mss && n < unsent && sent > 0) break;
      uint8_t flags = F_ACK;
      if (n == unsent) flags |= F_PSH;
      if (send_segment(c, flags, c->snd_nxt, sent, n) != 0) break;
      c->snd_nxt += n;
      if (seq_lt(c->snd_max, c->snd_nxt)) c->snd_max = c->snd_nxt;
      if (!c->rtx_armed) arm_rtx(c);
      continue;
    }
    if (unsent == 0 && c->fin_queued) {
      /* First FIN, or again after a go-back-N rewind. */
      if (send_segment(c, F_FIN | F_ACK, c->snd_nxt, 0, 0) != 0) break;
      c->fin_sent = 1;
      c->snd_nxt += 1;
      if (seq_lt(c->snd_max, c->snd_nxt)) c->snd_max = c->snd_nxt;
      if (!c->rtx_armed) arm_rtx(c);
    }
    break;
  }
  if (c->ack_owed) send_ack(c);
}

/* Zero-window probe: the first unacknowledged byte. snd_nxt stays put,
 * so the ACKs we send meanwhile carry a sequence number a closed window
 * still accepts (RCV.NXT); only snd_max covers the byte, for the ACK that
 * takes it. */
static void probe(struct tcp_conn* c) {
  send_segment(c, F_ACK, c->snd_una, 0, 1);
  if (seq_lt(c->snd_max, c->snd_una + 1)) c->snd_max = c->snd_una + 1;
}

/* Timers: retransmission (go-back-N from snd_una, RTO doubled), and a
 * window update once the application has made room worth announcing. */
static void tcp_timers(struct tcp_conn* c) {
  if (c->state == S_FREE || c->state == S_LISTEN || c->state == S_CLOSED) return;
  uint32_t outstanding = c->snd_max - c->snd_una;
  uint32_t unsent = c->snd_len + (c->fin_queued ? 1u : 0u) - (c->snd_nxt - c->snd_una);
  if (c->rtx_armed && clock_passed(c->rtx_at)) {
    if (outstanding == 0 && !(c->snd_wnd == 0 && unsent)) {
      c->rtx_armed = 0;
    } else if (++c->backoffs > MAX_BACKOFFS) {
      ++stats.timeouts;
      c->error = "timeout";
      c->state = S_CLOSED;
      c->rtx_armed = 0;
      return;
    } else {
      ++stats.retransmits;
      c->rto = min32(c->rto * 2, clock_ms(RTO_MAX_MS));
      c->dupacks = 0;
      if (c->state == S_SYN_SENT || c->state == S_SYN_RCVD) {
        c->snd_nxt = c->iss;
      } else {
        c->snd_nxt = c->snd_una; /* tcp_output sends again from here, FIN included */
        if (c->snd_wnd == 0 && c->snd_len) probe(c);
      }
      arm_rtx(c);
    }
  }
  if (c->state == S_OPEN && !c->fin_rcvd) {
    uint32_t edge = c->rcv_nxt + rcv_window(c);
    uint32_t gain = edge - c->rcv_adv;
    if ((int32_t)gain >= (int32_t)(2 * TCP_MSS) || (int32_t)gain >= TCP_RCVBUF / 2) c->ack_owed = 1;
  }
}

static void tcp_service(void) {
  for (int i = 0; i < TCP_MAX_CONNS; ++i) {
    struct tcp_conn* c = &conns[i];
    if (c->state == S_FREE) continue;
    tcp_timers(c);
    tcp_output(c);
  }
}

/* ---- input ---- */

static void become_open(struct tcp_conn* c) {
  c->state = S_OPEN;
  c->backoffs = 0;
  c->rto = clock_ms(RTO_INITIAL_MS);
  c->rtx_armed = 0;
}

static void parse_mss(struct tcp_conn* c, const uint8_t* t, uint32_t hlen) {
  c->peer_mss = DEFAULT_MSS;
  uint32_t i = TCP_HLEN;
  while (i < hlen) {
    uint8_t kind = t[i];
    if (kind == 0) break;
    if (kind == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= hlen) break;
    uint8_t olen = t[i + 1];
    if (olen < 2 || i + olen > hlen) break; /* malformed: stop reading options */
    if (kind == 2 && olen == 4) {
      uint16_t mss = rd16(t + i + 2);
      if (mss >= 64) c->peer_mss = mss;
    }
    i += olen;
  }
}

/* Bytes of the send ring the ACK covers (the SYN and FIN take a sequence
 * number each but no ring byte). */
static void take_ack(struct tcp_conn* c, uint32_t ack) {
  uint32_t acked = ack - c->snd_una;
  uint32_t data = min32(acked, c->snd_len);
  c->snd_len -= data;
  if (c->fin_sent && acked > data) c->fin_acked = 1;
  c->snd_una = ack;
  if (seq_lt(c->snd_nxt, c->snd_una)) c->snd_nxt = c->snd_una;
  c->backoffs = 0;
  c->dupacks = 0;
  c->rto = clock_ms(RTO_INITIAL_MS);
  if (c->snd_una == c->snd_max)
    c->rtx_armed = 0;
  else
    arm_rtx(c);
}

/* Copies in-order data into the receive ring (what does not fit the
 * window is cut off and counted). */
static void take_data(struct tcp_conn* c, const uint8_t* d, uint32_t n) {
  uint32_t room = TCP_RCVBUF - c->rcv_len;
  if (n > room) {
    stats.rx_trimmed += n - room;
    n = room;
  }
  uint32_t tail = (c->rcv_head + c->rcv_len) & (TCP_RCVBUF - 1);
  uint32_t first = min32(n, TCP_RCVBUF - tail);
  memcpy(c->rcvbuf + tail, d, first);
  if (n > first) memcpy(c->rcvbuf, d + first, n - first);
  c->rcv_len += n;
  c->rcv_nxt += n;
}

static struct tcp_conn* find_conn(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) {
  for (int i = 0; i < TCP_MAX_CONNS; ++i) {
    struct tcp_conn* c = &conns[i];
    if (c->state != S_FREE && c->state != S_LISTEN && c->lport == dport && c->rport == sport &&
        c->rip == src && c->lip == dst)
      return c;
  }
  for (int i = 0; i < TCP_MAX_CONNS; ++i) {
    if (conns[i].state == S_LISTEN && conns[i].lport == dport) return &conns[i];
  }
  return 0;
}

static void tcp_input(int ifx, const uint8_t* frame, uint32_t src, uint32_t dst, const uint8_t* t,
                      uint32_t len) {
  ++stats.rx_segments;
  if (len < TCP_HLEN) {
    ++stats.rx_bad;
    return;
  }
  uint32_t hlen = (uint32_t)(t[12] >> 4) * 4;
  if (hlen < TCP_HLEN || hlen > len || csum_tcp(src, dst, t, len) != 0) {
    ++stats.rx_bad;
    return;
  }
  uint16_t sport = rd16(t), dport = rd16(t + 2);
  uint32_t seqno = rd32(t + 4), ack = rd32(t + 8);
  uint8_t flags = t[13];
  uint32_t win = rd16(t + 14);
  const uint8_t* data = t + hlen;
  uint32_t dlen = len - hlen;

  struct tcp_conn* c = find_conn(src, dst, sport, dport);
  if (!c || c->state == S_CLOSED) {
    ++stats.rx_no_conn;
    send_reset_for(ifx, frame, src, dst, t, dlen);
    return;
  }

  if (c->state == S_LISTEN) {
    if (flags & F_RST) return;
    if (flags & F_ACK) {
      ++stats.rx_no_conn;
      send_reset_for(ifx, frame, src, dst, t, dlen);
      return;
    }
    if (!(flags & F_SYN)) return;
    c->ifx = ifx;
    memcpy(c->mac, frame + ETH_ALEN, ETH_ALEN); /* answer the sender's MAC: no ARP round trip */
    c->lip = dst;
    c->rip = src;
    c->rport = sport;
    c->irs = seqno;
    c->rcv_nxt = seqno + 1;
    c->rcv_adv = c->rcv_nxt;
    c->snd_wnd = win;
    c->snd_wl1 = seqno;
    c->snd_wl2 = 0;
    parse_mss(c, t, hlen);
    c->state = S_SYN_RCVD;
    c->snd_nxt = c->iss; /* tcp_output sends the SYN-ACK */
    tcp_output(c);
    return;
  }

  if (c->state == S_SYN_SENT) {
    int ack_ok = (flags & F_ACK) && ack == c->iss + 1;
    if ((flags & F_ACK) && !ack_ok) {
      if (!(flags & F_RST)) send_reset_for(ifx, frame, src, dst, t, dlen);
      return;
    }
    if (flags & F_RST) {
      if (ack_ok) {
        ++stats.rx_rst;
        c->error = "refused";
        c->state = S_CLOSED;
      }
      return;
    }
    if (!(flags & F_SYN) || !ack_ok) return; /* simultaneous open is not supported */
    c->irs = seqno;
    c->rcv_nxt = seqno + 1;
    c->snd_una = c->iss + 1;
    c->snd_nxt = c->snd_una;
    c->snd_max = c->snd_una;
    c->snd_wnd = win;
    c->snd_wl1 = seqno;
    c->snd_wl2 = ack;
    parse_mss(c, t, hlen);
    become_open(c);
    send_ack(c);
    return;
  }

  /* Synchronized states. First the sequence check (in-order only). */
  uint32_t wnd = rcv_window(c);
  if (flags & F_RST) {
    if (seqno == c->rcv_nxt) {
      ++stats.rx_rst;
      c->error = "reset";
      c->state = S_CLOSED;
      c->rtx_armed = 0;
    } else {
      ++stats.rx_bad_rst;
      if (seq_lt(c->rcv_nxt, seqno) && seq_lt(seqno, c->rcv_nxt + (wnd ? wnd : 1)))
        send_ack(c); /* challenge */
    }
    return;
  }
  if (flags & F_SYN) {
    if (c->state == S_SYN_RCVD && seqno == c->irs) {
      /* Our SYN-ACK was lost: the tick timer resends it. */
      return;
    }
    send_ack(c); /* challenge ACK (RFC 5961) */
    return;
  }
  uint32_t span = dlen + ((flags & F_FIN) ? 1 : 0);
  if (span && seqno != c->rcv_nxt) {
    if (seq_lt(seqno, c->rcv_nxt) && seq_lt(c->rcv_nxt, seqno + span)) {
      /* Overlaps what we have: keep only the new part. */
      uint32_t skip = c->rcv_nxt - seqno;
      if (skip > dlen) skip = dlen;
      data += skip;
      dlen -= skip;
      seqno += skip;
    } else if (seq_le(seqno + span, c->rcv_nxt)) {
      ++stats.rx_old;
      c->ack_owed = 1;
      /* An old segment may still carry a useful ACK: go on with no data. */
      dlen = 0;
      flags &= (uint8_t)~F_FIN;
      seqno = c->rcv_nxt;
    } else {
      ++stats.rx_out_of_order;
      send_ack(c); /* a duplicate ACK: the peer retransmits sooner */
      return;
    }
  }
  if (!(flags & F_ACK)) return;

  if (c->state == S_SYN_RCVD) {
    if (ack != c->iss + 1) {
      send_reset_for(ifx, frame, src, dst, t, dlen);
      return;
    }
    c->snd_una = c->iss + 1;
    c->snd_nxt = c->snd_una;
    c->snd_max = c->snd_una;
    c->snd_wnd = win;
    c->snd_wl1 = seqno;
    c->snd_wl2 = ack;
    become_open(c);
  }

  if (seq_lt(c->snd_una, ack) && seq_le(ack, c->snd_max)) {
    take_ack(c, ack);
  } else if (seq_lt(c->snd_max, ack)) {
    send_ack(c); /* ACKs something never sent */
    return;
  } else if (ack == c->snd_una && dlen == 0 && !(flags & F_FIN) && win == c->snd_wnd &&
             c->snd_max != c->snd_una) {
    if (++c->dupacks == 3) {
      /* Fast retransmit: the first unacknowledged segment only. */
      ++stats.fast_retransmits;
      uint32_t n = min32(min32(c->snd_len, min32(c->peer_mss, TCP_MSS)), c->snd_max - c->snd_una);
      if (n) send_segment(c, F_ACK, c->snd_una, 0, n);
    }
  }
  /* A closed window answered: the peer is alive, so the probes go on
   * without counting towards giving up. */
  if (ack == c->snd_una && win == 0) c->backoffs = 0;
  if (seq_lt(c->snd_wl1, seqno) || (c->snd_wl1 == seqno && seq_le(c->snd_wl2, ack))) {
    c->snd_wnd = win;
    c->snd_wl1 = seqno;
    c->snd_wl2 = ack;
  }

  if (dlen && !c->fin_rcvd) {
    take_data(c, data, dlen);
    ++c->ack_owed;
  }
  if ((flags & F_FIN) && !c->fin_rcvd && seqno + dlen == c->rcv_nxt) {
    c->fin_rcvd = 1;
    c->rcv_nxt += 1;
    c->ack_owed = 1;
    send_ack(c);
  } else if (c->ack_owed >= 2) {
    send_ack(c); /* every second segment at once; the rest after the poll batch */
  }
}

/* ---- waits ---- */

static void hook(void) {
  if (!hooked) {
    net_set_tcp_handler(tcp_input);
    hooked = 1;
  }
}

struct wait_for {
  int (*cond)(struct tcp_conn* c);
  struct tcp_conn* c;
};

static int serviced(void* arg) {
  struct wait_for* w = (struct wait_for*)arg;
  tcp_service();
  return w->cond(w->c);
}

static int tcp_wait(int (*cond)(struct tcp_conn* c), struct tcp_conn* c, uint32_t deadline) {
  struct wait_for w = {cond, c};
  return net_wait(serviced, &w, deadline);
}

void tcp_step(void) {
  hook();
  net_poll();
  tcp_service();
  if (!ne2k_rx_pending()) ne2k_idle();
}

static struct tcp_conn* alloc_conn(void) {
  for (int i = 0; i < TCP_MAX_CONNS; ++i) {
    if (conns[i].state == S_FREE) {
      struct tcp_conn* c = &conns[i];
      mem_set(c, 0, sizeof *c);
      c->iss = next_iss;
      next_iss += 0x01000000u;
      c->snd_una = c->snd_nxt = c->snd_max = c->iss;
      c->peer_mss = DEFAULT_MSS;
      c->rto = clock_ms(RTO_INITIAL_MS);
      return c;
    }
  }
  last_error = "no free connection";
  return 0;
}

static int not_syn_sent(struct tcp_conn* c) { return c->state != S_SYN_SENT; }

struct tcp_conn* tcp_connect(uint32_t ip, uint16_t port, uint32_t deadline) {
  hook();
  int ifx;
  uint8_t mac[ETH_ALEN];
  if (net_resolve_next_hop(ip, &ifx, mac, deadline) != 0) {
    last_error = "no route";
    return 0;
  }
  struct tcp_conn* c = alloc_conn();
  if (!c) return 0;
  c->ifx = ifx;
  memcpy(c->mac, mac, ETH_ALEN);
  c->lip = net_if_get(ifx)->ip;
  c->rip = ip;
  c->lport = next_port;
  next_port = next_port == 65535 ? 49152 : (uint16_t)(next_port + 1);
  c->rport = port;
  c->state = S_SYN_SENT;
  tcp_output(c);
  tcp_wait(not_syn_sent, c, deadline);
  if (c->state == S_OPEN) return c;
  last_error = c->state == S_SYN_SENT ? "timeout" : (c->error ? c->error : "closed");
  c->state = S_FREE;
  return 0;
}

struct tcp_conn* tcp_listen(uint16_t port) {
  hook();
  struct tcp_conn* c = alloc_conn();
  if (!c) return 0;
  c->lport = port;
  c->state = S_LISTEN;
  return c;
}

static int accepted(struct tcp_conn* c) { return c->state == S_OPEN || c->state == S_CLOSED; }

int tcp_accept(struct tcp_conn* c, uint32_t deadline) {
  if (!tcp_wait(accepted, c, deadline)) {
    if (c->state == S_SYN_RCVD) {
      /* Half-open at the deadline: back to listening is pointless, fail. */
      c->error = "timeout";
    }
    return -1;
  }
  return c->state == S_OPEN ? 0 : -1;
}

int tcp_write(struct tcp_conn* c, const void* buf, uint32_t len) {
  if (c->state != S_OPEN || c->fin_queued) return -1;
  uint32_t room = TCP_SNDBUF - c->snd_len;
  uint32_t n = min32(len, room);
  uint32_t tail = (c->snd_una - (c->iss + 1) + c->snd_len) & (TCP_SNDBUF - 1);
  uint32_t first = min32(n, TCP_SNDBUF - tail);
  memcpy(c->sndbuf + tail, buf, first);
  if (n > first) memcpy(c->sndbuf, (const uint8_t*)buf + first, n - first);
  c->snd_len += n;
  return (int)n;
}

int tcp_read(struct tcp_conn* c, void* buf, uint32_t cap) {
  if (c->rcv_len == 0 && c->error) return -1;
  uint32_t n = min32(cap, c->rcv_len);
  uint32_t first = min32(n, TCP_RCVBUF - c->rcv_head);
  memcpy(buf, c->rcvbuf + c->rcv_head, first);
  if (n > first) memcpy((uint8_t*)buf + first, c->rcvbuf, n - first);
  c->rcv_head = (c->rcv_head + n) & (TCP_RCVBUF - 1);
  c->rcv_len -= n;
  return (int)n;
}

int tcp_eof(const struct tcp_conn* c) { return c->fin_rcvd && c->rcv_len == 0; }

static int send_room(struct tcp_conn* c) { return c->state != S_OPEN || c->snd_len < TCP_SNDBUF; }

int tcp_send(struct tcp_conn* c, const void* buf, uint32_t len, uint32_t deadline) {
  const uint8_t* p = (const uint8_t*)buf;
  while (len) {
    int n = tcp_write(c, p, len);
    if (n < 0) return -1;
    p += n;
    len -= (uint32_t)n;
    if (len && !tcp_wait(send_room, c, deadline)) return -1;
  }
  tcp_service();
  return 0;
}

static int readable(struct tcp_conn* c) {
  return c->rcv_len || c->fin_rcvd || c->error || c->state != S_OPEN;
}

int tcp_recv(struct tcp_conn* c, void* buf, uint32_t cap, uint32_t deadline) {
  if (!tcp_wait(readable, c, deadline)) return -2;
  int n = tcp_read(c, buf, cap);
  if (n > 0) return n;
  if (n < 0) return -1;
  return c->fin_rcvd ? 0 : -1;
}

static int closed_both_ways(struct tcp_conn* c) {
  return c->state != S_OPEN || (c->fin_acked && c->fin_rcvd);
}

int tcp_close(struct tcp_conn* c, uint32_t deadline) {
  int ok = 0;
  if (c->state == S_OPEN) {
    c->fin_queued = 1;
    tcp_service();
    tcp_wait(closed_both_ways, c, deadline);
    ok = c->state == S_OPEN && c->fin_acked && c->fin_rcvd;
    if (!ok && !c->error) c->error = "timeout";
  }
  /* No TIME-WAIT: a retransmitted FIN after this finds no connection and
   * gets a RST, which costs a guest that exits anyway nothing. */
  c->state = S_FREE;
  return ok ? 0 : -1;
}

void tcp_abort(struct tcp_conn* c) {
  if (c->state == S_OPEN || c->state == S_SYN_RCVD) send_segment(c, F_RST | F_ACK, c->snd_nxt, 0, 0);
  c->state = S_FREE;
}
