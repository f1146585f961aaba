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

#endif
