/* tftpget: takes a DHCP lease and reads file= from a TFTP server (by
 * default the lease's router, where a user-mode gateway serves its tftp=
 * directory), hashing it as it arrives (FNV-1a 64, stream_hash.h) without
 * keeping it; prints the size, the block count and the hash, and checks
 * them against expect_size= / expect_hash= when given.
 *
 * Command line (besides net_configure's nic= io= irq= poll= width=):
 *   file=NAME       the file to read                        (required)
 *   server=A        the TFTP server                         [the router]
 *   blksize=N       RFC 2348 block size, 8-1468 (512: no option)  [512]
 *   expect_size=N   expect_hash=0x...                      [no check]
 *   timeout=S       bound on the whole run, DHCP included   [60]
 *
 * Output:
 *   tftpget: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3
 *   tftpget: RRQ NAME from 10.0.2.2, blksize 1428, tsize
 *   tftpget: oack blksize 1428 tsize 3000000     (the options the OACK had, if any)
 *   tftpget: received 3000000 bytes in 2101 blocks, 0 rollovers, hash 0x...
 *   tftpget: ok
 * Failures print "tftpget: FAIL <why>" (a server ERROR as
 * "tftpget: FAIL error N: <message>") and exit with code 3. */
#include "net.h"
#include "stream_hash.h"

static void fail(const char* what) {
  printf("tftpget: FAIL %s\n", what);
  net_flush();
  rt_exit(3);
}

static uint32_t arg_num(const char* key, uint32_t fallback) {
  const char* v = cmdline_arg(key);
  return v ? parse_num(v, 0) : fallback;
}

static uint64_t parse_u64(const char* s) {
  uint64_t v = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    for (s += 2;; ++s) {
      char c = *s;
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = (uint32_t)(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = (uint32_t)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = (uint32_t)(c - 'A' + 10);
      else
        break;
      v = (v << 4) | d;
    }
  } else {
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint32_t)(*s++ - '0');
  }
  return v;
}

static uint32_t prefix_of(uint32_t mask) {
  uint32_t p = 0;
  while (p < 32 && (mask & (0x80000000u >> p))) ++p;
  return p;
}

/* The value of key= up to the next space, copied. */
static int arg_word(const char* key, char* out, uint32_t cap) {
  const char* v = cmdline_arg(key);
  if (!v) return 0;
  uint32_t n = 0;
  while (v[n] && v[n] != ' ' && n + 1 < cap) {
    out[n] = v[n];
    ++n;
  }
  out[n] = 0;
  return n > 0;
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  static struct dhcp_lease lease;
  static struct tftp_result res;
  static char file[201];
  net_configure_flags(NET_CONFIG_ADDRESS_OPTIONAL);
  uint32_t deadline = clock_ticks() + arg_num("timeout=", 60) * CLOCK_HZ;
  if (!arg_word("file=", file, sizeof file)) fail("file= is required");
  uint32_t blksize = arg_num("blksize=", 512);
  if (dhcp_acquire(0, &lease, deadline) != 0) fail("no lease");
  printf("tftpget: lease %s/%u router %s dns %s\n", ip_str(lease.ip), prefix_of(lease.mask),
         ip_str(lease.router), lease.dns_count ? ip_str(lease.dns[0]) : "none");
  const char* server_arg = cmdline_arg("server=");
  uint32_t server = server_arg ? parse_ip(server_arg, 0) : lease.router;
  if (!server) fail("server= is not a dotted IPv4 address (and no router)");

  printf("tftpget: RRQ %s from %s, blksize %u, tsize\n", file, ip_str(server), blksize);
  int r = tftp_get(server, file, blksize, deadline, &res);
  if (res.oack) {
    printf("tftpget: oack");
    if (res.oack_blksize) printf(" blksize %u", res.oack_blksize);
    if (res.has_tsize) printf(" tsize %llu", (unsigned long long)res.tsize);
    printf("\n");
  }
  if (res.retransmits || res.duplicates || res.ignored)
    printf("tftpget: %u retransmits, %u duplicate blocks, %u ignored datagrams\n", res.retransmits,
           res.duplicates, res.ignored);
  if (r != 0) {
    if (res.error_code || res.error[0] == 0 || str_starts(res.error, "File")) {
      printf("tftpget: FAIL error %u: %s\n", res.error_code, res.error);
      rt_exit(3);
    }
    printf("tftpget: FAIL %s after %llu bytes\n", res.error, (unsigned long long)res.bytes);
    rt_exit(3);
  }
  printf("tftpget: received %llu bytes in %u blocks, %u rollovers, hash 0x%016llx\n",
         (unsigned long long)res.bytes, res.blocks, res.rollovers, (unsigned long long)res.hash);
  if (res.has_tsize && res.tsize != res.bytes) fail("size differs from the OACK's tsize");
  const char* es = cmdline_arg("expect_size=");
  const char* eh = cmdline_arg("expect_hash=");
  if (es && parse_u64(es) != res.bytes) fail("size differs from expect_size=");
  if (eh && parse_u64(eh) != res.hash) fail("hash differs from expect_hash=");
  net_flush();
  printf("tftpget: ok\n");
  return 0;
}
