#include "netstack/socket_backend.h"

#include <algorithm>

#include "core/machine.h"

namespace reel {

SocketBackend::SocketBackend(std::string name, Machine& machine, Config config)
    : Component(std::move(name)), m_machine(machine), m_config(std::move(config)) {
  m_target = m_config.host + ":" + std::to_string(m_config.port);
  m_retry_timer = m_machine.scheduler().add_timer(this->name() + ".retry", [this] { connect_now(); });
  if (m_config.mode == Mode::listen) {
    SocketSpec spec;
    spec.kind = SocketSpec::Kind::tcp_listen;
    spec.host = m_config.host;
    spec.port = m_config.port;
    const SocketOpenResult r = m_machine.host().socket_open(spec);
    if (!r.ok) {
      m_error = "-net socket,listen=" + m_target + ": " + r.error;
      return;
    }
    m_listening = true;
    m_listen_socket = r.id;
    m_local = r.local;
    m_machine.set_socket_handler(r.id, [this](const SocketEvent& e) { on_listen_event(e); });
  } else {
    connect_now();
  }
}

SocketBackend::~SocketBackend() = default;

size_t SocketBackend::peer_count() const {
  return static_cast<size_t>(
      std::count_if(m_peers.begin(), m_peers.end(), [](const Peer& p) { return p.connected; }));
}

std::string SocketBackend::describe_port() const {
  if (m_config.mode == Mode::connect) {
    const bool up = !m_peers.empty() && m_peers.front().connected;
    return "socket: connect to " + m_target + (up ? "" : " (not connected)");
  }
  std::string s = "socket: listen=" + m_target;
  for (const Peer& p : m_peers) s += ", connection from " + p.address;
  return s;
}

void SocketBackend::connect_now() {
  SocketSpec spec;
  spec.kind = SocketSpec::Kind::tcp_connect;
  spec.host = m_config.host;
  spec.port = m_config.port;
  const SocketOpenResult r = m_machine.host().socket_open(spec);
  if (!r.ok) {
    // The name does not resolve, or the host is out of sockets: as good as
    // a refused connection, try again later.
    m_machine.log(name() + ": cannot connect to " + m_target + ": " + r.error);
    m_machine.scheduler().arm(m_retry_timer, m_machine.clock().now_ns() + m_retry_ns);
    m_retry_ns = std::min(m_retry_ns * 2, kMaxRetryNs);
    return;
  }
  Peer peer;
  peer.socket = r.id;
  peer.address = m_target;
  m_peers.push_back(std::move(peer));
  m_machine.set_socket_handler(r.id, [this](const SocketEvent& e) { on_peer_event(e); });
}

void SocketBackend::on_listen_event(const SocketEvent& e) {
  if (e.kind != SocketEvent::Kind::accepted) return;
  Peer peer;
  peer.socket = e.accepted;
  peer.address = format_socket_address(e.peer);
  peer.connected = true;
  m_peers.push_back(std::move(peer));
  m_machine.set_socket_handler(e.accepted, [this](const SocketEvent& ev) { on_peer_event(ev); });
  m_machine.log(name() + ": connection from " + format_socket_address(e.peer));
}

SocketBackend::Peer* SocketBackend::find_peer(SocketId socket) {
  for (Peer& p : m_peers) {
    if (p.socket == socket) return &p;
  }
  return nullptr;
}

void SocketBackend::drop_peer(SocketId socket, const std::string& why) {
  auto it = std::find_if(m_peers.begin(), m_peers.end(), [&](const Peer& p) { return p.socket == socket; });
  if (it == m_peers.end()) return;
  const bool was_connected = it->connected;
  const std::string address = it->address;
  m_machine.clear_socket_handler(socket);
  m_machine.host().socket_close(socket);
  m_peers.erase(it);
  if (m_config.mode == Mode::listen) {
    m_machine.log(name() + ": peer " + address + " " + why);
    return;
  }
  // Connecting side: never leave the VLAN dead; try again with backoff.
  if (was_connected) m_retry_ns = kFirstRetryNs;
  m_machine.log(name() + ": " + (was_connected ? "lost " : "cannot reach ") + m_target + " (" + why +
                "), retrying in " + std::to_string(m_retry_ns / 1'000'000) + " ms");
  m_machine.scheduler().arm(m_retry_timer, m_machine.clock().now_ns() + m_retry_ns);
  m_retry_ns = std::min(m_retry_ns * 2, kMaxRetryNs);
}

void SocketBackend::on_peer_event(const SocketEvent& e) {
  Peer* peer = find_peer(e.socket);
  if (!peer) return;
  switch (e.kind) {
    case SocketEvent::Kind::connected:
      peer->connected = true;
      if (m_ever_connected) ++m_counters.reconnects;
      m_ever_connected = true;
      m_retry_ns = kFirstRetryNs;
      m_machine.log(name() + ": connected to " + m_target);
      return;
    case SocketEvent::Kind::connect_failed:
      drop_peer(e.socket, e.error);
      return;
    case SocketEvent::Kind::data:
      peer->inbox.insert(peer->inbox.end(), e.bytes.begin(), e.bytes.end());
      if (!take_frames(*peer)) {
        ++m_counters.garbage_disconnects;
        drop_peer(e.socket, "sent a frame length beyond " + std::to_string(kMaxWireFrame) +
                                " bytes: not QEMU's socket protocol, disconnected");
      }
      return;
    case SocketEvent::Kind::writable:
      peer->blocked = false;
      flush(*peer);
      return;
    case SocketEvent::Kind::eof:
      drop_peer(e.socket, "closed the connection");
      return;
    case SocketEvent::Kind::error:
      drop_peer(e.socket, e.error);
      return;
    case SocketEvent::Kind::accepted:
    case SocketEvent::Kind::datagram:
      return;
  }
}

bool SocketBackend::take_frames(Peer& peer) {
  // Frames are handed on one by one; a frame sent in answer goes out at
  // once, so the peer's state is re-found by socket after each delivery.
  const SocketId socket = peer.socket;
  size_t pos = 0;
  std::vector<u8> inbox = std::move(peer.inbox);
  peer.inbox.clear();
  while (inbox.size() - pos >= 4) {
    const u32 len =
        u32{inbox[pos]} << 24 | u32{inbox[pos + 1]} << 16 | u32{inbox[pos + 2]} << 8 | inbox[pos + 3];
    if (len > kMaxWireFrame) return false;
    if (inbox.size() - pos - 4 < len) break;
    const std::span<const u8> frame(inbox.data() + pos + 4, len);
    pos += 4 + len;
    if (len == 0) {
      ++m_counters.dropped_empty;
      continue;
    }
    if (len > kEthMaxVlanFrame) {
      ++m_counters.dropped_oversize;
      continue;
    }
    ++m_counters.frames_in;
    // Other peers of a listening backend hear it, as on a shared segment.
    for (Peer& other : m_peers) {
      if (other.socket != socket && other.connected) send_to_peer(other, frame);
    }
    transmit(frame);
  }
  if (Peer* p = find_peer(socket))
    p->inbox.assign(inbox.begin() + static_cast<std::ptrdiff_t>(pos), inbox.end());
  return true;
}

void SocketBackend::receive_frame(std::span<const u8> frame) {
  for (Peer& p : m_peers) {
    if (p.connected) send_to_peer(p, frame);
  }
}

void SocketBackend::send_to_peer(Peer& peer, std::span<const u8> frame) {
  if (peer.outbox.size() + 4 + frame.size() > kMaxQueued) {
    ++m_counters.dropped_congested;
    return;
  }
  const u32 len = static_cast<u32>(frame.size());
  const u8 head[4] = {static_cast<u8>(len >> 24), static_cast<u8>(len >> 16), static_cast<u8>(len >> 8),
                      static_cast<u8>(len)};
  peer.outbox.insert(peer.outbox.end(), head, head + 4);
  peer.outbox.insert(peer.outbox.end(), frame.begin(), frame.end());
  ++m_counters.frames_out;
  flush(peer);
}

void SocketBackend::flush(Peer& peer) {
  // While the host's buffer is full, a `writable` event says when to go on.
  if (peer.outbox.empty() || peer.blocked) return;
  const size_t n = m_machine.host().socket_send(peer.socket, peer.outbox);
  peer.outbox.erase(peer.outbox.begin(), peer.outbox.begin() + static_cast<std::ptrdiff_t>(n));
  peer.blocked = !peer.outbox.empty();
}

}  // namespace reel
