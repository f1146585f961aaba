#include "devices/pit.h"

#include "core/port_bus.h"
#include "devices/byte_lanes.h"

namespace reel {

namespace {
constexpr u32 kPortB = 0x21;  // device offset of port 0x61
// The DRAM refresh request toggles port B bit 4 every 15.085 us.
constexpr u64 kRefreshNs = 15085;

u16 to_bcd(u32 v) {
  v %= 10000;
  return static_cast<u16>((v / 1000) << 12 | ((v / 100) % 10) << 8 | ((v / 10) % 10) << 4 | (v % 10));
}
u32 from_bcd(u16 v) {
  return ((v >> 12) & 0xf) * 1000 + ((v >> 8) & 0xf) * 100 + ((v >> 4) & 0xf) * 10 + (v & 0xf);
}
}  // namespace

u64 Pit::ns_to_ticks(u64 ns) {
  return static_cast<u64>(static_cast<unsigned __int128>(ns) * kFrequencyHz / 1000000000u);
}

u64 Pit::ticks_to_ns_ceil(u64 ticks) {
  const unsigned __int128 num = static_cast<unsigned __int128>(ticks) * 1000000000u;
  return static_cast<u64>((num + kFrequencyHz - 1) / kFrequencyHz);
}

Pit::Pit(Scheduler& scheduler, const VirtualClock& clock, IrqLine irq0)
    : Device("pit"), m_scheduler(scheduler), m_clock(clock), m_irq0(irq0) {
  m_timer = m_scheduler.add_timer("pit.irq0", [this] { on_irq0_edge(); });
  reset();
}

void Pit::map_into(PortBus& ports) {
  ports.map(0x40, 4, this, 0);
  ports.map(0x61, 1, this, kPortB);
}

void Pit::reset() {
  for (Channel& c : m_ch) c = Channel{};
  m_ch[2].gate = false;  // port B bit 0 is clear at reset
  m_speaker = false;
  m_port_b_low = 0;
  m_next_edge_tick = 0;
  m_scheduler.cancel(m_timer);
}

u64 Pit::elapsed_ticks(const Channel& c) const {
  if (!c.counting) return 0;
  if (!c.gate || ((c.mode == 1 || c.mode == 5) && !c.triggered)) return c.base_ticks;
  const u64 now = m_clock.now_ns();
  return c.base_ticks + (now > c.start_ns ? ns_to_ticks(now - c.start_ns) : 0);
}

u16 Pit::count_at(const Channel& c, u64 t) const {
  const u64 n = c.reload;
  u64 v = 0;
  switch (c.mode) {
    case 2:
      v = n - (t % n);
      break;
    case 3: {
      const u64 half = n / 2 ? n / 2 : 1;
      v = n - 2 * (t % half);
      break;
    }
    default: {
      // 0, 1, 4, 5 count down once, then keep wrapping through the full
      // range (9999 in BCD).
      const u64 modulus = c.bcd ? 10000 : 0x10000;
      v = (n + modulus - t % modulus) % modulus;
      break;
    }
  }
  if (c.bcd) return to_bcd(static_cast<u32>(v % 10000));
  return static_cast<u16>(v);
}

bool Pit::out_at(const Channel& c, u64 t) const {
  if (!c.counting) return c.mode != 0;
  const u64 n = c.reload;
  switch (c.mode) {
    case 0:
      return t >= n;
    case 1:
      return !c.triggered || t >= n;
    case 2:
      return (t % n) != n - 1;
    case 3:
      return (t % n) < (n + 1) / 2;
    case 4:
      return t != n;
    case 5:
      return !c.triggered || t != n;
    default:
      return true;
  }
}

u16 Pit::count(int channel) const { return count_at(m_ch[channel], elapsed_ticks(m_ch[channel])); }
bool Pit::out(int channel) const {
  const Channel& c = m_ch[channel];
  // A low gate forces OUT high in modes 2 and 3 (the period restarts when
  // it rises again).
  if (!c.gate && (c.mode == 2 || c.mode == 3)) return true;
  return out_at(c, elapsed_ticks(c));
}

void Pit::latch_count(int channel) {
  Channel& c = m_ch[channel];
  if (c.latch_bytes) return;  // a second latch before reading is ignored
  c.latch = count(channel);
  c.latch_bytes = c.rw == 3 ? 2 : 1;
  c.latch_msb_next = c.rw == 2;
}

void Pit::latch_status(int channel) {
  Channel& c = m_ch[channel];
  if (c.status_latched) return;
  c.status = static_cast<u8>((out(channel) ? 0x80 : 0) | (c.null_count ? 0x40 : 0) | (c.rw << 4) |
                             (c.mode << 1) | (c.bcd ? 1 : 0));
  c.status_latched = true;
}

void Pit::write_control(u8 value) {
  const int sel = value >> 6;
  if (sel == 3) {
    // Read-back: bit 5 clear latches counts, bit 4 clear latches status.
    for (int i = 0; i < 3; ++i) {
      if (!(value & (2 << i))) continue;
      if (!(value & 0x20)) latch_count(i);
      if (!(value & 0x10)) latch_status(i);
    }
    return;
  }
  const u8 rw = (value >> 4) & 3;
  if (rw == 0) {
    latch_count(sel);
    return;
  }
  Channel& c = m_ch[sel];
  c.rw = rw;
  c.mode = (value >> 1) & 7;
  if (c.mode > 5) c.mode &= 3;  // 6 and 7 are aliases of 2 and 3
  c.bcd = value & 1;
  c.counting = false;
  c.triggered = false;
  c.null_count = true;
  c.read_msb_next = rw == 2;
  c.write_msb_next = rw == 2;
  c.latch_bytes = 0;
  c.status_latched = false;
  if (sel == 0) schedule_irq0();
}

void Pit::load(int channel, u32 value) {
  Channel& c = m_ch[channel];
  if (c.bcd) value = from_bcd(static_cast<u16>(value));
  if (value == 0) value = c.bcd ? 10000 : 0x10000;
  // Mode 3 with a count of 1 behaves like 2 would be needed; real parts
  // misbehave, keep it counting.
  if (value == 1 && (c.mode == 2 || c.mode == 3)) value = 2;
  c.reload = value;
  c.counting = true;
  c.null_count = false;
  c.start_ns = m_clock.now_ns();
  c.base_ticks = 0;
  if (channel == 0) schedule_irq0();
}

void Pit::write_counter(int channel, u8 value) {
  Channel& c = m_ch[channel];
  switch (c.rw) {
    case 1:
      load(channel, value);
      break;
    case 2:
      load(channel, u32{value} << 8);
      break;
    default:
      if (!c.write_msb_next) {
        c.write_lsb = value;
        c.write_msb_next = true;
        if (c.mode == 0) {
          // Mode 0 stops counting (OUT low) on the first byte of a new count.
          c.counting = false;
          if (channel == 0) schedule_irq0();
        }
      } else {
        c.write_msb_next = false;
        load(channel, u32{c.write_lsb} | u32{value} << 8);
      }
      break;
  }
}

u8 Pit::read_counter(int channel) {
  Channel& c = m_ch[channel];
  if (c.status_latched) {
    c.status_latched = false;
    return c.status;
  }
  if (c.latch_bytes) {
    const u8 v = c.latch_msb_next ? static_cast<u8>(c.latch >> 8) : static_cast<u8>(c.latch);
    c.latch_msb_next = !c.latch_msb_next;
    --c.latch_bytes;
    return v;
  }
  const u16 v = count(channel);
  switch (c.rw) {
    case 1:
      return static_cast<u8>(v);
    case 2:
      return static_cast<u8>(v >> 8);
    default: {
      const u8 b = c.read_msb_next ? static_cast<u8>(v >> 8) : static_cast<u8>(v);
      c.read_msb_next = !c.read_msb_next;
      return b;
    }
  }
}

void Pit::set_gate2(bool gate) {
  Channel& c = m_ch[2];
  if (gate == c.gate) return;
  const u64 now = m_clock.now_ns();
  if (!gate) {
    c.base_ticks = elapsed_ticks(c);
    c.gate = false;
    return;
  }
  c.gate = true;
  if (c.mode == 1 || c.mode == 5 || c.mode == 2 || c.mode == 3) {
    // A rising gate (re)triggers these modes from the full count.
    c.triggered = true;
    c.base_ticks = 0;
  }
  c.start_ns = now;
}

void Pit::schedule_irq0() {
  const Channel& c = m_ch[0];
  m_scheduler.cancel(m_timer);
  if (!c.counting) return;
  const u64 t = elapsed_ticks(c);
  u64 edge = 0;
  switch (c.mode) {
    case 2:
    case 3:
      edge = (t / c.reload + 1) * c.reload;
      break;
    case 0:
      if (t >= c.reload) return;
      edge = c.reload;
      break;
    case 4:
      if (t >= u64{c.reload} + 1) return;
      edge = u64{c.reload} + 1;
      break;
    default:
      return;  // modes 1 and 5 need a gate edge; channel 0's gate is tied high
  }
  m_next_edge_tick = edge;
  m_scheduler.arm(m_timer, c.start_ns + ticks_to_ns_ceil(edge - c.base_ticks));
}

void Pit::on_irq0_edge() {
  const Channel& c = m_ch[0];
  if (!c.counting) return;
  // IRQ0 is edge triggered: the rising OUT edge is what the PIC latches.
  m_irq0.raise();
  m_irq0.lower();
  if (c.counting && (c.mode == 2 || c.mode == 3)) {
    m_next_edge_tick += c.reload;
    m_scheduler.arm(m_timer, c.start_ns + ticks_to_ns_ceil(m_next_edge_tick - c.base_ticks));
  }
}

u8 Pit::read_byte(u32 offset) {
  if (offset < 3) return read_counter(static_cast<int>(offset));
  if (offset == 3) return 0xff;  // the control register is write-only
  if (offset == kPortB) {
    const bool refresh = (m_clock.now_ns() / kRefreshNs) & 1;
    return static_cast<u8>((m_ch[2].gate ? 0x01 : 0) | (m_speaker ? 0x02 : 0) | m_port_b_low |
                           (refresh ? 0x10 : 0) | (out(2) ? 0x20 : 0));
  }
  return 0xff;
}

void Pit::write_byte(u32 offset, u8 v) {
  if (offset < 3) {
    write_counter(static_cast<int>(offset), v);
  } else if (offset == 3) {
    write_control(v);
  } else if (offset == kPortB) {
    m_speaker = v & 0x02;
    // Bits 2 and 3 (parity and channel-check enables) read back; nothing
    // here ever raises those NMIs.
    m_port_b_low = v & 0x0c;
    set_gate2(v & 0x01);
  }
}

u32 Pit::read(u32 offset, unsigned size) {
  return read_byte_lanes(offset, size, [this](u32 o) { return read_byte(o); });
}

void Pit::write(u32 offset, unsigned size, u32 value) {
  write_byte_lanes(offset, size, value, [this](u32 o, u8 v) { write_byte(o, v); });
}

}  // namespace reel
