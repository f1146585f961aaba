/* netflood: a UDP flood between two guests, for throughput benchmarks.
 *
 * role=send pushes `count` datagrams of `size` payload bytes to the peer's
 * port 9000 as fast as its card takes them (ne2k_send waits for each
 * transmission to complete before queueing the next), then says "done"
 * until the receiver acknowledges with its counts. role=recv counts what
 * arrives, checks every datagram's sequence number and payload, and reports
 * once the sender's done arrives. Both exit on their own; every wait is
 * bounded by PIT ticks, so a missing peer or a lost flood ends in a report,
 * never a hang.
 *
 * Command line (besides net_configure's nic= io= irq= ip= ipN= mask= poll=
 * width= mcast=):
 *   role=send|recv  which side                                  [required]
 *   peer=A          the receiver (role=send only)
 *   count=N         datagrams to send (at most 4000000)            [20000]
 *   size=B          UDP payload bytes per datagram (12-1472)        [1024]
 *   port=P          the receiver's UDP port                         [9000]
 *   window=W        send: at most W datagrams beyond the receiver's
 *                   last credit (0: no flow control, a plain flood)    [0]
 *   timeout=S       bound on the whole run                           [120]
 *   idle=MS         recv: give up when the flood falls silent this long
 *                   after it began                                  [5000]
 *   linger=MS       recv: after acknowledging "done", keep answering
 *                   repeats (a lost ack) until silent this long      [300]
 *
 * Messages (all on the receiver's port, sent from the same port number;
 * big-endian 32-bit fields after a 4-byte tag):
 *   "FLDS" count size window  start: sent every 200 ms until "FLDR" arrives
 *   "FLDR"               ready: the receiver's answer to every start
 *   "FLDD" seq payload   data: byte i (i >= 8) is pattern(seq, i)
 *   "FLDC" next          credit (window > 0): the highest sequence number
 *                        received + 1, sent each time it passes another
 *                        half window; a sender that waits 100 ms for one
 *                        (credit or window lost) opens a new window itself
 *   "FLDE" sent bytes    end: sent every 200 ms until "FLDA" arrives
 *   "FLDA" received bytes  ack: the answer to every end
 *
 * Output is deterministic except the counts when frames were dropped under
 * load (the receiver then also prints where its driver lost them). Exit
 * status: code 0 when the handshake completed (drops are reported, not
 * failures); code 3 (status 7) on a timeout or a corrupt datagram; code 2
 * when a card or address is missing. */
#include "net.h"

#define MAX_COUNT 4000000u
#define HEADER_BYTES 8
#define RETRY_MS 200
#define CREDIT_WAIT_MS 100

enum role { ROLE_SEND, ROLE_RECV };

static enum role role;
static uint16_t port;
static uint32_t run_deadline;
static int sock;

/* Sender-side state set by the handler. */
static volatile int got_ready, got_ack;
static uint32_t ack_received, ack_bytes;
static volatile uint32_t credit; /* datagrams below this sequence number have been seen */
static uint32_t window;

/* Receiver-side state. */
static volatile int got_start, got_end;
static uint32_t peer_ip;
static uint32_t announced_count, announced_size, announced_window, end_sent, end_bytes;
static uint32_t credit_sent, credit_step;
static uint32_t received, received_bytes, corrupt, duplicates, out_of_order, bad_length, beyond_count;
static uint32_t highest_seq, first_bad_seq;
static int any_data;
static uint32_t last_activity;
static uint8_t seen[MAX_COUNT / 8];

static uint8_t payload[UDP_MAX_PAYLOAD];

static void put32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int tag_is(const uint8_t* p, const char* tag) {
  return p[0] == (uint8_t)tag[0] && p[1] == (uint8_t)tag[1] && p[2] == (uint8_t)tag[2] && p[3] == (uint8_t)tag[3];
}

static void put_tag(uint8_t* p, const char* tag) {
  for (int i = 0; i < 4; ++i) p[i] = (uint8_t)tag[i];
}

/* The payload byte at offset i of datagram seq: it changes with both, so a
 * datagram delivered with another's bytes, shifted or truncated shows. */
static inline uint8_t pattern(uint32_t seq, uint32_t i) { return (uint8_t)(seq * 13u + i + (i >> 8)); }

static void fail(const char* what) {
  printf("netflood: FAIL %s\n", what);
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

static void send_small(const struct udp_meta* to, const char* tag, uint32_t a, uint32_t b) {
  uint8_t m[12];
  put_tag(m, tag);
  put32(m + 4, a);
  put32(m + 8, b);
  udp_reply(to, m, sizeof m);
}

/* ---- receiver ---- */

static void on_data(const struct udp_meta* m, const uint8_t* d, uint32_t len) {
  last_activity = clock_ticks();
  any_data = 1;
  if (len < HEADER_BYTES || (announced_size && len != announced_size)) {
    ++bad_length;
    return;
  }
  uint32_t seq = get32(d + 4);
  for (uint32_t i = HEADER_BYTES; i < len; ++i) {
    if (d[i] != pattern(seq, i)) {
      if (corrupt++ == 0) first_bad_seq = seq;
      return;
    }
  }
  if (seq >= MAX_COUNT || (announced_count && seq >= announced_count)) {
    ++beyond_count;
    return;
  }
  if (seen[seq >> 3] & (1u << (seq & 7))) {
    ++duplicates;
    return;
  }
  seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
  if (received && seq < highest_seq) ++out_of_order;
  if (seq > highest_seq || !received) highest_seq = seq;
  ++received;
  received_bytes += len;
  if (credit_step && highest_seq + 1 >= credit_sent + credit_step) {
    credit_sent = highest_seq + 1;
    send_small(m, "FLDC", credit_sent, 0);
  }
}

static void recv_handler(const struct udp_meta* m, const uint8_t* d, uint32_t len) {
  if (len < 4) return;
  if (tag_is(d, "FLDD")) {
    on_data(m, d, len);
  } else if (tag_is(d, "FLDS") && len >= 16) {
    if (!got_start) {
      peer_ip = m->src_ip;
      announced_count = get32(d + 4);
      announced_size = get32(d + 8);
      announced_window = get32(d + 12);
      credit_step = announced_window ? (announced_window + 1) / 2 : 0;
      got_start = 1;
    }
    last_activity = clock_ticks();
    send_small(m, "FLDR", 0, 0);
  } else if (tag_is(d, "FLDE") && len >= 12) {
    if (!got_end) {
      end_sent = get32(d + 4);
      end_bytes = get32(d + 8);
      got_end = 1;
    }
    last_activity = clock_ticks();
    send_small(m, "FLDA", received, received_bytes);
  }
}

static int started(void* unused) {
  (void)unused;
  return got_start || any_data;
}

static int ended(void* unused) {
  (void)unused;
  return got_end;
}

static void print_driver_stats(void) {
  for (int i = 0; i < net_if_count(); ++i) {
    const struct ne2k_stats* s = ne2k_stats(net_if_get(i)->nic);
    printf("netflood: nic%d driver: %u frames, %u dropped (queue full), %u ring overflows, %u receive errors, "
           "%u bad headers\n",
           i, s->rx_frames, s->rx_dropped, s->overflows, s->rx_errors, s->rx_bad_headers);
  }
}

static int run_recv(void) {
  uint32_t idle_ticks = clock_ms(arg_num("idle=", 5000));
  uint32_t linger_ticks = clock_ms(arg_num("linger=", 300));
  printf("netflood: role recv, port %u\n", port);
  sock = udp_bind_handler(port, recv_handler);
  if (!net_wait(started, 0, run_deadline)) fail("no sender within timeout=");
  if (got_start) {
    printf("netflood: sender %s announced %u datagrams of %u bytes", ip_str(peer_ip), announced_count,
           announced_size);
    if (announced_window) printf(", window %u", announced_window);
    printf("\n");
  }
  else
    printf("netflood: data arrived before the sender's start\n");
  while (!got_end) {
    if (clock_passed(run_deadline)) {
      printf("netflood: received %u of %u datagrams, %u bytes\n", received, announced_count, received_bytes);
      print_driver_stats();
      fail("run timeout before the sender's end");
    }
    if ((int32_t)(clock_ticks() - (last_activity + idle_ticks)) >= 0) {
      printf("netflood: received %u of %u datagrams, %u bytes\n", received, announced_count, received_bytes);
      print_driver_stats();
      fail("the flood fell silent before the sender's end (idle=)");
    }
    net_wait(ended, 0, deadline_in(clock_ms(100)));
  }
  uint32_t expected = end_sent;
  if (announced_count && announced_count != end_sent)
    printf("netflood: sender announced %u datagrams but sent %u\n", announced_count, end_sent);
  printf("netflood: received %u of %u datagrams, %u bytes\n", received, expected, received_bytes);
  uint32_t lost = expected > received ? expected - received : 0;
  printf("netflood: lost %u, corrupt %u, duplicate %u, out of order %u\n", lost, corrupt, duplicates, out_of_order);
  if (bad_length || beyond_count)
    printf("netflood: %u of the wrong length, %u beyond the announced count\n", bad_length, beyond_count);
  if (lost || corrupt || bad_length) print_driver_stats();
  /* Answer repeated ends (our ack was lost) until the sender falls silent. */
  while (!clock_passed(last_activity + linger_ticks) && !clock_passed(run_deadline))
    net_wait(0, 0, deadline_in(clock_ms(50)));
  if (corrupt) {
    printf("netflood: first corrupt datagram seq=%u\n", first_bad_seq);
    fail("corrupt datagrams");
  }
  if (bad_length) fail("datagrams of the wrong length");
  net_flush();
  printf("netflood: ok\n");
  return 0;
}

/* ---- sender ---- */

static void send_handler(const struct udp_meta* m, const uint8_t* d, uint32_t len) {
  (void)m;
  if (len >= 4 && tag_is(d, "FLDR")) {
    got_ready = 1;
  } else if (len >= 8 && tag_is(d, "FLDC")) {
    uint32_t next = get32(d + 4);
    if ((int32_t)(next - credit) > 0) credit = next;
  } else if (len >= 12 && tag_is(d, "FLDA") && !got_ack) {
    ack_received = get32(d + 4);
    ack_bytes = get32(d + 8);
    got_ack = 1;
  }
}

static int ready(void* unused) {
  (void)unused;
  return got_ready;
}

static int acked(void* unused) {
  (void)unused;
  return got_ack;
}

static int has_credit(void* seq) { return (int32_t)(credit + window - *(uint32_t*)seq) > 0; }

static void send_control(uint32_t ip, const char* tag, uint32_t a, uint32_t b, uint32_t c) {
  uint8_t m[16];
  put_tag(m, tag);
  put32(m + 4, a);
  put32(m + 8, b);
  put32(m + 12, c);
  udp_send(ip, port, port, m, sizeof m);
}

static int run_send(uint32_t count, uint32_t size) {
  const char* p = cmdline_arg("peer=");
  uint32_t ip = p ? parse_ip(p, 0) : 0;
  if (!ip) fail("role=send needs peer=A (a dotted IPv4 address)");
  printf("netflood: role send, %u datagrams of %u bytes to %s port %u", count, size, ip_str(ip), port);
  if (window) printf(", window %u", window);
  printf("\n");
  sock = udp_bind_handler(port, send_handler);
  uint8_t mac[ETH_ALEN];
  if (arp_resolve(ip, mac, clock_ms(500), run_deadline) != 0) fail("no ARP reply from the receiver");
  printf("arp %s is %s\n", ip_str(ip), mac_str(mac));

  while (!got_ready) {
    if (clock_passed(run_deadline)) fail("the receiver never answered our start");
    send_control(ip, "FLDS", count, size, window);
    net_wait(ready, 0, deadline_in(clock_ms(RETRY_MS)));
  }
  printf("netflood: receiver ready\n");

  uint32_t sent = 0, errors = 0, stalls = 0;
  put_tag(payload, "FLDD");
  for (uint32_t seq = 0; seq < count; ++seq) {
    if (window && !has_credit(&seq) && !net_wait(has_credit, &seq, deadline_in(clock_ms(CREDIT_WAIT_MS)))) {
      if (clock_passed(run_deadline)) fail("run timeout while waiting for credit");
      ++stalls;
      credit = seq; /* the credit, or the window's tail, was lost: carry on */
    }
    put32(payload + 4, seq);
    for (uint32_t i = HEADER_BYTES; i < size; ++i) payload[i] = pattern(seq, i);
    if (udp_send(ip, port, port, payload, size) == 0)
      ++sent;
    else
      ++errors;
    /* Keep the driver's receive queue empty (ARP requests, stray frames). */
    if ((seq & 63) == 63) {
      net_poll();
      if (clock_passed(run_deadline)) fail("run timeout while sending");
    }
  }
  if (errors) printf("netflood: %u sends failed\n", errors);
  if (stalls) printf("netflood: %u waits for credit timed out\n", stalls);
  printf("netflood: sent %u datagrams, %u bytes\n", sent, sent * size);

  while (!got_ack) {
    if (clock_passed(run_deadline)) fail("the receiver never acknowledged our end");
    send_control(ip, "FLDE", sent, sent * size, 0);
    net_wait(acked, 0, deadline_in(clock_ms(RETRY_MS)));
  }
  printf("netflood: receiver got %u of %u datagrams, %u bytes\n", ack_received, sent, ack_bytes);
  net_flush();
  printf("netflood: ok\n");
  return 0;
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  net_configure();
  run_deadline = clock_ticks() + arg_num("timeout=", 120) * CLOCK_HZ;
  port = (uint16_t)arg_num("port=", 9000);
  uint32_t count = arg_num("count=", 20000);
  uint32_t size = arg_num("size=", 1024);
  const char* r = cmdline_arg("role=");
  if (r && str_starts(r, "send")) role = ROLE_SEND;
  else if (r && str_starts(r, "recv")) role = ROLE_RECV;
  else fail("role= takes send or recv");
  if (count == 0 || count > MAX_COUNT) fail("count= must be 1-4000000");
  if (size < 12 || size > UDP_MAX_PAYLOAD) fail("size= must be 12-1472");
  if (count > 0xffffffffu / size) fail("count= times size= must stay below 4 GiB (32-bit byte counts)");
  if (port == 0) fail("port= must be 1-65535");
  window = arg_num("window=", 0);
  return role == ROLE_SEND ? run_send(count, size) : run_recv();
}
