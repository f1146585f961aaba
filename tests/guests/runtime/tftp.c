/* A TFTP read client for reel's network guests (RFC 1350 with the option
 * extension of RFC 2347, blksize RFC 2348 and tsize RFC 2349): octet mode,
 * lock-step, each DATA hashed (FNV-1a 64, stream_hash.h) and ACKed as it
 * arrives, so a file of any size goes through without being kept. Block
 * numbers are 16 bits on the wire and roll over from 65535 to 0; the
 * client counts the wraps so it never mistakes a wrapped block for an old
 * one.
 *
 * Datagrams are taken straight from the dispatch (udp_bind_handler), so
 * none is lost to a queue between polls. */
#include "net.h"
#include "stream_hash.h"

#define TFTP_CLIENT_PORT 49500
#define OP_RRQ 1
#define OP_DATA 3
#define OP_ACK 4
#define OP_ERROR 5
#define OP_OACK 6
#define MAX_TRIES 5

static inline uint16_t rd16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static struct {
  int sock;
  struct tftp_result* res;
  int ifx;
  uint8_t mac[ETH_ALEN];
  uint32_t server;
  uint16_t server_port; /* 0 until the first reply fixes the TID */
  uint16_t last_block;  /* last block ACKed (0: the OACK, or nothing yet) */
  uint32_t wanted_blksize;
  uint8_t started;    /* a reply came: from now on timeouts resend the ACK */
  uint8_t progressed; /* something new arrived since the last wait began */
  uint8_t done, failed;
} T = {-1, 0, 0, {0}, 0, 0, 0, 0, 0, 0, 0, 0};

static void set_error(const char* why) {
  uint32_t i = 0;
  for (; why[i] && i + 1 < sizeof T.res->error; ++i) T.res->error[i] = why[i];
  T.res->error[i] = 0;
}

static void send_ack(uint16_t block) {
  uint8_t a[4];
  wr16(a, OP_ACK);
  wr16(a + 2, block);
  udp_send_via(T.ifx, T.mac, net_if_get(T.ifx)->ip, T.server, TFTP_CLIENT_PORT, T.server_port, a, 4);
}

/* Decimal option value; 0xffffffffffffffff when it is not a number. */
static uint64_t option_number(const uint8_t* p, uint32_t n) {
  uint64_t v = 0;
  if (n == 0) return ~0ull;
  for (uint32_t i = 0; i < n; ++i) {
    if (p[i] < '0' || p[i] > '9' || v > 0x0fffffffffffffffull) return ~0ull;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

static int key_is(const uint8_t* p, uint32_t n, const char* key) {
  uint32_t k = str_len(key);
  if (n != k) return 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t c = p[i];
    if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
    if (c != (uint8_t)key[i]) return 0;
  }
  return 1;
}

/* OACK: NUL-terminated key/value pairs. Only options we asked for are
 * allowed, and blksize may only shrink. */
static int take_oack(const uint8_t* d, uint32_t len) {
  uint32_t at = 2;
  while (at < len) {
    uint32_t k = at;
    while (at < len && d[at]) ++at;
    if (at >= len) return -1;
    uint32_t klen = at - k;
    uint32_t v = ++at;
    while (at < len && d[at]) ++at;
    if (at >= len) return -1;
    uint32_t vlen = at - v;
    ++at;
    uint64_t num = option_number(d + v, vlen);
    if (key_is(d + k, klen, "blksize") && T.wanted_blksize) {
      if (num < 8 || num > T.wanted_blksize) return -1;
      T.res->blksize = (uint32_t)num;
      T.res->oack_blksize = (uint32_t)num;
    } else if (key_is(d + k, klen, "tsize")) {
      if (num == ~0ull) return -1;
      T.res->has_tsize = 1;
      T.res->tsize = num;
    } else {
      return -1;
    }
  }
  T.res->oack = 1;
  return 0;
}

static void on_datagram(const struct udp_meta* meta, const uint8_t* d, uint32_t len) {
  struct tftp_result* R = T.res;
  if (!R || T.done || T.failed) return;
  if (meta->src_ip != T.server || (T.server_port && meta->src_port != T.server_port) || len < 4) {
    ++R->ignored;
    return;
  }
  uint16_t op = rd16(d);
  if (op == OP_ERROR) {
    R->error_code = rd16(d + 2);
    uint32_t i = 0;
    for (; 4 + i < len && d[4 + i] && i + 1 < sizeof R->error; ++i) {
      uint8_t c = d[4 + i];
      R->error[i] = (char)(c >= 32 && c < 127 ? c : '?');
    }
    R->error[i] = 0;
    if (!R->error[0]) set_error("error without a message");
    T.failed = 1;
    return;
  }
  if (op == OP_OACK) {
    if (T.started) {
      ++R->ignored; /* only as the first reply */
      return;
    }
    T.server_port = meta->src_port;
    if (take_oack(d, len) != 0) {
      /* RFC 2347: refuse an OACK we cannot honour with error 8. */
      uint8_t e[4 + 24];
      wr16(e, OP_ERROR);
      wr16(e + 2, 8);
      memcpy(e + 4, "option not acceptable", 22);
      udp_send_via(T.ifx, T.mac, net_if_get(T.ifx)->ip, T.server, TFTP_CLIENT_PORT, T.server_port, e, 26);
      set_error("bad OACK");
      T.failed = 1;
      return;
    }
    T.started = 1;
    T.progressed = 1;
    T.last_block = 0;
    send_ack(0);
    return;
  }
  if (op != OP_DATA) {
    ++R->ignored;
    return;
  }
  uint16_t block = rd16(d + 2);
  uint32_t n = len - 4;
  if (!T.started) T.server_port = meta->src_port; /* no OACK: options refused, 512-byte blocks */
  if (block == (uint16_t)(T.last_block + 1) && n <= R->blksize) {
    T.started = 1;
    T.progressed = 1;
    if (block == 0) ++R->rollovers;
    T.last_block = block;
    ++R->blocks;
    R->bytes += n;
    R->hash = reel_fnv64_update(R->hash, d + 4, n);
    send_ack(block);
    if (n < R->blksize) T.done = 1;
  } else if (T.started && block == T.last_block) {
    ++R->duplicates;
    send_ack(block); /* our ACK was lost */
  } else {
    ++R->ignored;
  }
}

static int finished(void* unused) {
  (void)unused;
  return T.done || T.failed || T.progressed;
}

int tftp_get(uint32_t server, const char* file, uint32_t blksize, uint32_t deadline,
             struct tftp_result* res) {
  mem_set(res, 0, sizeof *res);
  res->hash = REEL_FNV64_OFFSET;
  res->blksize = 512;
  T.res = res;
  if (blksize == 512) blksize = 0;
  if (blksize && (blksize < 8 || blksize > TFTP_MAX_BLKSIZE)) {
    set_error("blksize out of range");
    return -1;
  }
  uint32_t flen = str_len(file);
  if (!flen || flen > 200) {
    set_error("bad file name");
    return -1;
  }
  if (net_resolve_next_hop(server, &T.ifx, T.mac, deadline) != 0) {
    set_error("no route to the server");
    return -1;
  }
  if (T.sock < 0) T.sock = udp_bind_handler(TFTP_CLIENT_PORT, on_datagram);
  if (T.sock < 0) {
    set_error("no UDP socket");
    return -1;
  }
  T.server = server;
  T.server_port = 0;
  T.last_block = 0;
  T.wanted_blksize = blksize;
  T.started = T.done = T.failed = 0;

  uint8_t rrq[2 + 201 + 6 + 8 + 6 + 6 + 2];
  uint32_t n = 0;
  wr16(rrq, OP_RRQ);
  n = 2;
  memcpy(rrq + n, file, flen + 1);
  n += flen + 1;
  memcpy(rrq + n, "octet", 6);
  n += 6;
  if (blksize) {
    memcpy(rrq + n, "blksize", 8);
    n += 8;
    char digits[6];
    uint32_t k = 0, v = blksize;
    do {
      digits[k++] = (char)('0' + v % 10);
      v /= 10;
    } while (v);
    while (k) rrq[n++] = (uint8_t)digits[--k];
    rrq[n++] = 0;
  }
  memcpy(rrq + n, "tsize", 6);
  n += 6;
  rrq[n++] = '0';
  rrq[n++] = 0;

  uint32_t tries = 0, wait_ms = 1000;
  udp_send_via(T.ifx, T.mac, net_if_get(T.ifx)->ip, server, TFTP_CLIENT_PORT, TFTP_PORT, rrq, n);
  while (!T.done && !T.failed) {
    T.progressed = 0;
    uint32_t until = clock_ticks() + clock_ms(wait_ms);
    if ((int32_t)(until - deadline) > 0) until = deadline;
    if (net_wait(finished, 0, until)) {
      tries = 0;
      wait_ms = 1000;
      continue;
    }
    if (clock_passed(deadline)) {
      set_error(T.started ? "timeout during the transfer" : "no answer to the RRQ");
      break;
    }
    if (++tries >= MAX_TRIES) {
      set_error(T.started ? "server stopped sending" : "no answer to the RRQ");
      break;
    }
    ++res->retransmits;
    if (T.started)
      send_ack(T.last_block);
    else
      udp_send_via(T.ifx, T.mac, net_if_get(T.ifx)->ip, server, TFTP_CLIENT_PORT, TFTP_PORT, rrq, n);
    if (wait_ms < 4000) wait_ms *= 2;
  }
  int ok = T.done && !T.failed;
  T.res = 0;
  if (ok) {
    res->error[0] = 0;
    return 0;
  }
  return -1;
}
