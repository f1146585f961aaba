// /init for reel's Linux guest: a static i386 program with raw int $0x80
// system calls and no libc. The kernel has configured eth0 with ip=dhcp
// before it runs init (ip_auto_config waits for the lease), so init goes
// straight to its steps, printing one console line per step:
//   1. a TCP exchange of $reel_echo_bytes (default 2 MiB, whole 4 KiB chunks)
//      with the echo server at 10.0.2.2:$reel_echo, checked by FNV-1a of what
//      was sent against what came back;
//   2. a UDP DNS query for $reel_dns_name (default "reel.test") to 10.0.2.3:53,
//      or to 10.0.2.2:$reel_dns_port when that is set (QEMU's slirp cannot
//      point 10.0.2.3 at a test resolver);
// then reboots, which ends reel (and QEMU) under -no-reboot.
// Unknown key=value kernel arguments reach init as environment variables.

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

enum {
  kSysExit = 1,
  kSysRead = 3,
  kSysWrite = 4,
  kSysOpen = 5,
  kSysClose = 6,
  kSysDup2 = 63,
  kSysReboot = 88,
  kSysNanosleep = 162,
  kSysSocket = 359,
  kSysConnect = 362,
  kSysSetsockopt = 366,
  kSysSendto = 369,
  kSysRecvfrom = 371,
};

static long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  // EBP carries the sixth argument and may be the frame pointer, so the
  // arguments travel through memory and EBP/EBX are saved by hand.
  long args[6] = {a, b, c, d, e, f};
  long r, scratch;
  __asm__ volatile(
      "push %%ebp\n\t"
      "push %%ebx\n\t"
      "mov 0(%%ecx), %%ebx\n\t"
      "mov 8(%%ecx), %%edx\n\t"
      "mov 12(%%ecx), %%esi\n\t"
      "mov 16(%%ecx), %%edi\n\t"
      "mov 20(%%ecx), %%ebp\n\t"
      "mov 4(%%ecx), %%ecx\n\t"
      "int $0x80\n\t"
      "pop %%ebx\n\t"
      "pop %%ebp"
      : "=a"(r), "=c"(scratch)
      : "a"(n), "c"(args)
      : "edx", "esi", "edi", "memory");
  return r;
}

void* memset(void* d, int c, u32 n) {
  u8* p = d;
  while (n--) *p++ = (u8)c;
  return d;
}

void* memcpy(void* d, const void* s, u32 n) {
  u8* p = d;
  const u8* q = s;
  while (n--) *p++ = *q++;
  return d;
}

static u32 str_len(const char* s) {
  u32 n = 0;
  while (s[n]) ++n;
  return n;
}

static void put(const char* s) { sys3(kSysWrite, 1, (long)s, (long)str_len(s)); }

static void put_u32(u32 v, int base, int width) {
  char buf[12];
  int i = 11;
  buf[i] = 0;
  do {
    buf[--i] = "0123456789abcdef"[v % base];
    v /= base;
    --width;
  } while (v || width > 0);
  put(buf + i);
}

static const char* env_get(char** envp, const char* key) {
  const u32 n = str_len(key);
  for (; *envp; ++envp) {
    const char* e = *envp;
    u32 i = 0;
    while (i < n && e[i] == key[i]) ++i;
    if (i == n && e[n] == '=') return e + n + 1;
  }
  return 0;
}

static u32 parse_u32(const char* s) {
  u32 v = 0;
  while (s && *s >= '0' && *s <= '9') v = v * 10 + (u32)(*s++ - '0');
  return v;
}

static u16 be16(u16 v) { return (u16)(v << 8 | v >> 8); }

struct SockaddrIn {
  u16 family;
  u16 port;  // network order
  u32 addr;  // network order
  u8 zero[8];
};

static struct SockaddrIn inet(u8 a, u8 b, u8 c, u8 d, u16 port) {
  struct SockaddrIn s;
  memset(&s, 0, sizeof s);
  s.family = 2;  // AF_INET
  s.port = be16(port);
  s.addr = (u32)a | (u32)b << 8 | (u32)c << 16 | (u32)d << 24;
  return s;
}

static u32 fnv1a(u32 h, const u8* p, u32 n) {
  while (n--) h = (h ^ *p++) * 16777619u;
  return h;
}

static void fail(const char* step, long err) {
  put("reel-init: ");
  put(step);
  put(" FAILED errno=");
  put_u32((u32)-err, 10, 1);
  put("\n");
}

enum { kDefaultTcpBytes = 2u << 20, kChunk = 4096 };
static u8 g_out[kChunk], g_in[kChunk];

static int tcp_step(u32 port, u32 total) {
  const long fd = sys3(kSysSocket, 2, 1, 0);  // AF_INET, SOCK_STREAM
  if (fd < 0) return fail("tcp socket", fd), 0;
  struct SockaddrIn to = inet(10, 0, 2, 2, (u16)port);
  long r = sys3(kSysConnect, fd, (long)&to, sizeof to);
  if (r < 0) return fail("tcp connect", r), 0;
  u32 sent_hash = 2166136261u, recv_hash = 2166136261u, seed = 12345;
  for (u32 done = 0; done < total; done += kChunk) {
    for (u32 i = 0; i < kChunk; ++i) {
      seed = seed * 1103515245u + 12345u;
      g_out[i] = (u8)(seed >> 16);
    }
    sent_hash = fnv1a(sent_hash, g_out, kChunk);
    for (u32 off = 0; off < kChunk;) {
      r = sys3(kSysWrite, fd, (long)(g_out + off), kChunk - off);
      if (r <= 0) return fail("tcp write", r), 0;
      off += (u32)r;
    }
    for (u32 got = 0; got < kChunk;) {
      r = sys3(kSysRead, fd, (long)g_in, kChunk - got);
      if (r <= 0) return fail("tcp read", r), 0;
      recv_hash = fnv1a(recv_hash, g_in, (u32)r);
      got += (u32)r;
    }
  }
  sys3(kSysClose, fd, 0, 0);
  put("reel-init: tcp echo ");
  put_u32(total, 10, 1);
  put(" bytes sent fnv1a=");
  put_u32(sent_hash, 16, 8);
  put(" received fnv1a=");
  put_u32(recv_hash, 16, 8);
  put(sent_hash == recv_hash ? " ok\n" : " MISMATCH\n");
  return sent_hash == recv_hash;
}

static int dns_step(const char* name, u32 port) {
  u8 q[300];
  u32 n = 0;
  const u8 header[12] = {0x52, 0x45, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};  // id "RE", RD, 1 question
  memcpy(q, header, 12);
  n = 12;
  for (const char* p = name; *p && n < 250;) {
    u32 len = 0;
    while (p[len] && p[len] != '.') ++len;
    q[n++] = (u8)len;
    memcpy(q + n, p, len);
    n += len;
    p += len;
    if (*p == '.') ++p;
  }
  q[n++] = 0;
  q[n++] = 0, q[n++] = 1;  // type A
  q[n++] = 0, q[n++] = 1;  // class IN

  const long fd = sys3(kSysSocket, 2, 2, 0);  // AF_INET, SOCK_DGRAM
  if (fd < 0) return fail("dns socket", fd), 0;
  const long timeout[2] = {5, 0};  // SO_RCVTIMEO: a lost reply ends the step, not the boot
  sys6(kSysSetsockopt, fd, 1, 20, (long)timeout, sizeof timeout, 0);
  struct SockaddrIn to = port ? inet(10, 0, 2, 2, (u16)port) : inet(10, 0, 2, 3, 53);
  long r = sys6(kSysSendto, fd, (long)q, n, 0, (long)&to, sizeof to);
  if (r < 0) return fail("dns sendto", r), 0;
  u8 a[512];
  r = sys6(kSysRecvfrom, fd, (long)a, sizeof a, 0, 0, 0);
  sys3(kSysClose, fd, 0, 0);
  if (r < 12) return fail("dns recvfrom", r < 0 ? r : -5), 0;
  const u32 len = (u32)r, answers = (u32)a[6] << 8 | a[7];
  u32 at = 12;
  while (at < len && a[at]) at += a[at] + 1u;  // the question's name
  at += 5;
  for (u32 i = 0; i < answers && at + 12 <= len; ++i) {
    if ((a[at] & 0xc0) == 0xc0) {
      at += 2;
    } else {
      while (at < len && a[at]) at += a[at] + 1u;
      ++at;
    }
    if (at + 10 > len) break;
    const u32 type = (u32)a[at] << 8 | a[at + 1], rdlen = (u32)a[at + 8] << 8 | a[at + 9];
    at += 10;
    if (type == 1 && rdlen == 4 && at + 4 <= len) {
      put("reel-init: dns ");
      put(name);
      put(" A ");
      for (int k = 0; k < 4; ++k) {
        put_u32(a[at + k], 10, 1);
        put(k < 3 ? "." : "\n");
      }
      return 1;
    }
    at += rdlen;
  }
  put("reel-init: dns ");
  put(name);
  put(" rcode=");
  put_u32(a[3] & 15, 10, 1);
  put(" no A record\n");
  return 0;
}

void start_c(long* sp) {
  const long argc = sp[0];
  char** envp = (char**)(sp + argc + 2);
  const long console = sys3(kSysOpen, (long)"/dev/console", 2, 0);  // O_RDWR
  if (console >= 0) {
    for (long fd = 0; fd < 3; ++fd)
      if (fd != console) sys3(kSysDup2, console, fd, 0);
  }
  put("reel-init: started, eth0 configured by ip=dhcp\n");
  const u32 echo_port = parse_u32(env_get(envp, "reel_echo"));
  if (echo_port) {
    // A trace kept in the repository uses a short exchange; the tests use the default.
    const u32 asked = parse_u32(env_get(envp, "reel_echo_bytes"));
    const u32 chunks = asked ? (asked + kChunk - 1) / kChunk : kDefaultTcpBytes / kChunk;
    tcp_step(echo_port, chunks * kChunk);
  } else {
    put("reel-init: tcp skipped (no reel_echo=PORT)\n");
  }
  const char* name = env_get(envp, "reel_dns_name");
  dns_step(name ? name : "reel.test", parse_u32(env_get(envp, "reel_dns_port")));
  put("reel-init: rebooting\n");
  sys3(kSysReboot, (long)0xfee1dead, 672274793, 0x01234567);  // LINUX_REBOOT_CMD_RESTART
  sys3(kSysExit, 0, 0, 0);
}

__asm__(
    ".globl _start\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  mov %esp, %eax\n"
    "  and $-16, %esp\n"
    "  sub $12, %esp\n"
    "  push %eax\n"
    "  call start_c\n"
    "  hlt\n");
