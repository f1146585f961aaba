#include "netstack/mcast_backend.h"

#include <xxhash.h>

#include <algorithm>

#include "core/machine.h"

namespace reel {

namespace {
// Zero is the empty slot marker; a frame hashing to it is never filtered.
u64 frame_hash(std::span<const u8> frame) { return XXH3_64bits(frame.data(), frame.size()) | 1; }
}  // namespace

McastBackend::McastBackend(std::string name, Machine& machine, Config config)
    : Component(std::move(name)), m_machine(machine), m_config(std::move(config)) {
  SocketSpec spec;
  spec.kind = SocketSpec::Kind::udp_multicast;
  spec.host = m_config.group;
  spec.port = m_config.port;
  spec.local_host = m_config.local_address;
  const SocketOpenResult r = m_machine.host().socket_open(spec);
  if (!r.ok) {
    m_error = "-net socket,mcast=" + m_config.group + ":" + std::to_string(m_config.port) + ": " + r.error;
    return;
  }
  m_open = true;
  m_socket = r.id;
  m_machine.set_socket_handler(r.id, [this](const SocketEvent& e) { on_event(e); });
}

std::string McastBackend::describe_port() const {
  std::string s = "socket: mcast=" + m_config.group + ":" + std::to_string(m_config.port);
  if (!m_config.local_address.empty()) s += ",localaddr=" + m_config.local_address;
  return s;
}

void McastBackend::receive_frame(std::span<const u8> frame) {
  if (!m_open) return;
  m_sent[m_sent_next] = frame_hash(frame);
  m_sent_next = (m_sent_next + 1) % m_sent.size();
  ++m_counters.frames_out;
  if (m_machine.host().socket_send(m_socket, frame) == 0) ++m_counters.send_failures;
}

void McastBackend::on_event(const SocketEvent& e) {
  if (e.kind != SocketEvent::Kind::datagram) return;
  if (e.bytes.empty()) {
    ++m_counters.dropped_empty;
    return;
  }
  if (e.bytes.size() > kEthMaxVlanFrame) {
    ++m_counters.dropped_oversize;
    return;
  }
  const u64 h = frame_hash(e.bytes);
  auto it = std::find(m_sent.begin(), m_sent.end(), h);
  if (it != m_sent.end()) {
    *it = 0;  // one echo per send
    ++m_counters.own_echoes;
    return;
  }
  ++m_counters.frames_in;
  transmit(e.bytes);
}

}  // namespace reel
