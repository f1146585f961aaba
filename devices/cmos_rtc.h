#pragma once

#include <array>
#include <optional>

#include "core/device.h"
#include "core/host_io.h"
#include "core/interrupts.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"

namespace reel {

class PortBus;

// The MC146818 real-time clock and its CMOS memory (0x70 index with the NMI
// mask in bit 7, 0x71 data). The host's date is read once, at construction,
// through HostIO (so it is journaled) unless a fixed base is given
// (-rtc base=, ns since the Unix epoch, UTC); from then on the clock follows
// virtual time only, and a reset keeps it running like the battery would. Periodic, alarm and
// update-ended interrupts go to IRQ8.
class CmosRtc : public Device {
 public:
  CmosRtc(Scheduler& scheduler, const VirtualClock& clock, HostIO& host, IrqLine irq8, u32 ram_bytes,
          std::optional<i64> base_ns);

  void map_into(PortBus& ports);

  void reset() override;
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_index), REEL_FIELD(m_nmi_masked), REEL_FIELD(m_cmos), REEL_FIELD(m_base_seconds),
       REEL_FIELD(m_base_ns), REEL_FIELD(m_frozen), REEL_FIELD(m_frozen_seconds), REEL_FIELD(m_irq_level));
  }
  REEL_DEVICE_STATE

  // Seconds since the epoch the guest's clock shows now.
  i64 current_seconds() const;

  // Calendar helpers on integer arithmetic (no host time functions).
  struct Civil {
    int year, month, day, hour, minute, second, weekday;  // weekday 1 = Sunday
  };
  static Civil civil_from_seconds(i64 seconds);
  static i64 seconds_from_civil(const Civil& c);

 private:
  u8 encode(int value) const;
  int decode(u8 value) const;
  u8 read_time_register(u8 index) const;
  // Virtual ns since m_base_ns (negative while it lies ahead) and the
  // position within the current second.
  i64 since_base_ns() const;
  u64 phase_ns() const;
  // Register A's divider bits 11x hold the divider chain in reset.
  bool divider_held() const { return (m_cmos[0x0a] & 0x60) == 0x60; }
  // Stops the time registers at their current value (SET, divider reset).
  void freeze();
  void write_time_register(u8 index, u8 value);
  void set_base(i64 seconds);
  void schedule();
  void on_periodic();
  void on_second();
  void raise(u8 flag);
  void fill_memory_sizes();
  void power_on();
  u8 read_byte(u32 offset);
  void write_byte(u32 offset, u8 value);

  Scheduler& m_scheduler;
  const VirtualClock& m_clock;
  HostIO& m_host;
  IrqLine m_irq;
  u32 m_ram_bytes;
  std::optional<i64> m_fixed_base_ns;
  Scheduler::TimerId m_periodic_timer;
  Scheduler::TimerId m_second_timer;

  u8 m_index = 0;
  bool m_nmi_masked = true;
  std::array<u8, 128> m_cmos{};
  i64 m_base_seconds = 0;  // wall seconds at virtual time m_base_ns
  u64 m_base_ns = 0;
  // The time stands still: register B's SET or a divider held in reset.
  bool m_frozen = false;
  i64 m_frozen_seconds = 0;
  bool m_irq_level = false;
};

}  // namespace reel
