#include "harness/gdb_stub.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <vector>

#include "core/machine.h"
#include "core/null_host_io.h"
#include "harness/gdb_packet.h"
#include "harness/monitor.h"
#include "harness/pc_board.h"
#include "harness/session.h"
#include "replay/journal.h"
#include "replay/replaying_host_io.h"
#include "replay/snapshot.h"

namespace reel {

namespace {

// The registers of the 'g' packet, in order, and of the target description.
// No x87 registers: the CPU is a 486SX without a coprocessor.
constexpr unsigned kRegCount = 16;
constexpr const char* kRegNames[kRegCount] = {"eax", "ecx",    "edx", "ebx", "esp", "ebp", "esi", "edi",
                                              "eip", "eflags", "cs",  "ss",  "ds",  "es",  "fs",  "gs"};
struct FpuReg {
  const char* name;
  unsigned bytes;
  const char* type;
};
constexpr FpuReg kFpuRegs[] = {
    {"st0", 10, "i387_ext"}, {"st1", 10, "i387_ext"}, {"st2", 10, "i387_ext"}, {"st3", 10, "i387_ext"},
    {"st4", 10, "i387_ext"}, {"st5", 10, "i387_ext"}, {"st6", 10, "i387_ext"}, {"st7", 10, "i387_ext"},
    {"fctrl", 4, "int"},     {"fstat", 4, "int"},     {"ftag", 4, "int"},      {"fiseg", 4, "int"},
    {"fioff", 4, "int"},     {"foseg", 4, "int"},     {"fooff", 4, "int"},     {"fop", 4, "int"},
};
constexpr unsigned kFpuRegCount = sizeof kFpuRegs / sizeof kFpuRegs[0];
// gdb's order cs, ss, ds, es, fs, gs against SegReg's es, cs, ss, ds, fs, gs.
constexpr int kSegOfReg[6] = {1, 2, 3, 0, 4, 5};

std::string target_xml() {
  std::string x =
      "<?xml version=\"1.0\"?>\n"
      "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
      "<target version=\"1.0\">\n"
      "<architecture>i386</architecture>\n"
      "<feature name=\"org.gnu.gdb.i386.core\">\n"
      "<flags id=\"i386_eflags\" size=\"4\">\n"
      "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>"
      "<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
      "<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
      "<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
      "<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
      "<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
      "<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>\n"
      "</flags>\n";
  for (unsigned i = 0; i < kRegCount; ++i) {
    const char* type = "int32";
    if (i == 4 || i == 5) type = "data_ptr";
    if (i == 8) type = "code_ptr";
    if (i == 9) type = "i386_eflags";
    x += "<reg name=\"" + std::string(kRegNames[i]) + "\" bitsize=\"32\" type=\"" + type + "\" regnum=\"" +
         std::to_string(i) + "\"/>\n";
  }
  // gdb's i386 architecture requires the x87 registers in the core feature
  // (i386_validate_tdesc_p rejects a description without them and falls
  // back to its own, with a warning). A 486SX has no FPU: they are listed
  // and always read as unavailable ('x' digits), never as made-up zeros.
  for (unsigned i = 0; i < kFpuRegCount; ++i) {
    x += "<reg name=\"" + std::string(kFpuRegs[i].name) + "\" bitsize=\"" +
         std::to_string(kFpuRegs[i].bytes * 8) + "\" type=\"" + kFpuRegs[i].type + "\" regnum=\"" +
         std::to_string(kRegCount + i) + "\"/>\n";
  }
  x += "</feature>\n</target>\n";
  return x;
}

u32 reg_value(const CpuRegisters& r, unsigned n) {
  if (n < 8) return r.gpr[n];
  if (n == 8) return r.eip;
  if (n == 9) return r.eflags;
  return r.seg[kSegOfReg[n - 10]].selector;
}

// "name:\n  field = value" lines out of Machine::dump_state's JSON. Long
// arrays (packet buffers, tables) are summarised.
void flatten_json(const rapidjson::Value& v, const std::string& path, std::string& out) {
  if (v.IsObject()) {
    // Cereal writes some arrays as objects of "value0", "value1"...
    if (v.MemberCount() > 16 && std::string_view(v.MemberBegin()->name.GetString()) == "value0") {
      out += "  " + path + " = [" + std::to_string(v.MemberCount()) + " items]\n";
      return;
    }
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      const std::string name(it->name.GetString(), it->name.GetStringLength());
      flatten_json(it->value, path.empty() ? name : path + "." + name, out);
    }
    return;
  }
  if (v.IsArray()) {
    if (v.Size() > 16) {
      out += "  " + path + " = [" + std::to_string(v.Size()) + " items]\n";
      return;
    }
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
      flatten_json(v[i], path + "." + std::to_string(i), out);
    return;
  }
  std::string value;
  if (v.IsUint64()) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%" PRIu64 " (0x%" PRIx64 ")", v.GetUint64(), v.GetUint64());
    value = buf;
  } else if (v.IsInt64()) {
    value = std::to_string(v.GetInt64());
  } else if (v.IsBool()) {
    value = v.GetBool() ? "true" : "false";
  } else if (v.IsString()) {
    value = std::string(v.GetString(), v.GetStringLength());
    if (value.size() > 80) value = value.substr(0, 77) + "...";
  } else if (v.IsDouble()) {
    value = std::to_string(v.GetDouble());
  } else {
    value = "null";
  }
  out += "  " + path + " = " + value + "\n";
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

}  // namespace

struct GdbStub::Impl {
  PcBoard& board;
  Machine& m;
  Config config;
  SeekHook seek_hook;
  // The Monitor's greeting goes to its console: a NullHostIO takes it, so
  // the stub keeps a Monitor of its own for `info network` and `info
  // registers` without opening a console (which a replay would not expect).
  NullHostIO discard;
  std::unique_ptr<Monitor> monitor;

  int listen_fd = -1;
  int client_fd = -1;
  u16 bound_port = 0;
  gdb::PacketReader reader;
  std::vector<gdb::PacketEvent> pending;  // read while the guest ran
  bool no_ack = false;
  std::string last_reply;  // framed, for '-'
  bool interrupt_seen = false;
  bool attached_during_run = false;

  // Breakpoints by kind (Z0 software, Z1 hardware): the CPU gets the union.
  std::set<u32> sw_breaks, hw_breaks;
  std::vector<Cpu::Watchpoint> watches;

  std::optional<RunEnd> end;  // the run ended
  std::string stop_reply;     // answer to '?'
  bool killed = false;
  const std::atomic<bool>* stop_flag = nullptr;
  std::chrono::steady_clock::time_point last_poll{};

  enum class Resume : u8 { none, cont, step, detach, kill, gone };

  Impl(PcBoard& b, Config c) : board(b), m(b.machine()), config(std::move(c)) {
    monitor = std::make_unique<Monitor>(m, discard, 0, [this] { return board.hubs(); });
  }
  ~Impl() {
    m.set_boundary_hook(nullptr);
    if (client_fd >= 0) ::close(client_fd);
    if (listen_fd >= 0) ::close(listen_fd);
  }

  bool replaying() const { return config.replay != nullptr; }
  bool reversible() const { return config.snapshots != nullptr; }

  // Every forward run goes through the snapshot store when there is one,
  // so the history it keeps covers wherever the machine has been.
  std::optional<RunEnd> run_to(u64 icount) {
    return config.snapshots ? config.snapshots->run_until(icount) : m.run_until(icount);
  }

  void listen() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(config.address.port);
    const std::string where = "tcp:" + config.address.host + ":" + port;
    if (const int rc = getaddrinfo(config.address.host.c_str(), port.c_str(), &hints, &res); rc != 0)
      throw BadInput("-gdb " + where + ": " + gai_strerror(rc));
    std::string error = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      const int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1) == 0) {
        listen_fd = fd;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
        bound_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
        break;
      }
      error = std::strerror(errno);
      ::close(fd);
    }
    freeaddrinfo(res);
    if (listen_fd < 0) throw BadInput("-gdb " + where + ": cannot listen: " + error);
    std::fprintf(stderr, "reel: gdb: listening on tcp:%s:%u%s\n", config.address.host.c_str(), bound_port,
                 config.wait_for_client ? " (waiting for gdb before the first instruction)" : "");
    std::fflush(stderr);
  }

  bool accept_client(int timeout_ms) {
    pollfd p{listen_fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return false;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    client_fd = fd;
    reader = {};
    pending.clear();
    no_ack = false;
    last_reply.clear();
    std::fprintf(stderr, "reel: gdb: connected\n");
    return true;
  }

  void drop_client() {
    if (client_fd >= 0) ::close(client_fd);
    client_fd = -1;
    std::fprintf(stderr, "reel: gdb: disconnected\n");
    // Nobody is watching: run at full speed.
    sw_breaks.clear();
    hw_breaks.clear();
    watches.clear();
    sync_cpu();
  }

  void sync_cpu() {
    std::vector<u32> all(sw_breaks.begin(), sw_breaks.end());
    all.insert(all.end(), hw_breaks.begin(), hw_breaks.end());
    m.cpu().set_breakpoints(std::move(all));
    m.cpu().set_watchpoints(watches);
  }

  void send_raw(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size() && client_fd >= 0) {
      const ssize_t n = ::send(client_fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return;  // the read side notices the disconnection
      }
      done += static_cast<size_t>(n);
    }
  }

  void reply(const std::string& payload) {
    last_reply = gdb::frame_packet(payload);
    send_raw(last_reply);
  }

  // Reads what is there (waiting up to timeout_ms); false when gdb went away.
  bool read_input(int timeout_ms) {
    pollfd p{client_fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, timeout_ms);
    if (rc <= 0) return true;
    u8 buf[4096];
    const ssize_t n = ::recv(client_fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return false;
    if (n > 0) reader.feed(std::span<const u8>(buf, static_cast<size_t>(n)), pending);
    return true;
  }

  // While the guest runs: notices Ctrl-C, a new debugger, a lost one. Runs
  // at machine loop boundaries, at most every few milliseconds of host time.
  void on_boundary() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_poll < std::chrono::milliseconds(5)) return;
    last_poll = now;
    if (client_fd < 0) {
      if (accept_client(0)) {
        // As QEMU: a debugger that attaches stops the machine (it asks why
        // with '?': no stop reply is sent unasked).
        attached_during_run = true;
        m.cpu().request_debug_break();
      }
      return;
    }
    if (!read_input(0)) {
      drop_client();
      return;
    }
    for (const auto& e : pending) {
      if (e.kind == gdb::PacketEvent::Kind::interrupt) {
        interrupt_seen = true;
        m.cpu().request_debug_break();
      }
    }
    // Packets sent while running (none in all-stop mode) wait for the stop.
    std::erase_if(pending, [](const gdb::PacketEvent& e) {
      return e.kind == gdb::PacketEvent::Kind::interrupt || e.kind == gdb::PacketEvent::Kind::ack;
    });
  }

  std::string thread_suffix() const { return "thread:1;"; }

  std::string exit_reply() const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "W%02x", end ? (end->status & 0xff) : 0);
    return buf;
  }

  // ---- packets

  std::string read_registers() {
    const CpuRegisters r = m.cpu().registers();
    std::string out;
    for (unsigned i = 0; i < kRegCount; ++i) out += gdb::hex_le32(reg_value(r, i));
    for (const FpuReg& f : kFpuRegs) out.append(f.bytes * 2, 'x');
    return out;
  }

  std::string refuse(const std::string& what) {
    std::fprintf(
        stderr,
        "reel: gdb: refused to %s: this is a replay, and a change would make the machine diverge from "
        "the recorded future (use 'reel run' to experiment)\n",
        what.c_str());
    return "E01";
  }

  std::string write_register(unsigned n, u32 value) {
    CpuRegisters r = m.cpu().registers();
    if (n >= kRegCount) return "E00";
    if (reg_value(r, n) == value) return "OK";
    if (replaying()) return refuse(std::string("write register ") + kRegNames[n]);
    if (n >= 10) {
      std::fprintf(stderr, "reel: gdb: refused to write %s: segment registers are read-only under gdb\n",
                   kRegNames[n]);
      return "E01";
    }
    if (n < 8) r.gpr[n] = value;
    if (n == 8) r.eip = value;
    if (n == 9) r.eflags = (value & 0x00247fd7u) | 2;
    m.cpu().set_registers(r);
    return "OK";
  }

  std::string write_all_registers(std::string_view hex) {
    if (hex.size() < kRegCount * 8) return "E00";
    for (unsigned i = 0; i < kRegCount; ++i) {
      const auto v = gdb::parse_hex_le32(hex.substr(i * 8, 8));
      if (!v) return "E00";
      const std::string r = write_register(i, *v);
      if (r != "OK") return r;
    }
    return "OK";
  }

  // One piece of a linear range that lies in one page: where it is in
  // physical memory.
  struct PhysicalPiece {
    u32 physical = 0;
    u32 length = 0;
  };

  // gdb's addresses are linear, as the guest's instructions use them. With
  // paging on (CR0.PG) every page of [addr, addr+len) is translated on its
  // own through the guest's page tables (Cpu::debug_translate: no TLB fill,
  // no accessed bits), since the next linear page can map anywhere. The
  // pieces stop at the first unmapped page or at 4 GiB.
  std::vector<PhysicalPiece> physical_pieces(u64 addr, u64 len) const {
    std::vector<PhysicalPiece> pieces;
    while (len > 0 && addr <= 0xffffffffu) {
      const u64 in_page = GuestMemory::kPageSize - (addr & (GuestMemory::kPageSize - 1));
      const u32 n = static_cast<u32>(std::min(len, in_page));
      u32 physical = 0;
      if (!m.cpu().debug_translate(static_cast<u32>(addr), physical)) break;
      pieces.push_back({physical, n});
      addr += n;
      len -= n;
    }
    return pieces;
  }

  // MMIO is never touched (a read could have side effects): those bytes are
  // unreadable, as unmapped ones are. When only the start of the range can
  // be read, the reply holds those bytes: GDB's remote protocol allows an
  // 'm' reply "fewer addressable memory units than requested if the server
  // was able to read only part of the region", and gdb then asks for the
  // rest, whose error tells it exactly where memory stops (`x/8x` across
  // into an unmapped page shows the mapped words). An error only when not
  // even the first byte can be read.
  std::string read_memory(u64 addr, u64 len) {
    len = std::min<u64>(len, gdb::kMaxPacket / 2);
    std::vector<u8> out;
    for (const PhysicalPiece& piece : physical_pieces(addr, len)) {
      const size_t before = out.size();
      for (u32 i = 0; i < piece.length; ++i) {
        u8 b = 0;
        if (!m.memory().read(piece.physical + i, std::span<u8>(&b, 1))) break;
        out.push_back(b);
      }
      if (out.size() - before < piece.length) break;
    }
    if (out.empty() && len > 0) return "E14";
    return gdb::to_hex(out);
  }

  // All or nothing: 'M' and 'X' have no partial reply, and a write that
  // stopped at an unmapped page would leave memory changed behind gdb's
  // back. GuestMemory::write keeps the CPU coherent with the new bytes (its
  // code listener drops decoded blocks of the page, its page-table listener
  // the TLB).
  std::string write_memory(const gdb::MemoryWrite& w) {
    if (w.bytes.empty()) return "OK";
    if (w.address + w.bytes.size() > 0x100000000ull) return "E14";
    const std::vector<PhysicalPiece> pieces = physical_pieces(w.address, w.bytes.size());
    u64 mapped = 0;
    for (const PhysicalPiece& piece : pieces) {
      if (!m.memory().is_ram(piece.physical, piece.length)) return "E14";
      mapped += piece.length;
    }
    if (mapped < w.bytes.size()) return "E14";
    bool same = true;
    size_t at = 0;
    for (const PhysicalPiece& piece : pieces) {
      std::vector<u8> current(piece.length);
      m.memory().read(piece.physical, current);
      same = same && std::equal(current.begin(), current.end(), w.bytes.begin() + static_cast<ptrdiff_t>(at));
      at += piece.length;
    }
    if (same) return "OK";
    if (replaying()) return refuse("write guest memory");
    at = 0;
    for (const PhysicalPiece& piece : pieces) {
      m.memory().write(piece.physical, std::span<const u8>(w.bytes).subspan(at, piece.length));
      at += piece.length;
    }
    return "OK";
  }

  std::string breakpoint(bool insert, const gdb::BreakpointRequest& z) {
    if (z.address > 0xffffffffu) return "E01";
    const u32 addr = static_cast<u32>(z.address);
    if (z.type == 0 || z.type == 1) {
      auto& set = z.type == 0 ? sw_breaks : hw_breaks;
      if (insert) {
        set.insert(addr);
      } else {
        set.erase(addr);
      }
    } else {
      if (z.kind == 0 || z.kind > 4096) return "E01";
      const Cpu::DebugStopKind kind = z.type == 2   ? Cpu::DebugStopKind::watch_write
                                      : z.type == 3 ? Cpu::DebugStopKind::watch_read
                                                    : Cpu::DebugStopKind::watch_access;
      const u32 len = static_cast<u32>(z.kind);
      auto same = [&](const Cpu::Watchpoint& w) {
        return w.address == addr && w.length == len && w.kind == kind;
      };
      if (insert) {
        if (std::find_if(watches.begin(), watches.end(), same) == watches.end())
          watches.push_back({addr, len, kind});
      } else {
        std::erase_if(watches, same);
      }
    }
    sync_cpu();
    return "OK";
  }

  std::string stop_for(const Cpu::DebugStop& s) {
    switch (s.kind) {
      case Cpu::DebugStopKind::breakpoint:
        return std::string("T05") +
               (hw_breaks.count(s.address) && !sw_breaks.count(s.address) ? "hwbreak:;" : "swbreak:;") +
               thread_suffix();
      case Cpu::DebugStopKind::watch_write:
      case Cpu::DebugStopKind::watch_read:
      case Cpu::DebugStopKind::watch_access: {
        const char* name = s.kind == Cpu::DebugStopKind::watch_write  ? "watch"
                           : s.kind == Cpu::DebugStopKind::watch_read ? "rwatch"
                                                                      : "awatch";
        char buf[48];
        std::snprintf(buf, sizeof buf, "T05%s:%x;", name, s.address);
        return buf + thread_suffix();
      }
      case Cpu::DebugStopKind::break_request:
        return "T02" + thread_suffix();
      case Cpu::DebugStopKind::none:
        break;
    }
    return "T05" + thread_suffix();
  }

  // ---- reverse execution (replay with snapshots)
  //
  // Where a stop leaves the machine, as an instruction count (icount N
  // means N instructions have retired):
  //  - a breakpoint at N: before instruction N+1 runs, after an interrupt
  //    the CPU delivered there (its handler's first instruction can be the
  //    breakpoint);
  //  - a forward watchpoint stop at N: just after the instruction that
  //    wrote (it retired as instruction N), the new value in memory;
  //  - a reverse watchpoint stop: just before that instruction, at N-1,
  //    the old value in memory. This is where gdb expects a reverse
  //    watchpoint (as its own record-full target does): it compares the
  //    value there with the one it saw last and reports "Old value" (after
  //    the write) and "New value" (before it). Stopping after the write
  //    instead would show gdb an unchanged value, and it would carry on to
  //    the write before;
  //  - stepi, reverse-stepi and `monitor seek` move one instruction count
  //    (N+1, N-1) or to the count asked, before any interrupt delivery at
  //    that count: reverse-stepi from a forward watchpoint stop lands on
  //    the reverse watchpoint stop of the same write, and stepi from there
  //    comes back to it.

  // A debugger stop a reverse-continue scan saw: where it goes back to.
  struct Hit {
    u64 icount = 0;  // the stop point, as above
    Cpu::DebugStop stop;
  };

  // Moves to `target` with breakpoints and watchpoints off (a stop on the
  // way is not one the user asked for), then puts them back. A restore
  // keeps the CPU's watched-page flag (GuestMemory::restore_page clears
  // only its own bits, and no snapshot holds page flags), but setting the
  // watchpoints again costs nothing and does not depend on it.
  std::optional<RunEnd> seek_quiet(u64 target) {
    m.cpu().set_breakpoints({});
    m.cpu().set_watchpoints({});
    std::optional<RunEnd> r;
    if (end || target < m.clock().icount()) {
      if (!restore_before(target)) {
        sync_cpu();
        return end;  // cannot happen: the store holds icount 0
      }
      end.reset();  // a restore brings an ended replay back
    }
    r = config.snapshots->run_until(target);
    (void)m.cpu().take_debug_stop();
    sync_cpu();
    return r;
  }

  // Reverse steps come in runs (gdb's reverse-stepi, and reverse-step and
  // reverse-next, which step back one instruction at a time through a
  // line): each would run up to a whole interval forward from the store's
  // snapshot. A few snapshots of our own, every kNearSpacing instructions
  // on the way, make the next steps back run at most that far. The history
  // of a replay never changes, so they stay valid; the oldest used goes.
  static constexpr u64 kNearSpacing = u64{1} << 16;
  static constexpr size_t kNearKept = 8;
  std::vector<std::shared_ptr<const Snapshot>> near;  // least recently used first

  // Restores the latest snapshot at or before `target`, the store's or a
  // near one, and leaves a near one within kNearSpacing of `target`.
  // Breakpoints and watchpoints must be off.
  bool restore_before(u64 target) {
    SnapshotStore& store = *config.snapshots;
    std::shared_ptr<const Snapshot> best = store.at_or_before(target);
    auto used = near.end();
    for (auto it = near.begin(); it != near.end(); ++it) {
      if ((*it)->icount <= target && (!best || (*it)->icount > best->icount)) {
        best = *it;
        used = it;
      }
    }
    if (!best) return false;
    store.snapshotter().restore(best);
    if (used != near.end()) std::rotate(used, used + 1, near.end());
    const u64 from = best->icount;
    if (target - from >= kNearSpacing) {
      const u64 at = from + (target - from) / kNearSpacing * kNearSpacing;
      if (!store.run_until(at) && m.clock().icount() == at) {
        (void)m.cpu().take_debug_stop();
        near.push_back(store.snapshotter().capture());
        if (near.size() > kNearKept) near.erase(near.begin());
      }
    }
    return true;
  }

  std::string history_begin() { return "T05replaylog:begin;" + thread_suffix(); }

  std::string reverse_step() {
    const u64 now = m.clock().icount();
    if (now == 0 && !end) return history_begin();
    if (const std::optional<RunEnd> r = seek_quiet(now == 0 ? 0 : now - 1)) {
      end = r;
      return exit_reply();
    }
    return "T05" + thread_suffix();
  }

  // The last breakpoint or watchpoint hit before the current point: scans
  // one snapshot interval at a time backwards, re-running it forward from
  // its snapshot with the debugger's stops on and remembering each (none is
  // reported), then goes to the last one found. Stops are continued from
  // as a forward `continue` would (Cpu::debug_resume), so the scan sees
  // exactly the hits forward runs report.
  std::string reverse_continue() {
    SnapshotStore& store = *config.snapshots;
    u64 hi = m.clock().icount();
    // Nothing to hit: straight to the start, without scanning the history.
    if (sw_breaks.empty() && hw_breaks.empty() && watches.empty()) hi = 0;
    while (hi > 0) {
      const std::shared_ptr<const Snapshot> snap = store.at_or_before(hi - 1);
      if (!snap) break;
      store.snapshotter().restore(snap);
      end.reset();
      sync_cpu();
      std::optional<Hit> last;
      for (;;) {
        const std::optional<RunEnd> ran = m.run_until(hi);
        const Cpu::DebugStop s = m.cpu().take_debug_stop();
        if (ran || s.kind == Cpu::DebugStopKind::none) break;
        if (s.kind == Cpu::DebugStopKind::break_request) {
          // Ctrl-C during a long scan: stop where the scan is.
          m.cpu().clear_debug_break();
          return "T02" + thread_suffix();
        }
        const bool watch = s.kind != Cpu::DebugStopKind::breakpoint;
        const u64 at = m.clock().icount() - (watch ? 1 : 0);
        if (at >= hi) break;
        last = Hit{at, s};
        m.cpu().debug_resume();
      }
      if (last) return go_to_hit(*last);
      hi = snap->icount;
    }
    seek_quiet(0);
    return history_begin();
  }

  std::string go_to_hit(const Hit& h) {
    seek_quiet(h.icount);
    if (h.stop.kind == Cpu::DebugStopKind::breakpoint) {
      // Arrive as the forward stop did: with the breakpoints on and no
      // skip, the next instruction stops on the same breakpoint after any
      // interrupt delivered at this count.
      const std::optional<RunEnd> ran = m.run_until(h.icount + 1);
      const Cpu::DebugStop s = m.cpu().take_debug_stop();
      if (ran || s.kind != Cpu::DebugStopKind::breakpoint || m.clock().icount() != h.icount)
        seek_quiet(h.icount);
    }
    return stop_for(h.stop);
  }

  // ---- monitor commands (qRcmd)

  std::string cmd_when() {
    const VirtualClock& c = m.clock();
    char buf[160];
    std::snprintf(buf, sizeof buf, "icount %" PRIu64 "\nvirtual time %" PRIu64 " ns (%.6f s)\n", c.icount(),
                  c.now_ns(), static_cast<double>(c.now_ns()) / 1e9);
    return buf;
  }

  std::string cmd_journal() {
    if (!config.journal || !config.replay) return "journal: only in replay ('reel replay FILE -gdb ...')\n";
    const auto& events = config.journal->events();
    const u64 next = config.replay->events_consumed();
    std::string out = "icount " + std::to_string(m.clock().icount()) + ", event " + std::to_string(next) +
                      " of " + std::to_string(events.size()) + "\n";
    auto line = [&](const char* label, u64 i) {
      const JournalEvent& e = events[i];
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s #%" PRIu64 " icount %" PRIu64 " %s (%zu bytes)\n", label, i,
                    e.icount, event_kind_name(e.kind), e.payload.size());
      out += buf;
    };
    for (u64 i = next >= 3 ? next - 3 : 0; i < next && i < events.size(); ++i) line("previous", i);
    for (u64 i = next; i < next + 3 && i < events.size(); ++i) line("next    ", i);
    if (next >= events.size()) out += "no more events\n";
    return out;
  }

  std::string cmd_devices() {
    std::ostringstream os;
    m.dump_state(os);
    rapidjson::Document doc;
    doc.Parse(os.str().c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("devices"))
      return "info devices: no state\n";
    std::string out;
    const rapidjson::Value& devices = doc["devices"];
    for (auto it = devices.MemberBegin(); it != devices.MemberEnd(); ++it) {
      out += std::string(it->name.GetString()) + ":\n";
      flatten_json(it->value, "", out);
    }
    return out;
  }

  std::string cmd_seek(const std::string& arg) {
    char* endp = nullptr;
    errno = 0;
    const unsigned long long target = std::strtoull(arg.c_str(), &endp, 0);
    if (arg.empty() || *endp || errno) return "seek: expected an instruction count, got '" + arg + "'\n";
    const u64 now = m.clock().icount();
    if (end && !(reversible() && target < now)) return "seek: the run has ended\n";
    if (seek_hook) {
      const std::string error = seek_hook(target);
      if (!error.empty()) return "seek: " + error + "\n";
    } else if (reversible()) {
      if (const std::optional<RunEnd> r = seek_quiet(target)) {
        end = r;
        stop_reply = exit_reply();
        return "seek: the run ended at icount " + std::to_string(r->icount) + " (" + describe_end(*r) + ")\n";
      }
      stop_reply = "T05" + thread_suffix();
    } else if (target < now) {
      return "seek: going back is not yet supported (it needs the snapshots of reverse execution)\n";
    } else {
      // Forward: run there with breakpoints and watchpoints off.
      m.cpu().set_breakpoints({});
      m.cpu().set_watchpoints({});
      const std::optional<RunEnd> r = m.run_until(target);
      (void)m.cpu().take_debug_stop();
      sync_cpu();
      if (r) {
        end = r;
        stop_reply = exit_reply();
        return "seek: the run ended at icount " + std::to_string(r->icount) + " (" + describe_end(*r) + ")\n";
      }
    }
    return "now at icount " + std::to_string(m.clock().icount()) + "\n";
  }

  std::string cmd_snapshots() {
    if (!config.snapshots) return "snapshots: only in replay (reverse execution)\n";
    const SnapshotStore& st = *config.snapshots;
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "%zu snapshots, one every %" PRIu64 " instructions, %" PRIu64 " bytes held\n", st.count(),
                  st.interval(), st.bytes_held());
    return buf;
  }

  std::string monitor_command(const std::string& line) {
    const auto w = split_words(line);
    if (w.empty() || w[0] == "help") {
      return "info network    -- the VLANs and what is attached to them\n"
             "info registers  -- the CPU registers\n"
             "info devices    -- every device's state\n"
             "info usernet    -- the user-mode networks' forwards and leases\n"
             "when            -- instruction count and virtual time\n"
             "journal         -- the previous and next journal events (replay)\n"
             "seek ICOUNT     -- go to an instruction count (back too, in replay)\n"
             "snapshots       -- the reverse-execution history: count, interval, memory\n";
    }
    if (w[0] == "info" && w.size() == 2) {
      if (w[1] == "network") return monitor->info_network();
      if (w[1] == "registers") return monitor->info_registers();
      if (w[1] == "usernet") return monitor->info_usernet();
      if (w[1] == "devices") return cmd_devices();
    }
    if (w[0] == "when" && w.size() == 1) return cmd_when();
    if (w[0] == "journal" && w.size() == 1) return cmd_journal();
    if (w[0] == "seek" && w.size() == 2) return cmd_seek(w[1]);
    if (w[0] == "snapshots" && w.size() == 1) return cmd_snapshots();
    return "unknown command: '" + line + "' (try 'monitor help')\n";
  }

  // Handles one packet; sets `resume` for c/s/vCont/D/k. An empty string is
  // the empty reply of an unsupported packet.
  std::string handle(const std::string& p, Resume& resume) {
    if (p.empty()) return {};
    const char c = p[0];
    const std::string_view rest = std::string_view(p).substr(1);
    switch (c) {
      case '?':
        return stop_reply;
      case 'g':
        return read_registers();
      case 'G':
        return write_all_registers(rest);
      case 'p': {
        const auto n = gdb::parse_hex(rest);
        if (!n) return "E00";
        if (*n >= kRegCount + kFpuRegCount) return "E00";
        if (*n >= kRegCount) return std::string(kFpuRegs[*n - kRegCount].bytes * 2, 'x');
        return gdb::hex_le32(reg_value(m.cpu().registers(), static_cast<unsigned>(*n)));
      }
      case 'P': {
        const size_t eq = rest.find('=');
        if (eq == std::string_view::npos) return "E00";
        const auto n = gdb::parse_hex(rest.substr(0, eq));
        if (n && *n >= kRegCount && *n < kRegCount + kFpuRegCount) {
          std::fprintf(stderr, "reel: gdb: refused to write %s: this CPU has no FPU\n",
                       kFpuRegs[*n - kRegCount].name);
          return "E01";
        }
        const auto v = gdb::parse_hex_le32(rest.substr(eq + 1));
        if (!n || !v) return "E00";
        return write_register(static_cast<unsigned>(std::min<u64>(*n, kRegCount)), *v);
      }
      case 'm': {
        const auto al = gdb::parse_address_length(rest);
        if (!al) return "E00";
        return read_memory(al->first, al->second);
      }
      case 'M': {
        const auto w = gdb::parse_memory_write_hex(rest);
        if (!w) return "E00";
        return write_memory(*w);
      }
      case 'X': {
        const auto w = gdb::parse_memory_write_binary(rest);
        if (!w) return "E00";
        return write_memory(*w);
      }
      case 'Z':
      case 'z': {
        const auto z = gdb::parse_breakpoint(rest);
        if (!z) return "E00";
        return breakpoint(c == 'Z', *z);
      }
      case 'c':
      case 's':
        if (!rest.empty()) {
          const auto addr = gdb::parse_hex(rest);
          if (!addr) return "E00";
          const std::string r = write_register(8, static_cast<u32>(*addr));
          if (r != "OK") return r;
        }
        resume = c == 'c' ? Resume::cont : Resume::step;
        return {};
      case 'b':
        // Reverse execution: answered here (the machine moves back and
        // stops at once), never through run()'s forward loop.
        if (!reversible() || (p != "bs" && p != "bc")) return {};
        stop_reply = p == "bs" ? reverse_step() : reverse_continue();
        return stop_reply;
      case 'D':
        resume = Resume::detach;
        return "OK";
      case 'k':
        resume = Resume::kill;
        return {};
      case 'H':
        return "OK";  // one thread: every thread id means it
      case 'T':
        return "OK";
      default:
        break;
    }
    if (p == "qSupported" || p.starts_with("qSupported:")) {
      char buf[200];
      std::snprintf(
          buf, sizeof buf,
          "PacketSize=%zx;qXfer:features:read+;QStartNoAckMode+;vContSupported+;swbreak+;hwbreak+%s",
          gdb::kMaxPacket, reversible() ? ";ReverseStep+;ReverseContinue+" : "");
      return buf;
    }
    if (p == "QStartNoAckMode") {
      reply("OK");
      no_ack = true;
      return "\x01";  // already answered
    }
    if (p.starts_with("qXfer:")) {
      const auto x = gdb::parse_xfer_read(p);
      if (!x || x->object != "features") return {};
      if (x->annex != "target.xml") return "E00";
      static const std::string xml = target_xml();
      return gdb::xfer_reply(xml, x->offset, std::min<u64>(x->length, gdb::kMaxPacket - 8));
    }
    if (p == "vCont?") return "vCont;c;C;s;S";
    if (p.starts_with("vCont;")) {
      const auto actions = gdb::parse_vcont(std::string_view(p).substr(5));
      if (!actions) return "E00";
      for (const auto& a : *actions) {
        if (a.thread && *a.thread != "1" && *a.thread != "-1" && *a.thread != "p1.1" && *a.thread != "p1.-1")
          continue;
        if (a.action == 't') return "OK";
        resume = a.action == 's' ? Resume::step : Resume::cont;
        return {};
      }
      return "E00";
    }
    if (p == "qC") return "QC1";
    if (p == "qfThreadInfo") return "m1";
    if (p == "qsThreadInfo") return "l";
    if (p == "qAttached" || p.starts_with("qAttached:")) return "1";
    if (p == "qSymbol::") return "OK";
    if (p.starts_with("qThreadExtraInfo,")) return gdb::to_hex(std::string_view("CPU 0"));
    if (p.starts_with("qRcmd,")) {
      const auto bytes = gdb::from_hex(std::string_view(p).substr(6));
      if (!bytes) return "E00";
      std::string out = monitor_command(std::string(bytes->begin(), bytes->end()));
      if (out.empty()) out.push_back('\n');
      return gdb::to_hex(out);
    }
    return {};
  }

  // Serves packets until gdb resumes the machine, detaches, kills or leaves.
  Resume serve() {
    for (;;) {
      while (!pending.empty()) {
        gdb::PacketEvent e = std::move(pending.front());
        pending.erase(pending.begin());
        using K = gdb::PacketEvent::Kind;
        switch (e.kind) {
          case K::ack:
          case K::interrupt:  // already stopped
            break;
          case K::nack:
            if (!no_ack && !last_reply.empty()) send_raw(last_reply);
            break;
          case K::bad_checksum:
          case K::overlong:
            if (!no_ack) send_raw("-");
            break;
          case K::packet: {
            if (!no_ack) send_raw("+");
            Resume resume = Resume::none;
            const std::string r = handle(e.payload, resume);
            if (resume == Resume::kill) return resume;
            if (resume == Resume::cont || resume == Resume::step) return resume;
            if (r != "\x01") reply(r);
            if (resume == Resume::detach) return resume;
            break;
          }
        }
      }
      if (stop_flag && stop_flag->load(std::memory_order_relaxed)) return Resume::kill;
      if (!read_input(100)) return Resume::gone;
    }
  }

  RunEnd finish_run() {
    if (!end) end = m.run();
    return *end;
  }

  RunEnd run(const std::atomic<bool>* flag) {
    stop_flag = flag;
    m.set_stop_flag(flag);
    // The start of history: a debugger stopped before the first instruction
    // (-S) can already step back to it.
    if (config.snapshots) config.snapshots->capture();
    m.set_boundary_hook([this] { on_boundary(); });
    bool stopped = false;
    if (config.wait_for_client) {
      while (client_fd < 0) {
        if (flag && flag->load(std::memory_order_relaxed)) {
          m.request_exit(RunEnd::Kind::interrupted, kExitInterrupted);
          return finish_run();
        }
        accept_client(100);
      }
      stopped = true;
      stop_reply = "T05" + thread_suffix();
    }
    for (;;) {
      if (client_fd >= 0 && stopped) {
        const Resume r = serve();
        if (r == Resume::kill) {
          std::fprintf(stderr, "reel: gdb: killed the session\n");
          if (!end) m.request_exit(RunEnd::Kind::interrupted, kExitInterrupted);
          return finish_run();
        }
        if (r == Resume::gone || r == Resume::detach) {
          if (r == Resume::detach) {
            // Let the OK reach gdb before the socket closes.
            ::shutdown(client_fd, SHUT_WR);
          }
          drop_client();
          if (end) return *end;
          stopped = false;
          continue;
        }
        if (end) {
          // The run is over: every resume answers that it exited.
          reply(exit_reply());
          continue;
        }
        stopped = false;
        attached_during_run = false;
        m.cpu().clear_debug_break();
        m.cpu().debug_resume();
        const std::optional<RunEnd> ran = r == Resume::step ? run_to(m.clock().icount() + 1) : run_to(kNever);
        const Cpu::DebugStop s = m.cpu().take_debug_stop();
        m.cpu().clear_debug_break();
        stopped = true;
        if (ran) {
          end = ran;
          stop_reply = exit_reply();
        } else {
          stop_reply = stop_for(s);
        }
        interrupt_seen = false;
        if (client_fd >= 0 && !attached_during_run) reply(stop_reply);
        continue;
      }
      if (end) return *end;
      // No debugger, or it just attached: run until it stops the machine.
      attached_during_run = false;
      const std::optional<RunEnd> ran = run_to(kNever);
      const Cpu::DebugStop s = m.cpu().take_debug_stop();
      m.cpu().clear_debug_break();
      if (ran) {
        end = ran;
        stop_reply = exit_reply();
        if (client_fd < 0) return *end;
        if (!attached_during_run) reply(stop_reply);
      } else {
        stop_reply = stop_for(s);
        // A debugger attaching stops the machine without telling it: gdb
        // asks with '?'.
        if (!attached_during_run && (s.kind != Cpu::DebugStopKind::break_request || interrupt_seen))
          reply(stop_reply);
        interrupt_seen = false;
      }
      stopped = true;
    }
  }
};

GdbStub::GdbStub(PcBoard& board, Config config) : m_impl(std::make_unique<Impl>(board, std::move(config))) {
  m_impl->listen();
}

GdbStub::~GdbStub() = default;

u16 GdbStub::port() const { return m_impl->bound_port; }

void GdbStub::set_seek_hook(SeekHook hook) { m_impl->seek_hook = std::move(hook); }

RunEnd GdbStub::run(const std::atomic<bool>* stop_flag) { return m_impl->run(stop_flag); }

}  // namespace reel
