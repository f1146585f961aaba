#include "netstack/port_forwards.h"

#include <cstdio>

#include "core/machine.h"
#include "netstack/gateway_link.h"

namespace reel {

namespace {

std::string rule_text(bool udp, const std::string& host, u16 port) {
  return std::string(udp ? "udp" : "tcp") + ":" + host + ":" + std::to_string(port);
}

}  // namespace

PortForwards::PortForwards(GatewayLink& link, Hooks hooks) : m_link(link), m_hooks(std::move(hooks)) {}

std::string PortForwards::add(const UserNetForward& f) {
  const std::string host = f.host_address.empty() ? "127.0.0.1" : f.host_address;
  for (const Rule& r : m_rules) {
    if (r.udp == f.udp && r.host_address == host && f.host_port != 0 && r.host_port == f.host_port)
      return "host forwarding rule " + rule_text(f.udp, host, f.host_port) + " already exists";
  }
  SocketSpec spec;
  spec.kind = f.udp ? SocketSpec::Kind::udp : SocketSpec::Kind::tcp_listen;
  spec.host = host;
  spec.port = f.host_port;
  const SocketOpenResult r = m_link.machine().host().socket_open(spec);
  if (!r.ok)
    return "could not set up host forwarding rule " + rule_text(f.udp, host, f.host_port) + ": " + r.error;
  Rule rule;
  rule.udp = f.udp;
  rule.host_address = host;
  rule.host_port = f.host_port;
  rule.bound_port = r.local.port ? r.local.port : f.host_port;
  // libslirp's default guest address is the first address it leases.
  rule.guest_address = f.guest_address ? f.guest_address : m_link.config().dhcp_start;
  rule.guest_port = f.guest_port;
  rule.socket = r.id;
  m_rules.push_back(rule);
  if (rule.udp && m_hooks.udp_bound) m_hooks.udp_bound(rule.socket, rule.guest_address, rule.guest_port);
  watch(m_rules.size() - 1);
  m_link.log("host forwarding " + describe().back());
  return {};
}

void PortForwards::watch(std::size_t index) {
  const Rule& rule = m_rules[index];
  if (rule.udp) return;  // the UDP NAT owns the socket's events
  const SocketId id = rule.socket;
  m_link.machine().set_socket_handler(id, [this, id](const SocketEvent& e) {
    // Rules move when one before them is removed: find it by socket.
    for (std::size_t i = 0; i < m_rules.size(); ++i) {
      if (m_rules[i].socket == id && !m_rules[i].udp) {
        on_listen_event(i, e);
        return;
      }
    }
  });
}

void PortForwards::on_listen_event(std::size_t index, const SocketEvent& e) {
  const Rule& rule = m_rules[index];
  if (e.kind != SocketEvent::Kind::accepted) return;  // a listener has nothing else to say
  ++m_accepted;
  if (m_hooks.tcp_accepted) {
    m_hooks.tcp_accepted(e.accepted, e.peer, rule.guest_address, rule.guest_port);
  } else {
    m_link.machine().host().socket_close(e.accepted);
  }
}

std::string PortForwards::remove(bool udp, const std::string& host_address, u16 host_port) {
  const std::string host = host_address.empty() ? "127.0.0.1" : host_address;
  for (std::size_t i = 0; i < m_rules.size(); ++i) {
    const Rule& r = m_rules[i];
    if (r.udp != udp || r.host_address != host || (r.host_port != host_port && r.bound_port != host_port))
      continue;
    if (udp) {
      if (m_hooks.udp_removed) m_hooks.udp_removed(r.socket);
    } else {
      m_link.machine().clear_socket_handler(r.socket);
    }
    m_link.machine().host().socket_close(r.socket);
    m_rules.erase(m_rules.begin() + static_cast<std::ptrdiff_t>(i));
    return {};
  }
  return "host forwarding rule for " + rule_text(udp, host, host_port) + " not found";
}

std::vector<std::string> PortForwards::describe() const {
  std::vector<std::string> out;
  for (const Rule& r : m_rules) {
    out.push_back(std::string(r.udp ? "UDP " : "TCP ") + r.host_address + ":" + std::to_string(r.bound_port) +
                  " -> " + format_ipv4(r.guest_address) + ":" + std::to_string(r.guest_port));
  }
  return out;
}

void PortForwards::rebind_sockets() {
  for (std::size_t i = 0; i < m_rules.size(); ++i) watch(i);
}

}  // namespace reel
