#include "harness/divergence.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "harness/disassembler.h"
#include "harness/pc_board.h"
#include "harness/session.h"

namespace reel {

namespace {

std::string hex32(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx64, v);
  return buf;
}

std::string hex8(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%02" PRIx64, v);
  return buf;
}

// Accepts decimal or 0x-prefixed hex, the whole string.
bool parse_number(const std::string& s, u64& out) {
  if (s.empty()) return false;
  const bool is_hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const std::string digits = is_hex ? s.substr(2) : s;
  if (digits.empty()) return false;
  u64 v = 0;
  for (char c : digits) {
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (is_hex && c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else if (is_hex && c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return false;
    }
    const u64 base = is_hex ? 16 : 10;
    if (v > (~u64{0} - d) / base) return false;
    v = v * base + d;
  }
  out = v;
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

constexpr const char* kRegisterNames[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};

// ---- A small JSON reader, enough for Cereal's output (objects, arrays,
// strings, numbers, true/false/null); flattening needs no DOM.
class JsonFlattener {
 public:
  explicit JsonFlattener(std::string_view text) : m_text(text) {}

  FlatState run() {
    skip_space();
    value("");
    skip_space();
    if (m_pos != m_text.size()) fail("text after the value");
    return std::move(m_out);
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error("state dump is not valid JSON at byte " + std::to_string(m_pos) + ": " + what);
  }
  void skip_space() {
    while (m_pos < m_text.size() &&
           (m_text[m_pos] == ' ' || m_text[m_pos] == '\n' || m_text[m_pos] == '\r' || m_text[m_pos] == '\t'))
      ++m_pos;
  }
  char peek() const { return m_pos < m_text.size() ? m_text[m_pos] : '\0'; }
  void expect(char c) {
    if (peek() != c) fail("unexpected character");
    ++m_pos;
  }
  static std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
  }

  std::string string() {
    expect('"');
    std::string s;
    while (m_pos < m_text.size() && m_text[m_pos] != '"') {
      char c = m_text[m_pos++];
      if (c == '\\') {
        if (m_pos >= m_text.size()) fail("unterminated escape");
        const char e = m_text[m_pos++];
        switch (e) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'u':
            // Dumps only escape control characters; keep the escape as text.
            if (m_pos + 4 > m_text.size()) fail("short \\u escape");
            s += "\\u";
            s.append(m_text.substr(m_pos, 4));
            m_pos += 4;
            continue;
          default:
            c = e;
        }
      }
      s += c;
    }
    expect('"');
    return s;
  }

  void value(const std::string& path) {
    if (++m_depth > 256) fail("nested too deep");
    skip_space();
    const char c = peek();
    if (c == '{') {
      ++m_pos;
      skip_space();
      if (peek() == '}') {
        ++m_pos;
      } else {
        for (;;) {
          skip_space();
          const std::string key = string();
          skip_space();
          expect(':');
          value(join(path, key));
          skip_space();
          if (peek() == ',') {
            ++m_pos;
            continue;
          }
          expect('}');
          break;
        }
      }
    } else if (c == '[') {
      ++m_pos;
      skip_space();
      size_t index = 0;
      if (peek() == ']') {
        ++m_pos;
      } else {
        for (;;) {
          value(path + "[" + std::to_string(index++) + "]");
          skip_space();
          if (peek() == ',') {
            ++m_pos;
            continue;
          }
          expect(']');
          break;
        }
      }
    } else if (c == '"') {
      m_out[path] = "\"" + string() + "\"";
    } else {
      const size_t start = m_pos;
      while (m_pos < m_text.size() && m_text[m_pos] != ',' && m_text[m_pos] != '}' && m_text[m_pos] != ']' &&
             m_text[m_pos] != ' ' && m_text[m_pos] != '\n' && m_text[m_pos] != '\r' && m_text[m_pos] != '\t')
        ++m_pos;
      if (m_pos == start) fail("missing value");
      m_out[path] = std::string(m_text.substr(start, m_pos - start));
    }
    --m_depth;
  }

  std::string_view m_text;
  size_t m_pos = 0;
  int m_depth = 0;
  FlatState m_out;
};

// Integers read better in hex for registers and device fields.
std::string show_value(const std::string& v) {
  u64 n;
  if (!parse_number(v, n)) return v;
  if (n <= 0xff) return hex8(n);
  if (n <= 0xffffffffu) return hex32(n);
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, n);
  return buf;
}

struct CodeAt {
  u32 address = 0;
  bool code32 = true;
  std::vector<u8> bytes;
};

CodeAt code_at(Machine& m) {
  const CpuRegisters r = m.cpu().registers();
  CodeAt c;
  const SegmentCache& cs = r.seg[static_cast<int>(SegReg::cs)];
  c.address = cs.base + r.eip;
  c.code32 = (r.cr0 & 1) && (cs.attrs & (1u << 14));
  // Up to 16 bytes, translated a byte at a time through the guest's page
  // tables (an instruction may straddle two pages); they stop at the first
  // unmapped or unreadable byte, and the report shows what decodes.
  for (u32 i = 0; i < 16; ++i) {
    u32 phys = 0;
    u8 byte = 0;
    if (!m.cpu().debug_translate(c.address + i, phys) || !m.memory().read(phys, std::span<u8>(&byte, 1)))
      break;
    c.bytes.push_back(byte);
  }
  return c;
}

void split_changes(const std::vector<FieldChange>& all, InstructionDifference& d) {
  for (const FieldChange& c : all) {
    if (c.path.starts_with("cpu.")) {
      d.registers.push_back(c);
    } else {
      d.fields.push_back(c);
    }
  }
}

}  // namespace

// ---- Perturbation

Perturbation parse_perturbation(const std::string& text) {
  const std::vector<std::string> p = split(text, ':');
  const std::string usage =
      "--perturb=" + text + ": expected ICOUNT:ram:ADDR:BIT, ICOUNT:reg:NAME:BIT or ICOUNT:port:PORT:VALUE";
  if (p.size() != 4) throw BadInput(usage);
  Perturbation r;
  u64 a = 0, b = 0;
  if (!parse_number(p[0], r.icount)) throw BadInput(usage + " (bad instruction count '" + p[0] + "')");
  if (p[1] == "ram") {
    r.kind = Perturbation::Kind::ram_bit;
    if (!parse_number(p[2], a) || a > 0xffffffffu) throw BadInput(usage + " (bad address '" + p[2] + "')");
    if (!parse_number(p[3], b) || b > 7) throw BadInput(usage + " (bit must be 0-7)");
    r.address = static_cast<u32>(a);
    r.bit = static_cast<u32>(b);
  } else if (p[1] == "reg") {
    r.kind = Perturbation::Kind::register_bit;
    const bool known =
        std::find(std::begin(kRegisterNames), std::end(kRegisterNames), p[2]) != std::end(kRegisterNames) ||
        p[2] == "eip" || p[2] == "eflags";
    if (!known) throw BadInput(usage + " (unknown register '" + p[2] + "')");
    if (!parse_number(p[3], b) || b > 31) throw BadInput(usage + " (bit must be 0-31)");
    r.reg = p[2];
    r.bit = static_cast<u32>(b);
  } else if (p[1] == "port") {
    r.kind = Perturbation::Kind::port_write;
    if (!parse_number(p[2], a) || a > 0xffff) throw BadInput(usage + " (bad port '" + p[2] + "')");
    if (!parse_number(p[3], b) || b > 0xff) throw BadInput(usage + " (value must be a byte)");
    r.address = static_cast<u32>(a);
    r.value = static_cast<u32>(b);
  } else {
    throw BadInput(usage + " (unknown kind '" + p[1] + "')");
  }
  return r;
}

std::string describe_perturbation(const Perturbation& p) {
  const std::string at = " at icount " + std::to_string(p.icount);
  switch (p.kind) {
    case Perturbation::Kind::ram_bit:
      return "flip bit " + std::to_string(p.bit) + " of ram[" + hex32(p.address) + "]" + at;
    case Perturbation::Kind::register_bit:
      return "flip bit " + std::to_string(p.bit) + " of cpu." + p.reg + at;
    case Perturbation::Kind::port_write:
      return "write " + hex8(p.value) + " to port " + hex32(p.address) + at;
  }
  return "?";
}

void apply_perturbation(Machine& machine, const Perturbation& p) {
  switch (p.kind) {
    case Perturbation::Kind::ram_bit: {
      u8 byte = 0;
      if (!machine.memory().read(p.address, {&byte, 1})) return;  // not RAM: nothing to flip
      byte ^= static_cast<u8>(1u << p.bit);
      machine.memory().write(p.address, {&byte, 1});
      return;
    }
    case Perturbation::Kind::register_bit: {
      CpuRegisters r = machine.cpu().registers();
      const u32 mask = 1u << p.bit;
      if (p.reg == "eip") {
        r.eip ^= mask;
      } else if (p.reg == "eflags") {
        r.eflags ^= mask;
      } else {
        for (int i = 0; i < 8; ++i) {
          if (p.reg == kRegisterNames[i]) r.gpr[i] ^= mask;
        }
      }
      machine.cpu().set_registers(r);
      return;
    }
    case Perturbation::Kind::port_write:
      machine.ports().write(static_cast<u16>(p.address), 1, p.value);
      return;
  }
}

// ---- Flat states

FlatState flatten_json(std::string_view json) { return JsonFlattener(json).run(); }

FlatState flat_state(Machine& machine) {
  std::ostringstream os;
  machine.dump_state(os);
  // JSONOutputArchive closes its outermost object when destroyed, which
  // dump_state does before returning.
  return flatten_json(os.str());
}

std::vector<FieldChange> diff_states(const FlatState& a, const FlatState& b) {
  std::vector<FieldChange> out;
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      out.push_back({ia->first, ia->second, "absent"});
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      out.push_back({ib->first, "absent", ib->second});
      ++ib;
    } else {
      if (ia->second != ib->second) out.push_back({ia->first, ia->second, ib->second});
      ++ia;
      ++ib;
    }
  }
  return out;
}

std::vector<FieldChange> diff_ram(const GuestMemory& a, const GuestMemory& b, size_t limit) {
  std::vector<FieldChange> out;
  const u32 n = std::min(a.size(), b.size());
  constexpr u32 kBlock = 4096;
  for (u32 base = 0; base < n && out.size() < limit; base += kBlock) {
    const u32 len = std::min(kBlock, n - base);
    if (std::memcmp(a.data() + base, b.data() + base, len) == 0) continue;
    for (u32 i = base; i < base + len && out.size() < limit; ++i) {
      if (a.data()[i] != b.data()[i])
        out.push_back({"ram[" + hex32(i) + "]", hex8(a.data()[i]), hex8(b.data()[i])});
    }
  }
  if (a.size() != b.size()) out.push_back({"ram.size", std::to_string(a.size()), std::to_string(b.size())});
  return out;
}

std::string format_change(const FieldChange& c) {
  return c.path + ": " + show_value(c.a) + " -> " + show_value(c.b);
}

// ---- ReplayRun

std::optional<size_t> keyframe_at_or_before(const JournalReader& journal, u64 icount) {
  std::optional<size_t> found;
  const auto& ev = journal.events();
  for (size_t i = 0; i < ev.size() && ev[i].icount <= icount; ++i) {
    if (ev[i].kind == EventKind::keyframe) found = i;
  }
  return found;
}

void load_keyframe(const JournalReader& journal, size_t index, Machine& machine, ReplayingHostIO& host) {
  const JournalEvent& e = journal.events().at(index);
  const KeyframeRecord k = decode_keyframe(e, journal.name());
  const std::vector<u8> state = keyframe_state(e, k, journal.name());
  const std::string where = journal.name() + ": keyframe at icount " + std::to_string(e.icount) +
                            " (byte offset " + std::to_string(e.offset) + ")";
  try {
    std::istringstream is(std::string(reinterpret_cast<const char*>(state.data()), state.size()));
    BinaryIn ar(is);
    machine.load_state(ar, Machine::StateParts::all);
  } catch (const std::exception& ex) {
    // Cereal throws on a short archive; anything else a bad state makes
    // a load throw is the same problem to the user.
    throw JournalError(where + " does not load: " + ex.what());
  }
  // A fresh machine has no host sockets, so keyframes are only taken while
  // none is open (harness/verb_record.cc); no routing to restore.
  machine.restore_runtime({});
  if (machine.clock().icount() != e.icount) {
    throw JournalError(where + " loads a machine at icount " + std::to_string(machine.clock().icount()));
  }
  const u64 hash = machine.state_hash();
  if (hash != k.state_hash) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " loads to state hash 0x%016" PRIx64 ", recorded 0x%016" PRIx64, hash,
                  k.state_hash);
    throw JournalError(where + buf);
  }
  host.start_at_keyframe(index);
}

ReplayRun::ReplayRun(const JournalReader& journal, const std::string& name,
                     std::optional<Perturbation> perturbation, SnapshotStore::Policy policy,
                     std::optional<size_t> keyframe)
    : m_journal(journal), m_host(journal, name), m_perturbation(std::move(perturbation)) {
  m_host.set_silent_consoles(true);
  MachineOptions opts = parse_machine_options(journal.header().argv);
  opts.checkpoint_interval = journal.header().checkpoint_interval;
  opts.log_in_asm = false;  // the user's replay logs; the search's runs do not
  m_board = std::make_unique<PcBoard>(opts, m_host, journal.header().seed);
  if (keyframe) {
    load_keyframe(journal, *keyframe, machine(), m_host);
    // A perturbation before the keyframe is already in its state, or (a
    // different run) not applicable: either way it is not applied again.
    m_perturbed = m_perturbation && m_perturbation->icount < machine().clock().icount();
  }
  // The first snapshot, before the first instruction, makes every count
  // reachable by a restore.
  m_snapshots = std::make_unique<SnapshotStore>(machine(), &m_host, policy);
  m_snapshots->capture();
}

ReplayRun::~ReplayRun() = default;

Machine& ReplayRun::machine() { return m_board->machine(); }
u64 ReplayRun::icount() { return machine().clock().icount(); }
u64 ReplayRun::state_hash() { return machine().state_hash(); }

bool ReplayRun::run_to(u64 target) {
  if (target < icount()) {
    const std::optional<u64> at = m_snapshots->restore_at_or_before(target);
    if (!at) return false;  // cannot happen: there is one at icount 0
    ++m_restores;
    m_end.reset();
    m_divergence.reset();
    // Snapshots at the perturbation's count are taken after it (below),
    // except the first, at icount 0, taken before anything ran.
    m_perturbed = m_perturbation && *at > 0 && m_perturbation->icount <= *at;
  }
  if (finished()) return icount() == target;
  try {
    if (m_perturbation && !m_perturbed && m_perturbation->icount <= target) {
      if (icount() <= m_perturbation->icount) {
        std::optional<RunEnd> end = m_snapshots->run_until(m_perturbation->icount);
        if (end) {
          m_end = end;
          return false;
        }
        apply_perturbation(machine(), *m_perturbation);
        // Replaces a snapshot taken here before the change.
        if (m_perturbation->icount > 0) m_snapshots->capture();
      }
      m_perturbed = true;
    }
    std::optional<RunEnd> end = m_snapshots->run_until(target);
    if (end) {
      m_end = end;
      return false;
    }
    return true;
  } catch (const ReplayDivergence& e) {
    m_divergence = e.what();
  } catch (const InputFileError& e) {
    m_divergence = e.what();
  }
  return false;
}

std::string ReplayRun::describe_finish() {
  if (m_divergence)
    return "diverged from its journal at icount " + std::to_string(icount()) + " (" + *m_divergence + ")";
  if (m_end) {
    return std::string("ended (") + run_end_kind_name(m_end->kind) + ", status " +
           std::to_string(m_end->status) + ") at icount " + std::to_string(m_end->icount);
  }
  return "paused at icount " + std::to_string(icount());
}

// ---- The search

namespace {

// Runs both to t; true when both got there.
bool both_to(ReplayRun& a, ReplayRun& b, u64 t) {
  const bool ra = a.run_to(t);
  const bool rb = b.run_to(t);
  return ra && rb;
}

// Inputs a journal delivers at the boundary at `icount` (not the
// checkpoints and digests, which only check).
std::vector<std::string> inputs_at(const JournalReader& j, u64 icount) {
  std::vector<std::string> out;
  const auto& ev = j.events();
  auto it = std::lower_bound(ev.begin(), ev.end(), icount,
                             [](const JournalEvent& e, u64 v) { return e.icount < v; });
  for (; it != ev.end() && it->icount == icount; ++it) {
    if (it->kind == EventKind::checkpoint || it->kind == EventKind::console_digest) continue;
    out.push_back(describe_event(*it));
  }
  return out;
}

void fill_changes(ReplayRun& a, ReplayRun& b, InstructionDifference& d) {
  split_changes(diff_states(flat_state(a.machine()), flat_state(b.machine())), d);
  d.ram = diff_ram(a.machine().memory(), b.machine().memory(), 16);
  d.events_a = inputs_at(a.journal(), d.differ_icount);
  d.events_b = inputs_at(b.journal(), d.differ_icount);
}

}  // namespace

std::optional<InstructionDifference> locate_first_difference(const RunFactory& make_a,
                                                             const RunFactory& make_b, u64 lo, u64 hint_hi,
                                                             Disassembler& disassembler) {
  std::unique_ptr<ReplayRun> a = make_a();
  std::unique_ptr<ReplayRun> b = make_b();
  return locate_first_difference(*a, *b, lo, hint_hi, disassembler);
}

std::optional<InstructionDifference> locate_first_difference(ReplayRun& a, ReplayRun& b, u64 lo, u64 hint_hi,
                                                             Disassembler& disassembler) {
  const auto started = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  // Coarse scan: a state hash every `step` instructions finds the stretch;
  // the fine pass then goes back (by the runs' snapshots) and compares every
  // instruction in it. With step ~ sqrt(interval) both passes hash about
  // equally often.
  const u64 span = hint_hi > lo ? hint_hi - lo : u64{1} << 16;
  const u64 step = std::max<u64>(64, static_cast<u64>(std::sqrt(static_cast<double>(span))));

  u64 x = 0;  // states equal here
  u64 y = 0;  // and (probably) differ by here
  double reach_seconds = 0;
  {
    const bool reached = both_to(a, b, lo);
    reach_seconds = seconds();
    if (lo > 0 && !(reached && a.state_hash() == b.state_hash())) {
      // Not equal at the hoped-for start: search from the beginning.
      return locate_first_difference(a, b, 0, hint_hi, disassembler);
    }
    x = lo;
    if (lo == 0 && a.state_hash() != b.state_hash()) {
      InstructionDifference d;
      d.note = "the machines differ at icount 0, before the first instruction ran";
      fill_changes(a, b, d);
      d.seconds = seconds();
      d.reach_seconds = reach_seconds;
      return d;
    }
    for (;;) {
      const u64 t = x + step;
      const bool reached = both_to(a, b, t);
      if (reached && a.state_hash() == b.state_hash()) {
        x = t;
        continue;
      }
      if (!reached && a.finished() && b.finished() && a.icount() == b.icount() && !a.divergence() &&
          !b.divergence() && a.state_hash() == b.state_hash() && a.end()->kind == b.end()->kind &&
          a.end()->status == b.end()->status) {
        return std::nullopt;  // both ended the same way, in the same state
      }
      y = t;
      break;
    }
  }

  // Fine pass over (x, y]: both runs go back to x.
  InstructionDifference d;
  if (!both_to(a, b, x)) {
    d.note = "the runs did not get back to icount " + std::to_string(x) + " (not reproducible): run A " +
             a.describe_finish() + "; run B " + b.describe_finish();
    d.equal_icount = x;
    d.differ_icount = x;
    fill_changes(a, b, d);
    d.seconds = seconds();
    d.reach_seconds = reach_seconds;
    return d;
  }
  for (u64 t = x + 1; t <= y; ++t) {
    const CodeAt code = code_at(a.machine());
    const u64 before = a.icount();
    const bool ra = a.run_to(t);
    const bool rb = b.run_to(t);
    const bool same = ra && rb && a.state_hash() == b.state_hash();
    if (same) continue;
    d.equal_icount = t - 1;
    d.differ_icount = t;
    if (a.icount() > before) {
      d.has_instruction = true;
      d.address = code.address;
      const auto lines = disassembler.disassemble(code.bytes, code.address, code.code32, 1);
      d.disassembly = lines.empty() ? "(bytes not decodable)" : lines[0].text;
    }
    if (!ra || !rb) {
      d.note = "run A " + (ra ? std::string("ran on") : a.describe_finish()) + "; run B " +
               (rb ? std::string("ran on") : b.describe_finish());
      d.differ_icount = std::max(a.icount(), b.icount());
    }
    fill_changes(a, b, d);
    d.seconds = seconds();
    d.reach_seconds = reach_seconds;
    return d;
  }
  // The coarse pass saw a difference the fine pass does not: the runs are
  // not reproducible.
  d.equal_icount = y;
  d.differ_icount = y;
  d.note = "the coarse scan saw the states differ by icount " + std::to_string(y) +
           " but going back over the stretch did not: one of the runs is not reproducible";
  d.seconds = seconds();
  return d;
}

std::string format_difference(const InstructionDifference& d, const std::string& label_a,
                              const std::string& label_b, const std::string& indent) {
  std::string s;
  if (d.differ_icount > d.equal_icount) {
    s += indent + "first difference at icount " + std::to_string(d.differ_icount) +
         " (states equal at icount " + std::to_string(d.equal_icount) + ")\n";
  } else {
    s += indent + "difference at icount " + std::to_string(d.differ_icount) + "\n";
  }
  if (d.has_instruction) {
    s += indent + "last instruction before it: icount " + std::to_string(d.equal_icount) + " at " +
         hex32(d.address) + ": " + d.disassembly + "\n";
  }
  if (!d.note.empty()) s += indent + "note: " + d.note + "\n";
  if (!d.events_a.empty() || !d.events_b.empty()) {
    s += indent + "host inputs at the boundary at icount " + std::to_string(d.differ_icount) + ":\n";
    for (const auto& e : d.events_a) s += indent + "  " + label_a + ": " + e + "\n";
    for (const auto& e : d.events_b) s += indent + "  " + label_b + ": " + e + "\n";
  }
  s += indent + "values shown as " + label_a + " -> " + label_b + "\n";
  if (d.registers.empty() && d.fields.empty() && d.ram.empty())
    s += indent + "(no field differs in the dumps)\n";
  for (const FieldChange& c : d.registers) s += indent + "register " + format_change(c) + "\n";
  for (const FieldChange& c : d.fields) s += indent + "field " + format_change(c) + "\n";
  for (const FieldChange& c : d.ram) s += indent + "memory " + format_change(c) + "\n";
  return s;
}

std::string explain_replay_divergence(const ReplayDivergenceContext& cx) {
  std::string s;
  const std::string lo = cx.last_good_checkpoint ? std::to_string(*cx.last_good_checkpoint) : "0";
  s += "reel: divergence interval: icount " + lo + " .. " + std::to_string(cx.divergence_icount) + " (" +
       (cx.last_good_checkpoint ? "last matching checkpoint at icount " + lo
                                : std::string("no checkpoint matched before")) +
       ")\n";
  const std::string name = cx.name;
  RunFactory clean = [&] { return std::make_unique<ReplayRun>(*cx.journal, name); };

  // A fresh replay tells a deterministic divergence (this build disagrees
  // with the journal every time) from an odd run.
  std::unique_ptr<ReplayRun> rerun = clean();
  // The pause at an instruction count comes after that boundary's journal
  // events, where the diverged run's check failed.
  const bool rerun_reached = rerun->run_to(cx.divergence_icount);
  const bool rerun_diverged_same =
      rerun->divergence() && !cx.perturbation && rerun->icount() == cx.divergence_icount;
  if (rerun_diverged_same) {
    s += "reel: a fresh re-run diverges identically: the divergence is deterministic in this build (was the "
         "journal recorded by a different build, or edited?)\n";
    s += "reel: journal events in the interval:\n";
    const u64 from = cx.last_good_checkpoint.value_or(0);
    size_t shown = 0, total = 0;
    for (const JournalEvent& e : cx.journal->events()) {
      if (e.icount < from || e.icount > cx.divergence_icount) continue;
      ++total;
      if (shown < 40) {
        s += "reel:   " + describe_event(e) + "\n";
        ++shown;
      }
    }
    if (total > shown) s += "reel:   ... and " + std::to_string(total - shown) + " more\n";
    if (total == 0) s += "reel:   (none)\n";
    return s;
  }
  if (rerun->divergence()) {
    s += "reel: a fresh re-run diverges too, but differently: " + rerun->describe_finish() + "\n";
  } else {
    s += "reel: a fresh re-run does not diverge there: the diverged run was the odd one";
    s += cx.perturbation ? " (it was perturbed: " + describe_perturbation(*cx.perturbation) + ")\n" : "\n";
  }
  if (cx.perturbation) {
    // The odd run is reproducible: search it against the clean one, which
    // the re-run already is (it goes back by its snapshots).
    Disassembler disassembler;
    const Perturbation p = *cx.perturbation;
    ReplayRun odd(*cx.journal, name, p);
    const u64 from = std::min(cx.last_good_checkpoint.value_or(0), p.icount > 0 ? p.icount - 1 : 0);
    const std::optional<InstructionDifference> d =
        locate_first_difference(odd, *rerun, from, cx.divergence_icount, disassembler);
    if (d) {
      s += format_difference(*d, "diverged run", "re-run", "reel: ");
      char took[128];
      std::snprintf(took, sizeof took,
                    "reel: (located by re-running in %.2f s, of which %.2f s to reach icount %" PRIu64 ")\n",
                    d->seconds, d->reach_seconds, from);
      s += took;
    } else {
      s += "reel: the two runs never differ in state (the divergence was in output digests only)\n";
    }
    return s;
  }
  // Not reproducible: compare what the diverged machine left with the
  // re-run at the same count.
  if (cx.diverged_machine && rerun_reached) {
    ReplayRun* at = rerun.get();
    {
      InstructionDifference d;
      d.equal_icount = cx.last_good_checkpoint.value_or(0);
      d.differ_icount = cx.divergence_icount;
      d.note =
          "the diverged run cannot be repeated, so the first differing instruction is somewhere in the "
          "interval; fields differing at its end:";
      split_changes(diff_states(flat_state(*cx.diverged_machine), flat_state(at->machine())), d);
      d.ram = diff_ram(cx.diverged_machine->memory(), at->machine().memory(), 16);
      s += format_difference(d, "diverged run", "re-run", "reel: ");
    }
  }
  return s;
}

}  // namespace reel
