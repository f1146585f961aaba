#include "replay/recording_host_io.h"

#include <xxhash.h>

#include <algorithm>

#include "core/virtual_clock.h"

namespace reel {

namespace {
constexpr u64 kDefaultCheckpointInterval = u64{1} << 24;
}

RecordingHostIO::RecordingHostIO(const std::string& path, JournalHeader header, Options options)
    : LiveHostIO(options), m_writer(path, std::move(header)) {
  JournalHeader& h = m_writer.header();
  if (h.checkpoint_interval == 0) h.checkpoint_interval = kDefaultCheckpointInterval;
  h.poll_interval = LiveHostIO::options().poll_interval;
  m_interval = h.checkpoint_interval;
}

RecordingHostIO::~RecordingHostIO() { m_writer.close(); }

i64 RecordingHostIO::host_time_ns() {
  const i64 t = LiveHostIO::host_time_ns();
  m_writer.append(EventKind::host_time, current_icount(), encode_host_time(t));
  return t;
}

HostFile RecordingHostIO::read_file(const std::string& path) {
  HostFile f = LiveHostIO::read_file(path);
  const u64 hash = f.ok ? XXH3_64bits(f.bytes.data(), f.bytes.size()) : 0;
  if (f.ok && !m_writer.header_written()) {
    // Read while the machine is built (kernel, ROMs): the header lists it
    // so that replay can check it before anything runs.
    InputFile in{path, f.bytes.size(), hash, m_embed_files, {}};
    if (m_embed_files) in.bytes = f.bytes;
    m_writer.header().inputs.push_back(std::move(in));
    return f;
  }
  FileReadRecord r;
  r.path = path;
  r.ok = f.ok;
  r.size = f.bytes.size();
  r.hash = hash;
  r.error = f.error;
  r.embedded = f.ok && m_embed_files;
  if (r.embedded) r.bytes = f.bytes;
  m_writer.append(EventKind::file_read, current_icount(), encode_file_read(r));
  return f;
}

HostFile RecordingHostIO::read_file_under(const std::string& root, const std::string& name) {
  HostFile f = LiveHostIO::read_file_under(root, name);
  // Always an event with the bytes embedded, never the header's input
  // table: the guest picks these names while it runs, and a replay must
  // not depend on the TFTP root still being there.
  FileReadRecord r;
  r.path = jailed_journal_path(root, name);
  r.ok = f.ok;
  r.size = f.bytes.size();
  r.hash = f.ok ? XXH3_64bits(f.bytes.data(), f.bytes.size()) : 0;
  r.error = f.error;
  r.embedded = f.ok;
  if (r.embedded) r.bytes = f.bytes;
  m_writer.append(EventKind::file_read, current_icount(), encode_file_read(r));
  return f;
}

ChannelId RecordingHostIO::open_console(const ConsoleSpec& spec) {
  const ChannelId id = LiveHostIO::open_console(spec);
  m_writer.append(EventKind::console_open, current_icount(), encode_console_open({id, spec.name}));
  m_digested.push_back(0);
  return id;
}

SocketOpenResult RecordingHostIO::socket_open(const SocketSpec& spec) {
  SocketOpenResult r = LiveHostIO::socket_open(spec);
  m_writer.append(EventKind::socket_open, current_icount(), encode_socket_open({spec, r}));
  return r;
}

void RecordingHostIO::journal_send(SocketId socket, const SocketAddress* to, std::span<const u8> bytes,
                                   size_t accepted) {
  SocketSendRecord r;
  r.socket = socket;
  r.has_to = to != nullptr;
  if (to) r.to = *to;
  r.size = bytes.size();
  r.hash = XXH3_64bits(bytes.data(), bytes.size());
  r.accepted = accepted;
  m_writer.append(EventKind::socket_send, current_icount(), encode_socket_send(r));
}

size_t RecordingHostIO::socket_send(SocketId socket, std::span<const u8> bytes) {
  const size_t n = LiveHostIO::socket_send(socket, bytes);
  journal_send(socket, nullptr, bytes, n);
  return n;
}

size_t RecordingHostIO::socket_send_to(SocketId socket, const SocketAddress& to, std::span<const u8> bytes) {
  const size_t n = LiveHostIO::socket_send_to(socket, to, bytes);
  journal_send(socket, &to, bytes, n);
  return n;
}

void RecordingHostIO::journal_control(SocketId socket, SocketControlRecord::Op op) {
  m_writer.append(EventKind::socket_control, current_icount(), encode_socket_control({socket, op}));
}

void RecordingHostIO::socket_pause(SocketId socket, bool paused) {
  LiveHostIO::socket_pause(socket, paused);
  journal_control(socket, paused ? SocketControlRecord::Op::pause : SocketControlRecord::Op::resume);
}

void RecordingHostIO::socket_shutdown(SocketId socket) {
  LiveHostIO::socket_shutdown(socket);
  journal_control(socket, SocketControlRecord::Op::shutdown);
}

void RecordingHostIO::socket_close(SocketId socket) {
  LiveHostIO::socket_close(socket);
  journal_control(socket, SocketControlRecord::Op::close);
}

void RecordingHostIO::on_socket_event(const SocketEvent& event) {
  m_writer.append(EventKind::socket_event, current_icount(), encode_socket_event(event));
  m_input_since_flush = true;
}

void RecordingHostIO::on_input(ChannelId channel, std::span<const u8> bytes) {
  m_writer.append(EventKind::console_input, current_icount(), encode_console_input(channel, bytes));
  m_input_since_flush = true;
}

void RecordingHostIO::write_digests() {
  for (ChannelId id = 0; id < console_count(); ++id) {
    const LiveConsoles::Digest d = console_digest(id);
    if (d.total == m_digested[id]) continue;
    m_writer.append(EventKind::console_digest, current_icount(),
                    encode_console_digest({id, d.total, d.hash}));
    m_digested[id] = d.total;
  }
}

u64 RecordingHostIO::next_stop_icount() {
  return std::min(LiveHostIO::next_stop_icount(), m_next_checkpoint);
}

bool RecordingHostIO::boundary(InputSink& sink) {
  // Same order as replay consumes them: inputs, digests, checkpoint.
  LiveHostIO::boundary(sink);
  write_digests();
  const u64 now = current_icount();
  // A checkpoint also right after every input from outside (console bytes,
  // socket events) took effect: `reel diff` and divergence reports then
  // bound a difference by the input that caused it. Replay reads these as
  // ordinary checkpoints, so the format is unchanged.
  if (now >= m_next_checkpoint || m_input_since_flush) {
    m_writer.append(EventKind::checkpoint, now, encode_checkpoint(state_hash()));
    ++m_checkpoints;
    m_next_checkpoint = (now / m_interval + 1) * m_interval;
    m_writer.flush();
    m_input_since_flush = false;
  }
  if (m_input_since_flush) {
    // Typed input cannot be recreated: make it durable before it acts.
    m_writer.flush();
    m_input_since_flush = false;
  }
  return true;
}

std::optional<u64> RecordingHostIO::idle(std::optional<u64> deadline_ns) {
  // Only an idle() that waits on real time has an outcome replay cannot
  // compute: with a live input source and either pacing (-icount sleep=on)
  // or no timer deadline. Those are journaled, waited out or cut short by
  // input. Every other idle() returns its deadline at once, which replay
  // recomputes: journaling them cost one event per halt (millions in an
  // hour-long session with a terminal attached) for nothing. Replay tells
  // the two apart by the deadline (see ReplayingHostIO::idle).
  const bool waits = has_live_inputs() && (options().pacing || !deadline_ns);
  // The guest waits on the outside world: a good moment to make what it
  // did so far durable, as nothing else needs the time.
  if (waits) m_writer.flush();
  const std::optional<u64> resume = LiveHostIO::idle(deadline_ns);
  if (resume && last_idle_waited()) {
    m_writer.append(EventKind::idle_advance, current_icount(),
                    encode_idle_advance({*resume, deadline_ns.value_or(kNever)}));
  }
  return resume;
}

void RecordingHostIO::finish(const RunEnd& end) {
  EndRecord e;
  e.kind = static_cast<u8>(end.kind);
  e.status = end.status;
  e.icount = end.icount;
  e.time_ns = end.time_ns;
  e.state_hash = end.state_hash;
  for (ChannelId id = 0; id < console_count(); ++id) {
    const LiveConsoles::Digest d = console_digest(id);
    e.digests.push_back({id, d.total, d.hash});
  }
  m_writer.append(EventKind::end, end.icount, encode_end(e));
  m_writer.close();
}

}  // namespace reel
