#pragma once

// The x86 CPU: an interpreter for the 486's integer instruction set in real
// and 32-bit protected mode with two-level paging (4 KiB pages, and 4 MiB
// pages under CR4.PSE); no x87: a 486SX without a coprocessor. Straight-line code is decoded once into
// compact records (handler + operands + length) cached per guest physical page and thrown away when the guest
// writes to that page (core/cpu/cpu_block.cc); anything the record decoder does not know runs through the
// general decoder in core/cpu/cpu_exec.cc, which decodes from guest memory each time.

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/interrupts.h"
#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

class GuestMemory;
class PortBus;
class MmioBus;
class VirtualClock;

enum class SegReg : u8 { es = 0, cs = 1, ss = 2, ds = 3, fs = 4, gs = 5 };
enum Gpr : u8 { kEax = 0, kEcx, kEdx, kEbx, kEsp, kEbp, kEsi, kEdi };

// A segment register with its hidden descriptor cache.
struct SegmentCache {
  u16 selector = 0;
  u32 base = 0;
  u32 limit = 0xffff;  // byte granular, already scaled by G
  u16 attrs = 0;       // descriptor bits 40..55: type, S, DPL, P, AVL, L, D/B, G
  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(selector), REEL_FIELD(base), REEL_FIELD(limit), REEL_FIELD(attrs));
  }
};

struct DescriptorTableReg {
  u32 base = 0;
  u16 limit = 0xffff;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(base), REEL_FIELD(limit));
  }
};

// Architectural state as a debugger or a state dump sees it. EFLAGS here is
// always materialised.
struct CpuRegisters {
  u32 gpr[8] = {};
  u32 eip = 0;
  u32 eflags = 2;
  SegmentCache seg[6];
  DescriptorTableReg gdtr, idtr;
  SegmentCache ldtr, tr;
  u32 cr0 = 0x10, cr2 = 0, cr3 = 0, cr4 = 0;
  u32 dr[8] = {0, 0, 0, 0, 0, 0, 0xffff0ff0, 0x400};
};

enum class CpuStop : u8 {
  budget,          // the instruction budget ran out
  halted,          // HLT (or still halted and no interrupt became pending)
  exit_requested,  // a device called request_exit() during the last instruction
  shutdown,        // triple fault
};

class Cpu : public IntrListener {
 public:
  Cpu(GuestMemory& memory, PortBus& ports, MmioBus& mmio, VirtualClock& clock);
  ~Cpu() override;

  void set_interrupt_controller(InterruptController* pic) { m_pic = pic; }

  // Power-on state: real mode, CS:IP = F000:FFF0.
  void reset();
  // The state a multiboot loader leaves: CR0.PE=1, flat 4 GiB 32-bit code
  // and data segments (selectors 0x08 / 0x10), EFLAGS=2, EIP=eip.
  void enter_flat_protected_mode(u32 eip);

  // Runs until `budget` instructions have retired (each REP iteration counts
  // as one and a REP may stop between iterations), HLT, an exit request or
  // a triple fault. Increments clock.icount_ref() after every retired
  // instruction; a device called during an instruction sees the count of
  // instructions retired before it. Checks for interrupts before the first
  // instruction and whenever IF or the INTR line changes.
  CpuStop run(u64 budget);

  bool halted() const;
  // True when an interrupt would be taken now: IF=1, no interrupt shadow
  // pending, and the controller reports INTR.
  bool interrupt_ready() const;
  // Called by a device during I/O: stop after the current instruction.
  void request_exit() {
    m_exit_requested = true;
    m_attention |= kAttentionStop;
  }
  // A snapshot restore (Machine::restore_runtime) undoes an ended run's request.
  void cancel_exit_request() { m_exit_requested = false; }
  // IntrListener: the PIC's INTR output changed.
  void intr_changed() override;

  // Architectural registers (flags materialised on read; writing them is
  // used by loaders, tests and the gdb stub).
  CpuRegisters registers() const;
  void set_registers(const CpuRegisters& regs);

  // Debugger support (harness/gdb_stub.cc). While a debugger has
  // breakpoints, watchpoints or a break request, run() takes a separate loop
  // that runs one instruction at a time and checks EIP before each; the
  // normal loop pays one test per run() call. Watchpoints are on linear
  // addresses; the physical pages they map to carry kDebugWatchPage in the
  // page flags, which sends their accesses off the memory fast paths, so
  // watchpoints cost nothing on other pages (and the flags follow the
  // guest's page tables: see flag_watched_pages). None of this is machine
  // state: it never changes what the guest computes.
  enum class DebugStopKind : u8 { none, breakpoint, watch_write, watch_read, watch_access, break_request };
  struct DebugStop {
    DebugStopKind kind = DebugStopKind::none;
    u32 address = 0;  // linear: the breakpoint, or the watched address hit
  };
  struct Watchpoint {
    u32 address = 0;  // linear
    u32 length = 1;
    DebugStopKind kind = DebugStopKind::watch_write;  // watch_write | watch_read | watch_access
  };
  // Page flag bit owned by the CPU (GuestMemory keeps unknown bits).
  static constexpr u8 kDebugWatchPage = 0x80;
  void set_breakpoints(std::vector<u32> linear);
  void set_watchpoints(std::vector<Watchpoint> watchpoints);
  // Stop before the next instruction (gdb's Ctrl-C).
  void request_debug_break() {
    m_debug_break = true;
    m_debug = true;
    m_attention |= kAttentionStop;
  }
  void clear_debug_break() {
    m_debug_break = false;
    update_debug_mode();
  }
  // The next run() does not stop on a breakpoint at the current EIP: the
  // debugger resumes from it.
  void debug_resume() { m_debug_skip = true; }
  // Why run() stopped early (kind none: it did not); clears it.
  DebugStop take_debug_stop() {
    const DebugStop s = m_debug_stop;
    m_debug_stop = {};
    return s;
  }
  bool debug_stopped() const { return m_debug_stop.kind != DebugStopKind::none; }

  // Linear -> physical as the guest's page tables say, for debuggers and
  // monitors: no TLB fill, no accessed bits, no fault. False when the page
  // is not mapped. The identity with paging off.
  bool debug_translate(u32 linear, u32& physical) const;

  // Called when the CPU decodes a new block (for -d in_asm): linear address
  // of the first instruction, its bytes, and whether code is 32-bit.
  using BlockHook = std::function<void(u32 linear, std::span<const u8> bytes, bool code32)>;
  void set_block_hook(BlockHook hook);

  // Serialize architectural state (not caches) with named fields.
  template <class Archive>
  void serialize(Archive& ar) {
    materialize_flags();
    ar(cereal::make_nvp("eax", m_gpr[0]), cereal::make_nvp("ecx", m_gpr[1]),
       cereal::make_nvp("edx", m_gpr[2]), cereal::make_nvp("ebx", m_gpr[3]),
       cereal::make_nvp("esp", m_gpr[4]), cereal::make_nvp("ebp", m_gpr[5]),
       cereal::make_nvp("esi", m_gpr[6]), cereal::make_nvp("edi", m_gpr[7]), REEL_FIELD(m_eip),
       REEL_FIELD(m_eflags));
    ar(cereal::make_nvp("es", m_seg[0]), cereal::make_nvp("cs", m_seg[1]), cereal::make_nvp("ss", m_seg[2]),
       cereal::make_nvp("ds", m_seg[3]), cereal::make_nvp("fs", m_seg[4]), cereal::make_nvp("gs", m_seg[5]));
    ar(REEL_FIELD(m_gdtr), REEL_FIELD(m_idtr), REEL_FIELD(m_ldtr), REEL_FIELD(m_tr), REEL_FIELD(m_cr0),
       REEL_FIELD(m_cr2), REEL_FIELD(m_cr3), REEL_FIELD(m_cr4), cereal::make_nvp("dr", m_dr),
       REEL_FIELD(m_cpl), REEL_FIELD(m_halted), REEL_FIELD(m_inhibit), REEL_FIELD(m_intr_line),
       REEL_FIELD(m_exceptions));
    if constexpr (Archive::is_loading::value) paging_changed();
  }

  // Guest exceptions delivered, by vector (statistics, part of state).
  const std::array<u64, 32>& exceptions() const { return m_exceptions; }

 private:
  friend class CpuExecutor;  // core/cpu/cpu_exec.cc: decode and execute
  friend struct CpuOps;      // core/cpu/cpu_ops.h: helpers shared with the block handlers
  friend struct BlockOps;    // core/cpu/cpu_block.cc: decoded-record handlers

  // One decoded instruction. Handlers get the record and leave m_eip on the
  // next instruction. Memory operands are base + (index << scale) + disp,
  // with register 8 reading as zero (m_gpr[8]).
  struct DecodedInsn;
  using InsnHandler = void (*)(Cpu&, const DecodedInsn&);
  struct DecodedInsn {
    InsnHandler fn = nullptr;
    u32 disp = 0;
    u32 imm = 0;
    u8 len = 0;
    u8 reg = 0;   // ModRM reg field (or the register coded in the opcode)
    u8 rm = 0;    // ModRM r/m register when mod == 3
    u8 base = 8;  // memory operand registers; 8 = none
    u8 index = 8;
    u8 scale = 0;
    u8 seg = 3;           // segment of the memory operand
    u8 op = 0;            // ALU operation, condition code or shift kind
    bool addr16 = false;  // 16-bit addressing: the offset wraps at 64 KiB
  };
  // A run of straight-line code inside one physical page. The last record
  // may be a control transfer or an instruction the general decoder runs.
  static constexpr unsigned kMaxBlockInsns = 32;
  // Linux's hot kernel and user code spans several thousand blocks; with
  // 2048 slots conflict misses re-decoded blocks for ~10% of a boot.
  static constexpr unsigned kBlockSlotBits = 14;
  static constexpr unsigned kBlockSlots = 1u << kBlockSlotBits;
  // Small chunks: a short run touches few slots, scattered by the hash;
  // a chunk (1.25 KiB) is made when one of its slots is first used.
  static constexpr unsigned kBlockChunkBits = 5;
  static constexpr unsigned kBlockChunkSlots = 1u << kBlockChunkBits;
  // Block headers are kept apart from their records so that the lookup
  // only touches a small dense table.
  struct DecodedBlock {
    u32 phys = ~0u;  // physical address of the first instruction
    u32 gen = 0;     // m_page_gen of its page when decoded
    u32 bytes = 0;   // bytes covered, for the CS limit check
    u16 count = 0;
    u16 capacity = 0;  // records allocated in storage
    bool code32 = false;
    DecodedInsn* insns = nullptr;  // `count` records
    // Sized to the block (grown when a re-decode needs more), so memory
    // follows the code actually run, not slots x kMaxBlockInsns.
    std::unique_ptr<DecodedInsn[]> storage;
  };
  struct Fault {
    u8 vector;
    bool has_error;
    u32 error;
  };

  // Flags are computed lazily from the last arithmetic result.
  enum class LazyOp : u8 { none, add, adc, sub, sbb, logic, inc, dec, shl, shr, sar };
  void materialize_flags() const;
  u32 flags() const {
    if (m_lazy_op != LazyOp::none) materialize_flags();
    return m_eflags;
  }
  void set_lazy(LazyOp op, unsigned size, u32 a, u32 b, u32 res) {
    m_lazy_op = op;
    m_lazy_size = static_cast<u8>(size);
    m_lazy_a = a;
    m_lazy_b = b;
    m_lazy_res = res;
  }
  void write_flags(u32 value, u32 mask);

  // Memory and segments.
  [[noreturn]] void fault(u8 vector, u32 error = 0, bool has_error = true);
  [[noreturn]] void fault_noerr(u8 vector) { fault(vector, 0, false); }
  u32 seg_linear(int seg, u32 offset, unsigned size, bool write);
  // `lin` is the linear address `addr` was translated from, which a
  // watched page's accesses are checked at (debug_access).
  u32 read_phys(u32 addr, unsigned size, u32 lin);
  void write_phys(u32 addr, unsigned size, u32 value, u32 lin);
  // The one linear -> physical translation: every access (fetch, data,
  // descriptor tables, stack) goes through it. With paging off it is the
  // identity; with paging on a hit in the software TLB costs one compare,
  // a miss walks the page tables (walk_pages). `user` is a CPL 3 access;
  // the CPU's own accesses to descriptor tables, the IDT and the TSS are
  // supervisor accesses whatever the CPL (read_sys / write_sys).
  [[gnu::always_inline]] u32 translate(u32 lin, bool write) { return translate_as(lin, write, m_cpl == 3); }
  [[gnu::always_inline]] u32 translate_as(u32 lin, bool write, bool user) {
    if (!m_paging) return lin;
    const TlbEntry& e = m_tlb[(user ? kTlbSize : 0) + ((lin >> 12) & (kTlbSize - 1))];
    if ((write ? e.write_tag : e.read_tag) == (lin & ~0xfffu)) return e.phys | (lin & 0xfffu);
    return walk_pages(lin, write, user);
  }
  u32 walk_pages(u32 lin, bool write, bool user);
  u32 read_lin(u32 lin, unsigned size) { return read_lin_as(lin, size, m_cpl == 3); }
  void write_lin(u32 lin, unsigned size, u32 value) { write_lin_as(lin, size, value, m_cpl == 3); }
  u32 read_sys(u32 lin, unsigned size) { return read_lin_as(lin, size, false); }
  void write_sys(u32 lin, unsigned size, u32 value) { write_lin_as(lin, size, value, false); }
  u32 read_lin_as(u32 lin, unsigned size, bool user);
  void write_lin_as(u32 lin, unsigned size, u32 value, bool user);
  // Called whenever CR0, CR3 or CR4 change (and on reset and state loads).
  void paging_changed();
  void tlb_flush();
  void tlb_flush_page(u32 lin);
  u32 read_mem(int seg, u32 off, unsigned size) { return read_lin(seg_linear(seg, off, size, false), size); }
  void write_mem(int seg, u32 off, unsigned size, u32 value) {
    write_lin(seg_linear(seg, off, size, true), size, value);
  }
  u64 read_descriptor(u16 selector, bool ext_error = false);
  void write_descriptor_accessed(u16 selector, u64 desc);
  void load_segment(int seg, u16 selector);
  void load_segment_real(int seg, u16 selector);
  void set_seg_from_desc(int seg, u16 selector, u64 desc);
  bool protected_mode() const { return m_cr0 & 1; }
  bool v86() const { return false; }

  // Stack.
  bool stack32() const { return m_seg[2].attrs & 0x4000; }
  void push(u32 value, unsigned size);
  u32 pop(unsigned size);

  // Interrupts and exceptions.
  void deliver(u8 vector, bool software, bool has_error, u32 error, u32 return_eip);
  void deliver_fault(const Fault& f);
  void far_jump(u16 selector, u32 offset, bool call, unsigned op_size, u32 return_eip);
  void far_return(unsigned op_size, u16 pop_extra);
  void iret(unsigned op_size);
  void check_io(u16 port, unsigned size);

  void step();
  void note_block(u32 start, u32 end, bool ends_block);
  // Decoded-block cache (core/cpu/cpu_block.cc).
  const DecodedBlock* find_block(u32 phys, bool code32);
  void decode_block(DecodedBlock& b, u32 phys, bool code32);
  void on_code_write(u32 page);
  // Runs up to `limit` instructions of the block at CS:EIP (or one through
  // the general decoder). Returns false on a triple fault.
  bool execute(u64 limit);
  bool handle_fault(const Fault& f);

  GuestMemory& m_memory;
  PortBus& m_ports;
  MmioBus& m_mmio;
  VirtualClock& m_clock;
  InterruptController* m_pic = nullptr;
  bool m_exit_requested = false;
  // Why the block loop must leave the current block after this instruction:
  // kAttentionStop (back to run(): an exit request, an INTR change, a write
  // to a page holding decoded code, anything run by the general decoder) or
  // kAttentionBranch (a taken conditional jump in the middle of a block).
  static constexpr u8 kAttentionStop = 1, kAttentionBranch = 2;
  u8 m_attention = 0;
  // Instruction count at which the running block must stop; a REP handler
  // runs iterations up to it.
  u64 m_exec_end = 0;

  u32 m_gpr[9] = {};  // [8] is always zero: the "no register" of address records
  u32 m_eip = 0;
  mutable u32 m_eflags = 2;
  mutable LazyOp m_lazy_op = LazyOp::none;
  u8 m_lazy_size = 4;
  u32 m_lazy_a = 0, m_lazy_b = 0, m_lazy_res = 0;
  bool m_lazy_cf = false;  // carry kept across INC/DEC
  SegmentCache m_seg[6];
  DescriptorTableReg m_gdtr, m_idtr;
  SegmentCache m_ldtr, m_tr;
  u32 m_cr0 = 0x10, m_cr2 = 0, m_cr3 = 0, m_cr4 = 0;
  std::array<u32, 8> m_dr{0, 0, 0, 0, 0xffff0ff0, 0x400, 0xffff0ff0, 0x400};
  u8 m_cpl = 0;
  bool m_halted = false;
  bool m_inhibit = false;
  bool m_intr_line = false;
  std::array<u64, 32> m_exceptions{};

  u32 m_insn_start = 0;   // EIP of the instruction being executed
  int m_delivering = -1;  // vector being delivered, for double-fault rules

  // Paging. The TLB is a cache that never changes what the guest sees: an
  // entry is dropped not only when the architecture requires (MOV CR3,
  // INVLPG, CR0/CR4 changes) but also when anything writes a page its
  // translation was read from (such pages carry GuestMemory::kPageTable).
  // x86 allows a TLB to drop entries at any time, and a coherent TLB keeps
  // it out of the machine state: a snapshot restored into a fresh machine
  // (empty TLB) continues exactly as the original run did. An entry holds
  // the page's physical address and two tags: the linear page when reads
  // (resp. writes) are allowed without a walk, or 1, which never matches.
  // A write tag is only set once the PTE's dirty bit is, so the first
  // write still walks and sets it. Supervisor and user accesses have
  // separate halves, so a CPL change needs no flush.
  struct TlbEntry {
    u32 read_tag = 1;
    u32 write_tag = 1;
    u32 phys = 0;
  };
  static constexpr unsigned kTlbSize = 512;
  bool m_paging = false;  // CR0.PG (PG requires PE)
  std::array<TlbEntry, 2 * kTlbSize> m_tlb{};
  std::vector<u32> m_page_table_pages;  // pages flagged kPageTable, for clearing on flush

  // Host views of RAM, cached because every access uses them.
  u8* m_ram = nullptr;
  u8* m_page_flags = nullptr;
  u32 m_ram_size = 0;
  std::vector<u32> m_page_gen;  // bumped when a page holding decoded code is written
  // Direct-mapped by physical address, in chunks of kBlockChunkSlots slots.
  std::array<std::unique_ptr<DecodedBlock[]>, kBlockSlots / kBlockChunkSlots> m_block_chunks;

  // Debugger state (not serialized: see set_breakpoints).
  CpuStop run_debug(u64 budget);
  bool take_interrupt(bool& inhibited);
  [[gnu::cold, gnu::noinline]] void debug_access(u32 lin, unsigned size, bool write);
  // The slow path of a write to a page with flags: GuestMemory::note_write.
  // (Watched pages never take the fast paths that call it directly;
  // write_phys checks their watchpoints first.)
  [[gnu::noinline]] void note_flagged_write(u32 phys, unsigned size);
  // Puts kDebugWatchPage on the physical pages the watched linear pages map
  // to now (see cpu.cc); tlb_flush marks them stale, run_debug refreshes.
  void flag_watched_pages();
  // debug_translate, also giving the pages of the directory and table
  // entries it read (~0u where none).
  bool debug_walk(u32 lin, u32& phys, u32 (&tables)[2]) const;
  void update_debug_mode() { m_debug = m_debug_break || !m_breakpoints.empty() || !m_watchpoints.empty(); }
  bool m_debug = false;
  bool m_debug_break = false;
  bool m_debug_skip = false;
  DebugStop m_debug_stop;
  std::vector<u32> m_breakpoints;  // sorted linear addresses
  std::vector<Watchpoint> m_watchpoints;
  std::vector<u32> m_watched_pages;  // physical pages flagged kDebugWatchPage
  bool m_watch_flags_stale = false;  // a translation may have changed since flag_watched_pages

  BlockHook m_block_hook;
  u32 m_block_start = 0;
  bool m_block_open = false;
  std::vector<u8> m_block_bytes;
  std::vector<u32> m_logged_blocks;  // sorted
};

}  // namespace reel
