/* The network side of reel's test guests: a PIT tick clock for timeouts,
 * PCI configuration access, an NE2000 driver (PCI RTL8029 and ISA NE2000)
 * and a small IPv4 kit (Ethernet dispatch, ARP, IPv4, ICMP echo, UDP) with
 * static addresses taken from the multiboot command line.
 *
 * Only guests that call into it link these objects (reel_add_guest(<name>
 * NET) in CMakeLists.txt), so the other guests stay byte-for-byte as they
 * were. Everything runs on one CPU: the NIC interrupt handler only moves
 * frames from the card into a software queue; all protocol work happens in
 * the guest's main flow, inside net_wait(). Every wait is bounded by PIT
 * ticks, so a guest reports a failure instead of hanging. */
#ifndef REEL_GUEST_NET_H
#define REEL_GUEST_NET_H

#include "rt.h"

/* lib.c defines these (GCC may call them); the network code uses them. */
void* memcpy(void* dst, const void* src, uint32_t n);
int memcmp(const void* a, const void* b, uint32_t n);

/* ---- PIT tick clock ---- */

#define CLOCK_HZ 100
/* PIT channel 0 at CLOCK_HZ, IRQ0 counting ticks (call pic_remap first;
 * interrupts must be enabled for time to move). */
void clock_start(void);
uint32_t clock_ticks(void);
/* Milliseconds to ticks, rounded up, at least 1 for a non-zero time. */
uint32_t clock_ms(uint32_t ms);
/* Whether the tick count has reached `deadline` (wrap-safe). */
static inline int clock_passed(uint32_t deadline) { return (int32_t)(clock_ticks() - deadline) >= 0; }

/* ---- PCI configuration mechanism #1 (ports 0xcf8/0xcfc) ---- */

/* Whether mechanism #1 answers (an ISA-only machine has nothing there). */
int pci_present(void);
uint32_t pci_read32(int bus, int dev, int fn, int reg);
uint16_t pci_read16(int bus, int dev, int fn, int reg);
uint8_t pci_read8(int bus, int dev, int fn, int reg);
void pci_write32(int bus, int dev, int fn, int reg, uint32_t v);
void pci_write16(int bus, int dev, int fn, int reg, uint16_t v);

/* ---- NE2000 ---- */

#define NE2K_MAX 4
#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_ZLEN 60          /* shortest frame on the wire, without the CRC */
#define ETH_FRAME_MAX 1514   /* longest frame without the CRC */

enum ne2k_bus { NE2K_PCI, NE2K_ISA };
enum ne2k_flags {
  NE2K_POLLED = 1 << 0,    /* no interrupts: net_idle() services the card */
  NE2K_MULTICAST = 1 << 1, /* accept every multicast frame (MAR all ones) */
  NE2K_BYTE_MODE = 1 << 2, /* 8-bit remote DMA even on a 16-bit card */
};

struct ne2k_info {
  enum ne2k_bus bus;
  uint16_t io;
  int irq; /* -1: none known, the card is polled */
  uint8_t mac[ETH_ALEN];
  uint8_t pci_dev, pci_fn; /* bus 0 */
  uint8_t word;            /* 16-bit data port transfers (DCR.WTS) */
  uint8_t sixteen_bit;     /* the PROM reads doubled: a 16-bit card */
  uint8_t polled;
  uint8_t tx_page, ring_start, ring_stop;
};

struct ne2k_stats {
  uint32_t irqs, rx_frames, rx_dropped, rx_errors, rx_bad_headers, overflows;
  uint32_t tx_frames, tx_errors, tx_timeouts, dma_timeouts;
};

/* Scans PCI bus 0 for 10ec:8029 and adds each card found (at most
 * NE2K_MAX in all); returns how many it added. */
int ne2k_probe_pci(void);
/* Probes an ISA NE2000 at `io` (reset, 8390 check, PROM signature); adds
 * it with `irq` (-1: polled). Returns 1 when found; prints why not. */
int ne2k_probe_isa(uint16_t io, int irq);
int ne2k_count(void);
const struct ne2k_info* ne2k_info(int nic);
const struct ne2k_stats* ne2k_stats(int nic);
/* Initialises the card as the DP8390 datasheet orders it and starts it
 * (NE2K_* flags); installs the interrupt handler unless polled. */
void ne2k_start(int nic, unsigned flags);
/* Queues one frame for transmission (padded to ETH_ZLEN); waits, bounded,
 * for the previous one to leave first. 0 on success, -1 on a bad length or
 * a transmitter that never finished. */
int ne2k_send(int nic, const void* frame, uint32_t len);
/* Waits (bounded) until every card's transmitter is idle. */
void ne2k_flush(void);
/* The next received frame copied into buf (at most cap bytes): its length,
 * or 0 when none is queued. */
uint32_t ne2k_recv(int nic, void* buf, uint32_t cap);
/* Whether any card has a received frame queued. */
int ne2k_rx_pending(void);
/* Services polled cards, then halts until the next interrupt unless a
 * frame is already queued. */
void ne2k_idle(void);
/* Remote DMA round trip through the transmit buffer and register
 * read-back; prints what differs. 0 when all is well. */
int ne2k_selftest(int nic);
/* Receive-path check without a peer (call right after ne2k_start, on a
 * link where nothing arrives): a frame written into the ring by hand so
 * that it wraps, and a header pointing outside the ring, which must reset
 * the receiver (printing the driver's bad-header line). 0 when all is well. */
int ne2k_ring_selftest(int nic);

/* ---- addresses ---- */

/* IPv4 addresses are host-order integers: 10.0.2.15 is 0x0a00020f. */
#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
/* Parses "a.b.c.d"; *end (if given) is set past it. 0 on a syntax error. */
uint32_t parse_ip(const char* s, const char** end);
/* Decimal or 0x-prefixed hexadecimal; *end set past it. */
uint32_t parse_num(const char* s, const char** end);
/* Formatting into one of a few rotating static buffers. */
const char* ip_str(uint32_t ip);
const char* mac_str(const uint8_t* mac);

/* ---- the IPv4 kit ---- */

#define NET_MAX_IF NE2K_MAX
#define UDP_MAX_PAYLOAD 1472

struct net_if {
  int nic;
  uint32_t ip, mask;
  uint8_t mac[ETH_ALEN];
  uint32_t router, dns; /* from DHCP (net_if_set_address); 0 when unknown */
};

/* Reads the command line and brings the network up, printing one line per
 * card and address:
 *   nic=auto|pci|isa   how to find cards (auto: PCI, then ISA)   [auto]
 *   io=0x300 irq=9     the ISA card's port base and IRQ          [0x300, 9]
 *   ip=A or ip0=A ip1=B ...  one address per card, in probe order
 *   mask=N             prefix length for every interface          [24]
 *   poll=1             no NIC interrupts: poll the cards
 *   width=8            8-bit remote DMA on 16-bit cards
 *   mcast=1            accept multicast frames
 * Sets up the PIC, the tick clock and enables interrupts. Exits with a
 * failure line when a card or address is missing. Returns the number of
 * interfaces. */
int net_configure(void);
/* net_configure with NET_CONFIG_ADDRESS_OPTIONAL: cards may stay without
 * an address (to be configured by DHCP); ip=/ipN= still apply when given.
 * An interface without an address hears only UDP to port 68 (DHCP
 * replies, whatever their destination address) and answers no ARP. */
#define NET_CONFIG_ADDRESS_OPTIONAL 1u
int net_configure_flags(unsigned flags);
/* Gives interface `ifx` an address (0: none), mask, default router and DNS
 * server (0: unknown). */
void net_if_set_address(int ifx, uint32_t ip, uint32_t mask, uint32_t router, uint32_t dns);
int net_if_count(void);
const struct net_if* net_if_get(int ifx);
/* The interface whose subnet holds `ip` (the first one otherwise). */
int net_route(uint32_t ip);

/* Processes every queued frame (ARP, ICMP echo, UDP delivery). */
void net_poll(void);
/* Polls and idles until cond(arg) holds (checked after each poll) or the
 * tick count reaches `deadline`; 1 when the condition held. */
int net_wait(int (*cond)(void* arg), void* arg, uint32_t deadline);
/* Waits for transmitters to go idle (before the guest exits). */
void net_flush(void);
/* Called for every frame received (after the NIC's address filter), before
 * it is dispatched; for checks like VLAN isolation. */
void net_set_observer(void (*fn)(int ifx, const uint8_t* frame, uint32_t len));
/* Called by net_wait after every poll, whatever it waits for: a guest's
 * own protocol (e.g. answering control messages) keeps running while the
 * kit waits for an ARP reply or a ping. It may send, but not wait. */
void net_set_poll_hook(void (*fn)(void));

/* ARP: the cached address, or requests repeated every `retry_ticks` until
 * a reply or the deadline. 0 on success. */
int arp_lookup(uint32_t ip, uint8_t* mac);
int arp_resolve(uint32_t ip, uint8_t* mac, uint32_t retry_ticks, uint32_t deadline);
/* The same on one given interface (several may share a subnet): requests go
 * out on `ifx` and only an ARP packet from `ip` received on `ifx` answers
 * (the shared cache is used only when its entry was learnt on `ifx`). */
int arp_resolve_via(int ifx, uint32_t ip, uint8_t* mac, uint32_t retry_ticks, uint32_t deadline);

/* ICMP echo: sends one request (id, seq, `data_len` bytes of pattern, at
 * most ICMP_MAX_DATA) to an address already in the ARP cache and waits
 * until `deadline` for the matching reply (same id, seq and data). 0 on a
 * reply, with *rtt in ticks; -1 on a timeout; -2 when the address is not
 * resolved or the send failed. */
#define ICMP_MAX_DATA 1472
int icmp_ping(uint32_t ip, uint16_t id, uint16_t seq, uint32_t data_len, uint32_t deadline, uint32_t* rtt);
uint32_t icmp_echo_requests_answered(void);
/* icmp_ping through a given interface to a given MAC (no cache look-up). */
int icmp_ping_via(int ifx, const uint8_t* mac, uint32_t ip, uint16_t id, uint16_t seq, uint32_t data_len,
                  uint32_t deadline, uint32_t* rtt);

/* UDP: a few bound ports, each with a small queue of received datagrams. */
struct udp_meta {
  int ifx;
  uint32_t src_ip, dst_ip;
  uint16_t src_port, dst_port;
  uint8_t src_mac[ETH_ALEN];
  uint8_t dst_mac[ETH_ALEN];
};
/* Returns a socket number, or -1 when the table is full. */
int udp_bind(uint16_t port);
/* Binds `port` with a handler instead of a queue: each datagram for it is
 * handed to fn as net_poll dispatches it (data points into the received
 * frame, valid only during the call). For streams that a 4-deep queue
 * emptied between polls would drop. fn may send, but not wait. Returns a
 * socket number (udp_recv on it finds nothing), or -1 when the table is
 * full. */
typedef void (*udp_handler)(const struct udp_meta* meta, const uint8_t* data, uint32_t len);
int udp_bind_handler(uint16_t port, udp_handler fn);
/* The next queued datagram (at most cap bytes copied): its length, or -1
 * when none is queued. */
int udp_recv(int sock, void* buf, uint32_t cap, struct udp_meta* meta);
/* Sends to an address that must already be in the ARP cache. */
int udp_send(uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, const void* data, uint32_t len);
/* Sends to 255.255.255.255 (and ff:ff:ff:ff:ff:ff) on one interface. */
int udp_broadcast(int ifx, uint16_t src_port, uint16_t dst_port, const void* data, uint32_t len);
/* Answers a received datagram: to its sender's MAC, on its interface. */
int udp_reply(const struct udp_meta* to, const void* data, uint32_t len);
/* Sends with every address given: interface, destination MAC, source IP
 * (0.0.0.0 allowed, for DHCP) and destination IP. */
int udp_send_via(int ifx, const uint8_t* dst_mac, uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                 uint16_t dst_port, const void* data, uint32_t len);

/* ---- hooks for transport protocols outside net.c (tcp.c) ---- */

#define NET_IPPROTO_TCP 6
/* A handler for one IPv4 protocol: the frame, its addresses and the IP
 * payload (valid only during the call). Called from net_poll's dispatch
 * for unicast packets to the interface's address; it may send, not wait. */
typedef void (*net_ip_handler)(int ifx, const uint8_t* frame, uint32_t src, uint32_t dst,
                               const uint8_t* payload, uint32_t len);
void net_set_tcp_handler(net_ip_handler fn);
/* Sends `len` bytes of IPv4 payload of protocol `proto` from the
 * interface's address to `dst_ip` through `dst_mac`. 0 on success. */
int net_ip_send(int ifx, const uint8_t* dst_mac, uint32_t dst_ip, uint8_t proto, const void* payload,
                uint32_t len);
/* The interface and next-hop MAC for `ip`: itself when on a configured
 * subnet, else that interface's router; ARP bounded by `deadline`.
 * 0 on success, -1 when there is no route or no ARP reply. */
int net_resolve_next_hop(uint32_t ip, int* ifx, uint8_t* mac, uint32_t deadline);

/* ---- DHCP client (RFC 2131/2132), dhcp.c ---- */

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define DHCP_MAX_DNS 4
#define DHCP_MAX_OPTIONS 64
#define DHCP_TEXT 256

/* How one server message looked on the wire (for comparing servers). */
struct dhcp_message_info {
  uint32_t src_ip, dst_ip;
  uint8_t src_mac[ETH_ALEN], dst_mac[ETH_ALEN];
  uint32_t length;              /* UDP payload bytes */
  uint32_t options_length;      /* bytes after the magic cookie up to and including END */
  uint16_t flags;               /* BOOTP flags echoed */
  uint32_t ciaddr, yiaddr, siaddr, giaddr;
  uint8_t codes[DHCP_MAX_OPTIONS], lens[DHCP_MAX_OPTIONS];
  int code_count;               /* options in wire order (pad and end excluded) */
};

struct dhcp_lease {
  int ifx;
  uint32_t xid;
  uint32_t ip, mask, router, server, broadcast, siaddr;
  uint32_t dns[DHCP_MAX_DNS];
  int dns_count;
  uint32_t lease_secs, renew_secs, rebind_secs;
  uint8_t has_mask, has_lease, has_renew, has_rebind, has_broadcast;
  /* Text options, NUL-terminated, non-printable bytes shown as '?';
   * empty when absent. search: option 119's names, comma-separated. */
  char hostname[DHCP_TEXT], domain[DHCP_TEXT], search[DHCP_TEXT], bootfile[DHCP_TEXT], tftp_server[DHCP_TEXT];
  char sname[65], file[129]; /* the BOOTP header fields */
  struct dhcp_message_info offer, ack, nak; /* nak: the last NAK, if any */
  char nak_message[DHCP_TEXT];              /* its option 56 */
  uint32_t discovers, requests, naks;       /* messages sent / NAKs received */
};

/* DISCOVER (broadcast; client identifier 61 = type 1 + the card's MAC;
 * parameter request list 1 3 6 12 15 28 51 54 119 66 67), first OFFER,
 * REQUEST (options 50 and 54), ACK. Retransmits every 4, 8, 16, 32, 64 s
 * (no random jitter: runs must repeat), starts over on a NAK (the fourth
 * NAK fails). On an ACK the interface gets the address, mask, router and DNS.
 * Bounded by `deadline` (ticks): then prints "dhcp nicN: FAIL ..." and
 * returns -1. 0 on success. */
int dhcp_acquire(int ifx, struct dhcp_lease* lease, uint32_t deadline);
/* DHCPRELEASE to the lease's server (unicast, ARP through the interface
 * first), then the interface forgets its address. 0 when sent. */
int dhcp_release(struct dhcp_lease* lease, uint32_t deadline);
/* For tests of the NAK path: the first REQUEST of the next dhcp_acquire
 * asks for the offered address + `offset` instead (0: off), which a server
 * should refuse with a NAK. */
void dhcp_set_request_offset_once(uint32_t offset);

/* ---- TCP (RFC 9293), tcp.c ---- */

/* A small TCP for a few connections: active and passive open, MSS option,
 * several segments in flight (bounded by the peer's window and
 * TCP_MAX_FLIGHT), retransmission on the tick clock with backoff (and a
 * fast retransmit on three duplicate ACKs), in-order receive into a
 * buffer whose free space is the advertised window (out-of-order segments
 * are dropped and answered with a duplicate ACK), FIN both ways, RST.
 * No window scaling, no SACK, no timestamps, no urgent data. */
#define TCP_MAX_CONNS 4
#define TCP_MSS 1460
#define TCP_SNDBUF 16384 /* bytes queued (sent or not) not yet acknowledged */
#define TCP_RCVBUF 16384 /* received bytes the application has not read */
#define TCP_MAX_FLIGHT 8192
#define TCP_MAX_RCV_WINDOW (8 * TCP_MSS) /* advertised at most: see rcv_window in tcp.c */

struct tcp_conn;

struct tcp_stats {
  uint32_t rx_segments, rx_bad; /* all received / short, bad offset or checksum */
  uint32_t rx_no_conn;          /* for no connection: answered with RST */
  uint32_t rx_out_of_order;     /* beyond rcv_nxt: dropped, duplicate ACK sent */
  uint32_t rx_old;              /* entirely below rcv_nxt (a retransmission): ACKed */
  uint32_t rx_trimmed;          /* bytes beyond the receive window cut off */
  uint32_t rx_rst;              /* resets accepted */
  uint32_t rx_bad_rst;          /* resets outside the window (ignored or challenged) */
  uint32_t tx_segments, tx_failed;
  uint32_t retransmits, fast_retransmits, timeouts;
};
const struct tcp_stats* tcp_get_stats(void);
/* Prints tcp_get_stats() as one line starting with `prefix`. */
void tcp_print_stats(const char* prefix);

/* Active open to ip:port (ARP for the next hop first); bounded by deadline.
 * The connection, or 0 (tcp_last_error() says why: "no route", "refused",
 * "timeout", "no free connection"). */
struct tcp_conn* tcp_connect(uint32_t ip, uint16_t port, uint32_t deadline);
/* Passive open on `port` (one connection per listen). 0 when full. */
struct tcp_conn* tcp_listen(uint16_t port);
/* Waits until the listening connection is established; 0 on success. */
int tcp_accept(struct tcp_conn* c, uint32_t deadline);
/* Non-blocking: queues up to len bytes, returns how many (0: buffer full),
 * -1 when the connection cannot send (closed, reset, FIN queued). */
int tcp_write(struct tcp_conn* c, const void* buf, uint32_t len);
/* Non-blocking: up to cap received bytes, 0 when none are buffered (see
 * tcp_eof), -1 after a reset or abort. */
int tcp_read(struct tcp_conn* c, void* buf, uint32_t cap);
/* The peer's FIN arrived and every byte before it has been read. */
int tcp_eof(const struct tcp_conn* c);
/* Handles received frames and timers, sends what the windows allow, and
 * idles (hlt) when nothing more can happen until a frame or a tick. */
void tcp_step(void);
/* Blocking forms, bounded by deadline: tcp_send queues all of buf (0, or
 * -1 on an error or timeout); tcp_recv returns > 0 bytes, 0 at EOF, -1 on
 * an error, -2 on a timeout. */
int tcp_send(struct tcp_conn* c, const void* buf, uint32_t len, uint32_t deadline);
int tcp_recv(struct tcp_conn* c, void* buf, uint32_t cap, uint32_t deadline);
/* Sends FIN after the queued data and waits until it is acknowledged and
 * the peer's FIN has arrived (received data still unread is discarded).
 * 0 on a clean close, -1 on a reset or timeout. The slot is freed. */
int tcp_close(struct tcp_conn* c, uint32_t deadline);
/* Sends RST and frees the slot. */
void tcp_abort(struct tcp_conn* c);
/* One line of the connection's sequence state (relative to the initial
 * sequence numbers), for failure reports. */
void tcp_print_conn(const struct tcp_conn* c, const char* prefix);
/* Why the connection failed ("reset", "timeout", ...) or 0. */
const char* tcp_error(const struct tcp_conn* c);
const char* tcp_last_error(void);
/* Both endpoints (host order). */
void tcp_endpoints(const struct tcp_conn* c, uint32_t* local_ip, uint16_t* local_port, uint32_t* remote_ip,
                   uint16_t* remote_port);
/* The peer's MSS option (536 when it sent none). */
uint16_t tcp_peer_mss(const struct tcp_conn* c);

/* ---- DNS A look-up over UDP (RFC 1035), dns.c ---- */

#define DNS_MAX_NAME 255
/* Outcomes of dns_lookup_a. */
#define DNS_OK 0
#define DNS_RCODE 1    /* the server answered with a non-zero rcode (*rcode) */
#define DNS_NO_A 2     /* rcode 0 but no A record in the answer section */
#define DNS_TIMEOUT -1 /* no usable answer before the deadline */
#define DNS_BAD_NAME -2
#define DNS_NO_ROUTE -3

struct dns_stats {
  uint32_t queries_sent, replies, replies_ignored; /* ignored: wrong id, source, or not a response */
  uint32_t malformed;                              /* truncated, bad name, pointer loop, bad lengths */
};
const struct dns_stats* dns_get_stats(void);
/* Asks `server` (port 53) for name's A record, retrying after 1, 2, 4, ...
 * seconds until deadline. DNS_OK with *addr set to the first A record of
 * the answer section (CNAMEs before it are skipped); DNS_RCODE with *rcode;
 * or another DNS_* code. Answers are parsed with every length and
 * compression pointer checked (pointers only backwards, at most 16). */
int dns_lookup_a(uint32_t server, const char* name, uint32_t deadline, uint32_t* addr, uint32_t* rcode);

/* ---- TFTP RRQ client (RFC 1350, options RFC 2347/2348/2349), tftp.c ---- */

#define TFTP_PORT 69
#define TFTP_MAX_BLKSIZE 1468 /* 1468 + 4 header bytes fill a UDP payload */

struct tftp_result {
  uint64_t bytes;        /* data received */
  uint64_t hash;         /* FNV-1a 64 of it (stream_hash.h) */
  uint32_t blocks;       /* DATA blocks accepted (not wrapped) */
  uint32_t rollovers;    /* block number wrapped from 65535 to 0 */
  uint32_t blksize;      /* in effect (512 unless the OACK said otherwise) */
  uint32_t oack_blksize; /* the OACK's blksize, 0 when it had none */
  int has_tsize;         /* the OACK carried tsize */
  uint64_t tsize;
  int oack;             /* the server answered with an OACK */
  uint32_t retransmits; /* RRQ or ACK sent again after a timeout */
  uint32_t duplicates;  /* DATA of the previous block (re-ACKed) */
  uint32_t ignored;     /* other blocks, other senders, malformed */
  uint32_t error_code;  /* from an ERROR packet */
  char error[128];      /* its message, or our own reason; "" on success */
};
/* Fetches `file` from server:69 in octet mode, asking for blksize (0 or
 * 512: no option) and tsize. Each DATA is hashed and ACKed as it arrives;
 * nothing is kept. The first reply fixes the server's port (its TID).
 * Timeouts resend the RRQ or the last ACK after 1, 2, 4 s (5 tries).
 * 0 on success, -1 with res->error set. */
int tftp_get(uint32_t server, const char* file, uint32_t blksize, uint32_t deadline, struct tftp_result* res);

#endif
