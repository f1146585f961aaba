// Port 0x80 (POST codes) and port 0x92 (fast A20 and fast reset).

#include <gtest/gtest.h>

#include "core/port_bus.h"
#include "devices/post_port.h"
#include "devices/system_control_port.h"

namespace reel {
namespace {

TEST(PostPort, KeepsTheLastCode) {
  PostPort post;
  PortBus ports;
  post.map_into(ports);
  EXPECT_EQ(ports.read(0x80, 1), 0u);
  ports.write(0x80, 1, 0x55);
  ports.write(0x80, 1, 0xaa);
  EXPECT_EQ(ports.read(0x80, 1), 0xaau);
  EXPECT_EQ(post.code(), 0xaa);
  post.reset();
  EXPECT_EQ(post.code(), 0);
}

TEST(SystemControlPort, A20BitIsStateAndResetIsAnEdge) {
  int resets = 0;
  SystemControlPort port92([&] { ++resets; });
  PortBus ports;
  port92.map_into(ports);
  EXPECT_EQ(ports.read(0x92, 1), 0x02u);  // A20 on for a -kernel boot
  EXPECT_TRUE(port92.a20_enabled());
  ports.write(0x92, 1, 0x00);
  EXPECT_FALSE(port92.a20_enabled());
  EXPECT_EQ(ports.read(0x92, 1), 0x00u);
  ports.write(0x92, 1, ports.read(0x92, 1) | 0x02);  // the usual read-modify-write
  EXPECT_TRUE(port92.a20_enabled());
  EXPECT_EQ(resets, 0);
  ports.write(0x92, 1, 0x03);
  EXPECT_EQ(resets, 1);
  ports.write(0x92, 1, 0x03);  // bit 0 still set: no second reset
  EXPECT_EQ(resets, 1);
  port92.reset();
  EXPECT_EQ(ports.read(0x92, 1), 0x02u);
  ports.write(0x92, 1, 0x01);
  EXPECT_EQ(resets, 2);
}

}  // namespace
}  // namespace reel
