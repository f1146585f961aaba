#include "devices/cmos_rtc.h"

#include "core/port_bus.h"
#include "devices/byte_lanes.h"

namespace reel {

namespace {
constexpr u8 kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c, kRegD = 0x0d;
constexpr u8 kBSet = 0x80, kBPie = 0x40, kBAie = 0x20, kBUie = 0x10, kBSqwe = 0x08, kBBinary = 0x04,
             kB24h = 0x02;
constexpr u64 kTimeBaseHz = 32768;
constexpr u8 kCIrqf = 0x80, kCPf = 0x40, kCAf = 0x20, kCUf = 0x10;
constexpr u64 kSecondNs = 1000000000ull;
// The update cycle takes 1984 us; UIP rises 244 us before it.
constexpr u64 kUipNs = 244000;

i64 floor_div(i64 a, i64 b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
}  // namespace

CmosRtc::Civil CmosRtc::civil_from_seconds(i64 seconds) {
  const i64 days = floor_div(seconds, 86400);
  const i64 rem = seconds - days * 86400;
  // Civil date from days since 1970-01-01 (proleptic Gregorian).
  const i64 z = days + 719468;
  const i64 era = floor_div(z, 146097);
  const i64 doe = z - era * 146097;
  const i64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const i64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const i64 mp = (5 * doy + 2) / 153;
  const i64 d = doy - (153 * mp + 2) / 5 + 1;
  const i64 m = mp < 10 ? mp + 3 : mp - 9;
  const i64 y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  Civil c;
  c.year = static_cast<int>(y);
  c.month = static_cast<int>(m);
  c.day = static_cast<int>(d);
  c.hour = static_cast<int>(rem / 3600);
  c.minute = static_cast<int>(rem / 60 % 60);
  c.second = static_cast<int>(rem % 60);
  c.weekday = static_cast<int>(floor_div(days + 4, 7) * -7 + days + 4) + 1;  // 1970-01-01 was a Thursday
  return c;
}

i64 CmosRtc::seconds_from_civil(const Civil& c) {
  const i64 y = c.year - (c.month <= 2 ? 1 : 0);
  const i64 era = floor_div(y, 400);
  const i64 yoe = y - era * 400;
  const i64 mp = c.month > 2 ? c.month - 3 : c.month + 9;
  const i64 doy = (153 * mp + 2) / 5 + c.day - 1;
  const i64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const i64 days = era * 146097 + doe - 719468;
  return days * 86400 + c.hour * 3600 + c.minute * 60 + c.second;
}

CmosRtc::CmosRtc(Scheduler& scheduler, const VirtualClock& clock, HostIO& host, IrqLine irq8, u32 ram_bytes,
                 std::optional<i64> base_ns)
    : Device("rtc"),
      m_scheduler(scheduler),
      m_clock(clock),
      m_host(host),
      m_irq(irq8),
      m_ram_bytes(ram_bytes),
      m_fixed_base_ns(base_ns) {
  m_periodic_timer = m_scheduler.add_timer("rtc.periodic", [this] { on_periodic(); });
  m_second_timer = m_scheduler.add_timer("rtc.second", [this] { on_second(); });
  power_on();
  reset();
}

void CmosRtc::power_on() {
  m_cmos.fill(0);
  m_cmos[kRegA] = 0x26;  // 32.768 kHz time base, 1024 Hz periodic rate
  m_cmos[kRegB] = kB24h;
  m_cmos[kRegD] = 0x80;  // battery good
  fill_memory_sizes();
  m_frozen = false;
  // The host's date is read once, here, through HostIO (so it is journaled
  // and replayed); from now on the clock runs on virtual time only, across
  // guest reboots too, as a battery-backed RTC does.
  const i64 base_ns = m_fixed_base_ns ? *m_fixed_base_ns : m_host.host_time_ns();
  m_base_seconds = floor_div(base_ns, static_cast<i64>(kSecondNs));
  // Keep the host's sub-second phase so the first update comes when the
  // host's clock ticks over.
  const u64 phase = static_cast<u64>(base_ns - m_base_seconds * static_cast<i64>(kSecondNs));
  const u64 now = m_clock.now_ns();
  m_base_ns = now >= phase ? now - phase : 0;
}

void CmosRtc::map_into(PortBus& ports) { ports.map(0x70, 2, this); }

void CmosRtc::fill_memory_sizes() {
  // As on QEMU's pc machine, RAM beyond 3.5 GiB is placed above 4 GiB.
  const u64 ram = m_ram_bytes;
  const u64 low = ram < 0xe0000000ull ? ram : 0xe0000000ull;
  const u64 above_4g = (ram - low) / 65536;
  const u64 kib_above_1m = low > (1u << 20) ? (low - (1u << 20)) / 1024 : 0;
  const u64 ext = kib_above_1m > 0xffff ? 0xffff : kib_above_1m;
  const u64 above_16m = low > (16u << 20) ? (low - (16u << 20)) / 65536 : 0;
  const u64 high = above_16m > 0xffff ? 0xffff : above_16m;
  m_cmos[0x5b] = static_cast<u8>(above_4g);
  m_cmos[0x5c] = static_cast<u8>(above_4g >> 8);
  m_cmos[0x5d] = static_cast<u8>(above_4g >> 16);
  m_cmos[0x15] = 0x80;  // 640 KiB base memory
  m_cmos[0x16] = 0x02;
  m_cmos[0x17] = m_cmos[0x30] = static_cast<u8>(ext);
  m_cmos[0x18] = m_cmos[0x31] = static_cast<u8>(ext >> 8);
  m_cmos[0x34] = static_cast<u8>(high);
  m_cmos[0x35] = static_cast<u8>(high >> 8);
  // Equipment byte as QEMU's PC leaves it: PS/2 pointing device present,
  // no floppies; bit 1 (coprocessor) stays clear because reel's CPU is a
  // 486SX without an FPU.
  m_cmos[0x14] = 0x04;
  u16 sum = 0;
  for (int i = 0x10; i <= 0x2d; ++i) sum = static_cast<u16>(sum + m_cmos[i]);
  m_cmos[0x2e] = static_cast<u8>(sum >> 8);
  m_cmos[0x2f] = static_cast<u8>(sum);
}

void CmosRtc::reset() {
  // The RESET pin: interrupt enables and flags clear; time, date and CMOS
  // memory are battery backed and survive.
  m_cmos[kRegB] &= static_cast<u8>(~(kBPie | kBAie | kBUie | kBSqwe));
  m_cmos[kRegC] = 0;
  m_index = 0;
  m_nmi_masked = true;
  m_irq_level = false;
  m_irq.lower();
  schedule();
}

i64 CmosRtc::since_base_ns() const {
  // m_base_ns may lie in the future (up to half a second after the divider
  // leaves reset): the u64 difference read as two's complement is signed.
  return static_cast<i64>(m_clock.now_ns() - m_base_ns);
}

u64 CmosRtc::phase_ns() const {
  const i64 since = since_base_ns();
  const i64 second = static_cast<i64>(kSecondNs);
  return static_cast<u64>(since - floor_div(since, second) * second);
}

i64 CmosRtc::current_seconds() const {
  if (m_frozen) return m_frozen_seconds;
  return m_base_seconds + floor_div(since_base_ns(), static_cast<i64>(kSecondNs));
}

void CmosRtc::set_base(i64 seconds) {
  // Keep the sub-second phase: the next update still comes a whole second
  // after the previous one.
  const u64 now = m_clock.now_ns();
  const u64 phase = phase_ns();
  m_base_seconds = seconds;
  m_base_ns = now - phase;
}

void CmosRtc::freeze() {
  if (m_frozen) return;
  m_frozen_seconds = current_seconds();
  m_frozen = true;
}

u8 CmosRtc::encode(int value) const {
  if (m_cmos[kRegB] & kBBinary) return static_cast<u8>(value);
  return static_cast<u8>((value / 10) << 4 | (value % 10));
}

int CmosRtc::decode(u8 value) const {
  if (m_cmos[kRegB] & kBBinary) return value;
  return (value >> 4) * 10 + (value & 0x0f);
}

u8 CmosRtc::read_time_register(u8 index) const {
  const Civil c = civil_from_seconds(current_seconds());
  switch (index) {
    case 0:
      return encode(c.second);
    case 2:
      return encode(c.minute);
    case 4: {
      if (m_cmos[kRegB] & kB24h) return encode(c.hour);
      const int h12 = c.hour % 12 == 0 ? 12 : c.hour % 12;
      return static_cast<u8>(encode(h12) | (c.hour >= 12 ? 0x80 : 0));
    }
    case 6:
      return encode(c.weekday);
    case 7:
      return encode(c.day);
    case 8:
      return encode(c.month);
    case 9:
      return encode(c.year % 100);
    case 0x32:
      return encode(c.year / 100);
    default:
      return m_cmos[index];
  }
}

void CmosRtc::write_time_register(u8 index, u8 value) {
  Civil c = civil_from_seconds(current_seconds());
  switch (index) {
    case 0:
      c.second = decode(value) % 60;
      break;
    case 2:
      c.minute = decode(value) % 60;
      break;
    case 4:
      if (m_cmos[kRegB] & kB24h) {
        c.hour = decode(value) % 24;
      } else {
        c.hour = decode(value & 0x7f) % 12 + ((value & 0x80) ? 12 : 0);
      }
      break;
    case 7:
      c.day = decode(value);
      break;
    case 8:
      c.month = decode(value);
      break;
    case 9:
      c.year = c.year / 100 * 100 + decode(value) % 100;
      break;
    case 0x32:
      c.year = decode(value) * 100 + c.year % 100;
      break;
    default:
      return;  // the weekday register follows the date
  }
  if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > 31) return;  // ignore nonsense dates
  const i64 s = seconds_from_civil(c);
  if (m_frozen) {
    m_frozen_seconds = s;
  } else {
    set_base(s);
  }
}

void CmosRtc::raise(u8 flag) {
  m_cmos[kRegC] |= flag;
  const u8 enabled = (m_cmos[kRegB] & (kBPie | kBAie | kBUie)) & (kCPf | kCAf | kCUf);
  if (m_cmos[kRegC] & enabled) {
    m_cmos[kRegC] |= kCIrqf;
    if (!m_irq_level) {
      m_irq_level = true;
      m_irq.raise();
    }
  }
}

void CmosRtc::schedule() {
  const u64 now = m_clock.now_ns();
  const u8 rate = m_cmos[kRegA] & 0x0f;
  const bool divider_running = ((m_cmos[kRegA] >> 4) & 7) == 2;
  m_scheduler.cancel(m_periodic_timer);
  if ((m_cmos[kRegB] & kBPie) && rate && divider_running) {
    const unsigned shift = rate <= 2 ? rate + 7 : rate - 1;  // rates 1 and 2 act like 8 and 9
    // Count in 32.768 kHz time-base ticks so that rates whose period is
    // not a whole number of ns (976.5625 us at 1024 Hz) do not drift.
    const u64 period = u64{1} << shift;
    const u64 tick = static_cast<u64>(static_cast<unsigned __int128>(now) * kTimeBaseHz / kSecondNs);
    const u64 next = (tick / period + 1) * period;
    const unsigned __int128 num = static_cast<unsigned __int128>(next) * kSecondNs;
    m_scheduler.arm(m_periodic_timer, static_cast<u64>((num + kTimeBaseHz - 1) / kTimeBaseHz));
  }
  m_scheduler.cancel(m_second_timer);
  if ((m_cmos[kRegB] & (kBAie | kBUie)) && !m_frozen && divider_running) {
    m_scheduler.arm(m_second_timer, now - phase_ns() + kSecondNs);
  }
}

void CmosRtc::on_periodic() {
  raise(kCPf);
  schedule();
}

void CmosRtc::on_second() {
  const Civil c = civil_from_seconds(current_seconds());
  u8 flags = kCUf;
  auto match = [this](u8 alarm, int value) { return (alarm & 0xc0) == 0xc0 || decode(alarm) == value; };
  // The hour alarm compares the register as the guest encodes it, so the
  // PM bit counts in 12-hour mode.
  if (match(m_cmos[1], c.second) && match(m_cmos[3], c.minute) &&
      ((m_cmos[5] & 0xc0) == 0xc0 || m_cmos[5] == read_time_register(4))) {
    flags |= kCAf;
  }
  raise(flags);
  schedule();
}

u8 CmosRtc::read_byte(u32 offset) {
  if (offset == 0) return 0xff;  // the index register is write-only
  const u8 index = m_index;
  switch (index) {
    case 0:
    case 2:
    case 4:
    case 6:
    case 7:
    case 8:
    case 9:
    case 0x32:
      return read_time_register(index);
    case kRegA: {
      u8 v = m_cmos[kRegA] & 0x7f;
      if (!m_frozen && phase_ns() >= kSecondNs - kUipNs) v |= 0x80;
      return v;
    }
    case kRegC: {
      const u8 v = m_cmos[kRegC];
      m_cmos[kRegC] = 0;
      if (m_irq_level) {
        m_irq_level = false;
        m_irq.lower();
      }
      return v;
    }
    default:
      return m_cmos[index];
  }
}

void CmosRtc::write_byte(u32 offset, u8 v) {
  if (offset == 0) {
    m_index = v & 0x7f;
    m_nmi_masked = v & 0x80;
    return;
  }
  switch (m_index) {
    case 0:
    case 2:
    case 4:
    case 7:
    case 8:
    case 9:
    case 0x32:
      write_time_register(m_index, v);
      return;
    case 1:
    case 3:
    case 5:
      m_cmos[m_index] = v;
      return;
    case 6:
      return;
    case kRegA: {
      const bool was_held = divider_held();
      m_cmos[kRegA] = v & 0x7f;  // UIP is read-only
      if (!was_held && divider_held()) {
        freeze();
      } else if (was_held && !divider_held()) {
        // The first update comes half a second after the divider chain
        // leaves reset, whatever the phase was before. Linux counts on it:
        // rtc-cmos writes second S at system time S + 0.5
        // (set_offset_nsec = NSEC_PER_SEC / 2), holding the divider in
        // reset around the write (mc146818_set_time).
        m_base_seconds = m_frozen_seconds;
        m_base_ns = m_clock.now_ns() - kSecondNs / 2;
        if (!(m_cmos[kRegB] & kBSet)) m_frozen = false;
      }
      schedule();
      return;
    }
    case kRegB: {
      const bool was_set = m_cmos[kRegB] & kBSet;
      u8 b = v;
      if (b & kBSet) b &= static_cast<u8>(~kBUie);  // SET clears UIE
      if (!was_set && (b & kBSet)) {
        freeze();
      } else if (was_set && !(b & kBSet) && !divider_held()) {
        // The divider ran on under SET: updates keep its phase.
        m_frozen = false;
        set_base(m_frozen_seconds);
      }
      m_cmos[kRegB] = b;
      schedule();
      return;
    }
    case kRegC:
    case kRegD:
      return;  // read-only
    default:
      m_cmos[m_index] = v;
      return;
  }
}

u32 CmosRtc::read(u32 offset, unsigned size) {
  return read_byte_lanes(offset, size, [this](u32 o) { return read_byte(o); });
}

void CmosRtc::write(u32 offset, unsigned size, u32 value) {
  write_byte_lanes(offset, size, value, [this](u32 o, u8 v) { write_byte(o, v); });
}

}  // namespace reel
