// isa-debug-exit: the exit status a test kernel gets for the value it writes.

#include "devices/debug_exit.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/port_bus.h"

namespace reel {
namespace {

TEST(DebugExit, StatusIsValueShiftedOrOne) {
  std::vector<int> statuses;
  DebugExit dx([&](int s) { statuses.push_back(s); });
  PortBus ports;
  dx.map_into(ports, 0xf4, 4);  // -device isa-debug-exit,iobase=0xf4,iosize=0x04
  ports.write(0xf4, 1, 0x00);
  ports.write(0xf4, 1, 0x10);
  ports.write(0xf4, 4, 0x21);
  ports.write(0xf7, 1, 0x01);  // any port of the range
  EXPECT_EQ(statuses, (std::vector<int>{1, 0x21, 0x43, 3}));
  EXPECT_EQ(dx.last_value(), 1u);
}

TEST(DebugExit, StatusKeepsOnlyWhatAnExitStatusCarries) {
  int status = -1;
  DebugExit dx([&](int s) { status = s; });
  dx.write(0, 1, 0xff);
  EXPECT_EQ(status, 0xff);  // (0xff << 1 | 1) & 0xff, as QEMU's exit() shows
  dx.write(0, 1, 0x1ff);    // a byte write carries only the low byte
  EXPECT_EQ(dx.last_value(), 0xffu);
}

TEST(DebugExit, ReadsZeroAndDefaultsToQemuPorts) {
  DebugExit dx([](int) {});
  PortBus ports;
  dx.map_into(ports);
  EXPECT_EQ(ports.read(0x501, 1), 0u);
  EXPECT_EQ(ports.read(0x502, 2), 0u);
  EXPECT_EQ(ports.read(0x503, 1), 0xffu);  // iosize 2: 0x501-0x502
}

}  // namespace
}  // namespace reel
