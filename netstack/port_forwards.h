#pragma once

// Port forwards into the guest (hostfwd=, -redir, the monitor's
// hostfwd_add/hostfwd_remove): a listening TCP socket or a bound UDP socket
// on the host per rule, whose connections and datagrams the NATs carry to
// the guest. Everything arrives through HostIO, so accepted connections and
// datagrams are journaled and a replay opens no socket.

#include <functional>
#include <string>
#include <vector>

#include "core/host_io.h"
#include "core/state_archive.h"
#include "core/types.h"
#include "netstack/user_net_config.h"

namespace reel {

class GatewayLink;

class PortForwards {
 public:
  struct Hooks {
    // A host client connected to a TCP rule: open it toward the guest.
    std::function<void(SocketId accepted, const SocketAddress& peer, u32 guest_ip, u16 guest_port)>
        tcp_accepted;
    // A UDP rule's socket is bound: its datagrams go to the guest.
    std::function<void(SocketId socket, u32 guest_ip, u16 guest_port)> udp_bound;
    std::function<void(SocketId socket)> udp_removed;
  };

  PortForwards(GatewayLink& link, Hooks hooks);

  // Binds the host side. Returns "" or a one-line error (address in use,
  // bad address) naming the rule, as QEMU's "could not set up host
  // forwarding rule" does.
  std::string add(const UserNetForward& rule);
  // Removes the rule bound to host_address:host_port ("" = 127.0.0.1);
  // returns "" or why not. Connections already forwarded stay up.
  std::string remove(bool udp, const std::string& host_address, u16 host_port);

  // "TCP 127.0.0.1:5555 -> 10.0.2.15:23" per rule, in the order added.
  std::vector<std::string> describe() const;
  std::size_t size() const { return m_rules.size(); }
  u64 accepted() const { return m_accepted; }

  // Re-registers the TCP listeners' handlers after a state load (the UDP
  // NAT re-registers the UDP rules' sockets itself).
  void rebind_sockets();

  struct Rule {
    bool udp = false;
    std::string host_address;
    u16 host_port = 0;   // as asked (0: any)
    u16 bound_port = 0;  // as bound
    u32 guest_address = 0;
    u16 guest_port = 0;
    SocketId socket = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(udp), REEL_FIELD(host_address), REEL_FIELD(host_port), REEL_FIELD(bound_port),
         REEL_FIELD(guest_address), REEL_FIELD(guest_port), REEL_FIELD(socket));
    }
  };
  const std::vector<Rule>& rules() const { return m_rules; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_rules), REEL_FIELD(m_accepted));
  }

 private:
  void on_listen_event(std::size_t index, const SocketEvent& e);
  void watch(std::size_t index);

  GatewayLink& m_link;
  Hooks m_hooks;
  std::vector<Rule> m_rules;
  u64 m_accepted = 0;
};

}  // namespace reel
