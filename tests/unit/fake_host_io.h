#pragma once

// A HostIO for device tests: records console output, returns a fixed host
// time, has no inputs.

#include <span>
#include <string>
#include <vector>

#include "core/host_io.h"
#include "core/interrupts.h"

namespace reel::test {

class FakeHostIO : public HostIO {
 public:
  void attach(const VirtualClock*, std::function<u64()>) override {}
  i64 host_time_ns() override {
    ++time_reads;
    return time_ns;
  }
  HostFile read_file(const std::string&) override { return {}; }
  ChannelId open_console(const ConsoleSpec&) override { return 0; }
  void console_write(ChannelId, std::span<const u8> bytes) override {
    output.append(bytes.begin(), bytes.end());
  }
  u64 next_stop_icount() override { return kNever; }
  bool boundary(InputSink&) override { return true; }
  std::optional<u64> idle(std::optional<u64> deadline) override { return deadline; }
  void finish(const RunEnd&) override {}

  i64 time_ns = 1795581792LL * 1000000000LL;  // 2026-11-25 04:43:12 UTC, a Wednesday
  int time_reads = 0;
  std::string output;
};

// An IrqSink that remembers line levels and counts rising edges.
class FakeIrqSink : public IrqSink {
 public:
  void set_irq(unsigned line, bool level) override {
    if (level && !levels[line]) ++edges[line];
    levels[line] = level;
  }
  bool levels[16] = {};
  int edges[16] = {};
};

// Stands in for the CPU: counts INTR change notifications.
class FakeIntrListener : public IntrListener {
 public:
  void intr_changed() override { ++changes; }
  int changes = 0;
};

}  // namespace reel::test
