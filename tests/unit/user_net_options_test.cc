// -net user's properties and the legacy -redir/-tftp/-bootp spellings, as
// QEMU spells them.

#include <gtest/gtest.h>

#include "harness/options.h"

namespace reel {
namespace {

UserNetOption user_of(std::vector<std::string> args) {
  args.insert(args.begin(), {"-kernel", "g.elf"});
  const MachineOptions o = parse_machine_options(args);
  for (const auto& n : o.nets) {
    if (n.kind == NetOption::Kind::user) return n.user;
  }
  ADD_FAILURE() << "no -net user";
  return {};
}

std::string error_of(std::vector<std::string> args) {
  args.insert(args.begin(), {"-kernel", "g.elf"});
  try {
    parse_machine_options(args);
  } catch (const OptionError& e) {
    return e.what();
  }
  return "";
}

TEST(UserNetOptions, QemuDefaults) {
  const UserNetOption u = user_of({"-net", "nic", "-net", "user"});
  EXPECT_EQ(u.network, 0x0a000200u);
  EXPECT_EQ(u.netmask, 0xffffff00u);
  EXPECT_EQ(u.host, 0x0a000202u);
  EXPECT_EQ(u.dns, 0x0a000203u);
  EXPECT_EQ(u.dhcp_start, 0x0a00020fu);
  EXPECT_FALSE(u.restrict);
  EXPECT_TRUE(u.forwards.empty());
}

TEST(UserNetOptions, EveryProperty) {
  const UserNetOption u = user_of(
      {"-net",
       "user,net=192.168.76.0/24,host=192.168.76.1,dhcpstart=192.168.76.100,dns=192.168.76.53,restrict=y,"
       "hostname=guest1,domainname=example.test,dnssearch=a.test,dnssearch=b.test,tftp=/srv/tftp,"
       "bootfile=pxe.0,tftp-server-name=tftp.test,hostfwd=tcp:127.0.0.1:5555-:23,"
       "hostfwd=udp::5560-192.168.76.100:117,ipv6=off"});
  EXPECT_EQ(u.network, 0xc0a84c00u);
  EXPECT_EQ(u.host, 0xc0a84c01u);
  EXPECT_EQ(u.dhcp_start, 0xc0a84c64u);
  EXPECT_EQ(u.dns, 0xc0a84c35u);
  EXPECT_TRUE(u.restrict);
  EXPECT_EQ(u.hostname, "guest1");
  EXPECT_EQ(u.domainname, "example.test");
  EXPECT_EQ(u.dns_search, (std::vector<std::string>{"a.test", "b.test"}));
  EXPECT_EQ(u.tftp_root, "/srv/tftp");
  EXPECT_EQ(u.bootfile, "pxe.0");
  EXPECT_EQ(u.tftp_server_name, "tftp.test");
  ASSERT_EQ(u.forwards.size(), 2u);
  EXPECT_FALSE(u.forwards[0].udp);
  EXPECT_EQ(u.forwards[0].host_address, "127.0.0.1");
  EXPECT_EQ(u.forwards[0].host_port, 5555);
  EXPECT_EQ(u.forwards[0].guest_address, 0u);
  EXPECT_EQ(u.forwards[0].guest_port, 23);
  EXPECT_TRUE(u.forwards[1].udp);
  EXPECT_EQ(u.forwards[1].host_address, "");
  EXPECT_EQ(u.forwards[1].guest_address, 0xc0a84c64u);
  EXPECT_EQ(u.forwards[1].guest_port, 117);
}

TEST(UserNetOptions, NetMovesTheDefaultAddresses) {
  const UserNetOption u = user_of({"-net", "user,net=10.9.0.0/255.255.0.0"});
  EXPECT_EQ(u.netmask, 0xffff0000u);
  EXPECT_EQ(u.host, 0x0a090002u);
  EXPECT_EQ(u.dns, 0x0a090003u);
  EXPECT_EQ(u.dhcp_start, 0x0a09000fu);
}

TEST(UserNetOptions, LegacySpellingsGoToTheFirstUserStack) {
  const UserNetOption u =
      user_of({"-net", "nic", "-net", "user", "-tftp", "/srv", "-bootp", "boot.elf", "-redir", "tcp:5555::23",
               "-redir", "udp:5560:10.0.2.15:117", "-redir", "6000::22"});
  EXPECT_EQ(u.tftp_root, "/srv");
  EXPECT_EQ(u.bootfile, "boot.elf");
  ASSERT_EQ(u.forwards.size(), 3u);
  EXPECT_EQ(u.forwards[0].host_port, 5555);
  EXPECT_EQ(u.forwards[0].guest_port, 23);
  EXPECT_TRUE(u.forwards[1].udp);
  EXPECT_EQ(u.forwards[1].guest_address, 0x0a00020fu);
  EXPECT_FALSE(u.forwards[2].udp);
  EXPECT_EQ(u.forwards[2].host_port, 6000);
}

TEST(UserNetOptions, BadPropertiesNameThemselves) {
  EXPECT_NE(error_of({"-net", "user,net=10.0.2.0/33"}).find("-net user,net"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,host=10.0.3.2"}).find("outside the network 10.0.2.0"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,dns=10.0.2.2"}).find("must differ"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,dhcpstart=10.0.2.300"}).find("expected an IPv4 address"),
            std::string::npos);
  EXPECT_NE(error_of({"-net", "user,hostfwd=tcp:5555-:23"}).find("expected [tcp|udp]"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,hostfwd=icmp::1-:2"}).find("expected [tcp|udp]"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,hostfwd=tcp::0-:23"}).find("port number"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,smb=/tmp"}).find("not supported"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,ipv6=on"}).find("no IPv6"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user,frob=1"}).find("unknown property 'frob'"), std::string::npos);
  EXPECT_NE(error_of({"-net", "none", "-redir", "tcp:5555::23"}).find("needs a user-mode network"),
            std::string::npos);
  EXPECT_NE(error_of({"-net", "nic", "-net", "dump", "-tftp", "/srv"}).find("needs a user-mode network"),
            std::string::npos);
  EXPECT_NE(error_of({"-net", "user", "-redir", "tcp:5555"}).find("-redir: expected"), std::string::npos);
  EXPECT_NE(error_of({"-net", "user", "-redir", "tcp:5555:10.1.1.1:23"}).find("outside the network"),
            std::string::npos);
}

}  // namespace
}  // namespace reel
