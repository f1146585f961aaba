// Port forwards of -net user: rules bind through HostIO, accepted
// connections and UDP sockets reach the NAT hooks with the guest address
// (the first lease when none was given), removal closes the listener, and
// the errors are the one-liners QEMU users know.

#include "netstack/port_forwards.h"

#include <gtest/gtest.h>

#include "core/machine.h"
#include "netstack/user_net.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

struct Accepted {
  SocketId socket;
  SocketAddress peer;
  u32 guest_ip;
  u16 guest_port;
};

class PortForwardsTest : public ::testing::Test {
 protected:
  PortForwardsTest()
      : machine(MachineConfig{}, host),
        net("user.0", machine, UserNetConfig{}),
        forwards(net, PortForwards::Hooks{
                          [this](SocketId s, const SocketAddress& p, u32 ip, u16 port) {
                            accepted.push_back({s, p, ip, port});
                          },
                          [this](SocketId s, u32 ip, u16 port) {
                            udp_bound.push_back({s, {}, ip, port});
                          },
                          [this](SocketId s) { udp_removed.push_back(s); },
                      }) {}

  test::FakeHostIO host;
  Machine machine;
  UserNet net;
  PortForwards forwards;
  std::vector<Accepted> accepted;
  std::vector<Accepted> udp_bound;
  std::vector<SocketId> udp_removed;
};

TEST_F(PortForwardsTest, TcpRuleListensOnLoopbackAndHandsOverConnections) {
  EXPECT_EQ(forwards.add(UserNetForward{false, "127.0.0.1", 5555, 0, 23}), "");
  ASSERT_EQ(host.opened.size(), 1u);
  EXPECT_EQ(host.opened[0].kind, SocketSpec::Kind::tcp_listen);
  EXPECT_EQ(host.opened[0].host, "127.0.0.1");
  EXPECT_EQ(host.opened[0].port, 5555);

  SocketEvent e;
  e.kind = SocketEvent::Kind::accepted;
  e.socket = 0;
  e.accepted = 7;
  e.peer = SocketAddress{0x7f000001, 40000};
  machine.deliver_socket_event(e);
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].socket, 7u);
  EXPECT_EQ(accepted[0].peer.port, 40000);
  EXPECT_EQ(accepted[0].guest_ip, 0x0a00020fu);  // the first lease
  EXPECT_EQ(accepted[0].guest_port, 23);
  EXPECT_EQ(forwards.accepted(), 1u);
  ASSERT_EQ(forwards.describe().size(), 1u);
  EXPECT_EQ(forwards.describe()[0], "TCP 127.0.0.1:5555 -> 10.0.2.15:23");
}

TEST_F(PortForwardsTest, UdpRuleGoesToTheUdpNat) {
  EXPECT_EQ(forwards.add(UserNetForward{true, "127.0.0.1", 5560, 0x0a000210, 117}), "");
  ASSERT_EQ(host.opened.size(), 1u);
  EXPECT_EQ(host.opened[0].kind, SocketSpec::Kind::udp);
  ASSERT_EQ(udp_bound.size(), 1u);
  EXPECT_EQ(udp_bound[0].guest_ip, 0x0a000210u);
  EXPECT_EQ(udp_bound[0].guest_port, 117);
  EXPECT_EQ(forwards.remove(true, "", 5560), "");
  ASSERT_EQ(udp_removed.size(), 1u);
  EXPECT_EQ(host.closed.size(), 1u);
  EXPECT_EQ(forwards.size(), 0u);
}

TEST_F(PortForwardsTest, RemoveClosesTheListenerAndStopsAccepting) {
  EXPECT_EQ(forwards.add(UserNetForward{false, "127.0.0.1", 6000, 0, 80}), "");
  EXPECT_EQ(forwards.remove(false, "127.0.0.1", 6000), "");
  ASSERT_EQ(host.closed.size(), 1u);
  EXPECT_EQ(host.closed[0], 0u);
  SocketEvent e;
  e.kind = SocketEvent::Kind::accepted;
  e.socket = 0;
  e.accepted = 3;
  machine.deliver_socket_event(e);
  EXPECT_TRUE(accepted.empty());
  EXPECT_EQ(forwards.remove(false, "127.0.0.1", 6000),
            "host forwarding rule for tcp:127.0.0.1:6000 not found");
}

TEST_F(PortForwardsTest, ErrorsNameTheRule) {
  host.refuse_sockets = true;
  EXPECT_EQ(forwards.add(UserNetForward{false, "127.0.0.1", 22, 0, 22}),
            "could not set up host forwarding rule tcp:127.0.0.1:22: refused by the test");
  host.refuse_sockets = false;
  EXPECT_EQ(forwards.add(UserNetForward{false, "127.0.0.1", 2222, 0, 22}), "");
  EXPECT_EQ(forwards.add(UserNetForward{false, "127.0.0.1", 2222, 0, 23}),
            "host forwarding rule tcp:127.0.0.1:2222 already exists");
  // The same port for UDP is another rule.
  EXPECT_EQ(forwards.add(UserNetForward{true, "127.0.0.1", 2222, 0, 22}), "");
}

TEST_F(PortForwardsTest, GatewayStartsConfiguredForwardsAndListsThem) {
  UserNetConfig c;
  c.forwards.push_back(UserNetForward{false, "127.0.0.1", 5555, 0, 23});
  c.forwards.push_back(UserNetForward{true, "127.0.0.1", 5560, 0, 117});
  UserNet gw("user.1", machine, c);
  EXPECT_EQ(gw.start_forwards(), "");
  const auto lines = gw.describe_state();
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "forward TCP 127.0.0.1:5555 -> 10.0.2.15:23");
  EXPECT_EQ(lines[1], "forward UDP 127.0.0.1:5560 -> 10.0.2.15:117");
}

}  // namespace
}  // namespace reel
