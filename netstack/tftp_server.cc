#include "netstack/tftp_server.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "core/machine.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/udp.h"

namespace reel {

namespace {
constexpr u8 kTosLowDelay = 0x10;
}  // namespace

namespace {

using wire::TftpErrorCode;

// ASCII only: std::tolower would follow the host's locale.
std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

TftpServer::TftpServer(GatewayLink& link, u64 max_held_bytes)
    : m_link(link), m_max_held_bytes(max_held_bytes) {}

// Read at each request rather than kept: the gateway may build its services
// before its own configuration member is, and this costs nothing.
const std::string& TftpServer::root() const { return m_link.config().tftp_root; }

std::size_t TftpServer::find_session(u32 ip, u16 port) const {
  for (std::size_t i = 0; i < m_sessions.size(); ++i) {
    if (m_sessions[i].client_ip == ip && m_sessions[i].client_port == port) return i;
  }
  return m_sessions.size();
}

std::shared_ptr<const std::vector<u8>> TftpServer::store(std::vector<u8> bytes, u64& hash) {
  hash = XXH3_64bits(bytes.data(), bytes.size());
  if (auto it = m_contents.find(hash); it != m_contents.end() && it->second->size() == bytes.size())
    return it->second;
  auto shared = std::make_shared<const std::vector<u8>>(std::move(bytes));
  m_contents[hash] = shared;
  m_content_order.push_back(hash);
  // Let the oldest contents no session uses go once the store is too big.
  u64 total = 0;
  for (const auto& [h, c] : m_contents) total += c->size();
  for (std::size_t i = 0; i < m_content_order.size() && total > m_max_held_bytes;) {
    auto it = m_contents.find(m_content_order[i]);
    if (it == m_contents.end() || it->second.use_count() > 1 || it->second == shared) {
      ++i;
      continue;
    }
    total -= it->second->size();
    m_contents.erase(it);
    m_content_order.erase(m_content_order.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return shared;
}

void TftpServer::attach_contents() {
  for (Session& s : m_sessions) {
    const auto it = m_contents.find(s.file_hash);
    s.file = it != m_contents.end() && it->second->size() == s.file_size ? it->second : nullptr;
  }
}

u64 TftpServer::held_bytes() const {
  u64 n = 0;
  for (const Session& s : m_sessions) n += s.file_size;
  return n;
}

u64 TftpServer::next_deadline() const {
  u64 d = kNever;
  for (const Session& s : m_sessions) d = std::min(d, s.deadline_ns);
  return d;
}

void TftpServer::guest_datagram(const wire::Ipv4Packet& ip, const wire::UdpDatagram& udp) {
  ++m_counters.packets_in;
  const u32 client_ip = ip.source();
  const u16 client_port = udp.source_port();
  const wire::TftpParsed parsed = wire::TftpPacket::parse(udp.payload());
  if (!parsed) {
    switch (parsed.error) {
      case wire::TftpError::name_too_long:
        // libslirp's answer since its filename overflow was fixed.
        ++m_counters.refused_name_too_long;
        send_error(client_ip, client_port, TftpErrorCode::access_violation, "Access violation");
        return;
      case wire::TftpError::bad_mode:
        ++m_counters.refused_mode;
        send_error(client_ip, client_port, TftpErrorCode::illegal_operation, "Unsupported transfer mode");
        return;
      case wire::TftpError::bad_opcode:
        ++m_counters.refused_opcode;
        send_error(client_ip, client_port, TftpErrorCode::illegal_operation, "Illegal operation");
        return;
      case wire::TftpError::too_many_options:
        ++m_counters.refused_too_many_options;
        send_error(client_ip, client_port, TftpErrorCode::option_refused, "Too many options");
        return;
      default:
        // Nothing trustworthy to answer (it may even be an ERROR, which is
        // never answered).
        ++m_counters.dropped_malformed;
        return;
    }
  }
  const wire::TftpPacket& packet = *parsed;
  switch (packet.opcode()) {
    case wire::TftpOpcode::rrq:
      handle_rrq(client_ip, client_port, packet, udp.payload());
      return;
    case wire::TftpOpcode::wrq:
      ++m_counters.refused_write;
      send_error(client_ip, client_port, TftpErrorCode::illegal_operation, "Write not supported");
      return;
    case wire::TftpOpcode::data:
    case wire::TftpOpcode::oack:
      ++m_counters.refused_unexpected;
      send_error(client_ip, client_port, TftpErrorCode::illegal_operation, "Illegal operation");
      return;
    case wire::TftpOpcode::ack: {
      const std::size_t i = find_session(client_ip, client_port);
      if (i == m_sessions.size()) {
        ++m_counters.dropped_no_session;
        return;
      }
      handle_ack(i, packet.block());
      return;
    }
    case wire::TftpOpcode::error: {
      const std::size_t i = find_session(client_ip, client_port);
      if (i == m_sessions.size()) {
        ++m_counters.dropped_no_session;
        return;
      }
      ++m_counters.sessions_aborted;
      end_session(i);
      return;
    }
  }
}

void TftpServer::handle_rrq(u32 client_ip, u16 client_port, const wire::TftpPacket& request,
                            std::span<const u8> request_bytes) {
  if (root().empty()) {
    ++m_counters.refused_no_root;
    send_error(client_ip, client_port, TftpErrorCode::access_violation, "Access violation");
    return;
  }
  if (request.mode() != wire::TftpMode::octet) {
    ++m_counters.refused_mode;
    send_error(client_ip, client_port, TftpErrorCode::illegal_operation, "Unsupported transfer mode");
    return;
  }
  if (const std::size_t old = find_session(client_ip, client_port); old != m_sessions.size()) {
    Session& s = m_sessions[old];
    if (s.block <= 1 && std::ranges::equal(s.request, request_bytes)) {
      // Our OACK or first DATA went missing. Restarting would read (and
      // journal) the whole file again for every retry.
      ++m_counters.duplicate_requests;
      transmit(s);
      arm_timer();
      return;
    }
    // A client only asks for something else when it gave up on what it had.
    ++m_counters.sessions_replaced;
    end_session(old);
  }
  if (m_sessions.size() >= kMaxSessions) {
    ++m_counters.dropped_session_limit;
    return;
  }
  HostFile file = m_link.machine().host().read_file_under(root(), std::string(request.filename()));
  if (!file.ok) {
    if (file.refused) {
      ++m_counters.refused_access;
      send_error(client_ip, client_port, TftpErrorCode::access_violation, "Access violation");
    } else {
      ++m_counters.refused_not_found;
      send_error(client_ip, client_port, TftpErrorCode::file_not_found, "File not found");
    }
    return;
  }
  if (held_bytes() + file.bytes.size() > m_max_held_bytes) {
    ++m_counters.refused_allocation;
    send_error(client_ip, client_port, TftpErrorCode::disk_full, "Allocation exceeded");
    return;
  }

  Session s;
  s.client_ip = client_ip;
  s.client_port = client_port;
  s.request.assign(request_bytes.begin(), request_bytes.end());
  s.file_size = file.bytes.size();
  s.file = store(std::move(file.bytes), s.file_hash);

  // Answer the options we take in the client's order, each name once.
  std::vector<std::pair<std::string, std::string>> answers;
  bool seen_blksize = false, seen_tsize = false, seen_timeout = false;
  for (const wire::TftpOption& o : request.options()) {
    const std::string name = lowercase(o.name);
    if (name == "blksize" && !seen_blksize) {
      seen_blksize = true;
      if (const auto v = request.blksize()) {
        s.block_size = std::min(*v, kMaxGrantedBlockSize);
        answers.emplace_back(name, std::to_string(s.block_size));
      }
    } else if (name == "tsize" && !seen_tsize) {
      seen_tsize = true;
      if (const auto v = request.tsize(); v && *v == 0) {
        answers.emplace_back(name, std::to_string(s.file_size));
      }
    } else if (name == "timeout" && !seen_timeout) {
      seen_timeout = true;
      if (const auto v = request.timeout()) {
        s.interval_ns = u64{*v} * 1'000'000'000;
        answers.emplace_back(name, std::to_string(*v));
      }
    }
  }

  ++m_counters.requests;
  m_sessions.push_back(std::move(s));
  Session& session = m_sessions.back();
  if (answers.empty()) {
    send_block(session, 1);
  } else {
    std::vector<wire::TftpOption> options;
    for (const auto& [name, value] : answers) options.push_back({name, value});
    std::array<u8, 512> out{};
    const auto n = wire::build_tftp_oack(out, options);
    // Three short options always fit; the assert guards that arithmetic.
    if (!n) throw std::logic_error("tftp: OACK does not fit its buffer");
    session.block = 0;
    session.retries = 0;
    session.last_sent.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n));
    ++m_counters.oacks_sent;
    transmit(session);
  }
  arm_timer();
}

void TftpServer::handle_ack(std::size_t index, u16 block) {
  Session& s = m_sessions[index];
  const u16 expected = static_cast<u16>(s.block);
  if (block == expected) {
    ++m_counters.acks_in;
    if (s.block == block_count(s)) {
      ++m_counters.sessions_completed;
      end_session(index);
      return;
    }
    if (!s.file) {
      ++m_counters.sessions_lost_contents;
      end_session(index);
      return;
    }
    send_block(s, s.block + 1);
    arm_timer();
  } else if (s.block >= 1 && block == static_cast<u16>(s.block - 1)) {
    // The client resent its ACK because our DATA was late or lost; the
    // timer resends that DATA, answering here too would double every block.
    ++m_counters.duplicate_acks;
  } else {
    ++m_counters.stray_acks;
  }
}

void TftpServer::send_block(Session& s, u64 index) {
  const u64 offset = (index - 1) * s.block_size;
  const std::size_t size = static_cast<std::size_t>(std::min<u64>(s.block_size, s.file_size - offset));
  s.last_sent.assign(4 + size, 0);
  const auto data = std::span<const u8>(*s.file).subspan(static_cast<std::size_t>(offset), size);
  if (!wire::build_tftp_data(s.last_sent, static_cast<u16>(index), data)) {
    throw std::logic_error("tftp: DATA does not fit its buffer");
  }
  s.block = index;
  s.retries = 0;
  ++m_counters.data_sent;
  transmit(s);
}

void TftpServer::transmit(Session& s) {
  send_udp(s.client_ip, s.client_port, s.last_sent);
  s.deadline_ns = m_link.now_ns() + s.interval_ns;
}

void TftpServer::on_timer(u64 now_ns) {
  // The gateway's timer is shared and holds one deadline: whatever woke us
  // (ours or another service's), no request of ours is pending any more.
  m_wake_ns = kNever;
  for (std::size_t i = 0; i < m_sessions.size();) {
    Session& s = m_sessions[i];
    if (s.deadline_ns > now_ns) {
      ++i;
      continue;
    }
    if (s.retries >= kMaxRetries) {
      ++m_counters.sessions_timed_out;
      end_session(i);
      continue;
    }
    ++s.retries;
    ++m_counters.retransmissions;
    send_udp(s.client_ip, s.client_port, s.last_sent);
    s.deadline_ns = now_ns + s.interval_ns;
    ++i;
  }
  arm_timer();
}

void TftpServer::arm_timer() {
  const u64 d = next_deadline();
  if (d == kNever || (m_wake_ns != kNever && m_wake_ns <= d)) return;
  m_wake_ns = d;
  m_link.wake_at(d);
}

void TftpServer::end_session(std::size_t index) {
  // The contents stay in the store (a snapshot may come back to them).
  m_sessions.erase(m_sessions.begin() + static_cast<std::ptrdiff_t>(index));
}

void TftpServer::send_error(u32 client_ip, u16 client_port, TftpErrorCode code, std::string_view message) {
  std::array<u8, 128> out{};
  const auto n = wire::build_tftp_error(out, code, message);
  if (!n) throw std::logic_error("tftp: ERROR does not fit its buffer");
  ++m_counters.errors_sent;
  send_udp(client_ip, client_port, std::span<const u8>(out).first(*n));
}

bool TftpServer::send_udp(u32 client_ip, u16 client_port, std::span<const u8> message) {
  const u32 server_ip = m_link.config().host;
  std::vector<u8> out(wire::kUdpHeaderSize + message.size());
  if (!wire::build_udp(out, server_ip, client_ip, wire::kTftpServerPort, client_port, message)) {
    throw std::logic_error("tftp: datagram does not fit");
  }
  GatewayDatagram d;
  d.source = server_ip;
  d.destination = client_ip;
  d.protocol = static_cast<u8>(wire::IpProtocol::udp);
  // libslirp marks TFTP low-delay (its UDP TOS table), so does reel: the
  // differential test compares every header field.
  d.tos = kTosLowDelay;
  if (m_link.send_to_guest(d, out)) return true;
  ++m_counters.send_failures;
  return false;
}

}  // namespace reel
