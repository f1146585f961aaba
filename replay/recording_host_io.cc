#include "replay/recording_host_io.h"

#include <xxhash.h>

#include "core/virtual_clock.h"

namespace reel {

RecordingHostIO::RecordingHostIO(const std::string& path, JournalHeader header, Options options)
    : LiveHostIO(options), m_writer(path, std::move(header)) {
  m_interval = m_writer.header().checkpoint_interval ? m_writer.header().checkpoint_interval : (u64{1} << 24);
  m_writer.header().checkpoint_interval = m_interval;
}

RecordingHostIO::~RecordingHostIO() { m_writer.close(); }

u64 RecordingHostIO::icount() const { return clock() ? clock()->icount() : 0; }

i64 RecordingHostIO::host_time_ns() {
  const i64 t = LiveHostIO::host_time_ns();
  ByteWriter w;
  w.i64v(t);
  m_writer.append(EventKind::host_time, icount(), w.data());
  return t;
}

HostFile RecordingHostIO::read_file(const std::string& path) {
  HostFile f = LiveHostIO::read_file(path);
  const u64 hash = f.ok ? XXH3_64bits(f.bytes.data(), f.bytes.size()) : 0;
  if (f.ok && !m_writer.header_written()) {
    // Read while the machine is built: an input file of the header.
    m_writer.header().inputs.push_back(InputFile{path, f.bytes.size(), hash, false, {}});
    return f;
  }
  ByteWriter w;
  w.str(path);
  w.u8v(f.ok ? 1 : 0);
  w.u64v(f.bytes.size());
  w.u64v(hash);
  w.str(f.error);
  w.u8v(0);  // not embedded
  m_writer.append(EventKind::file_read, icount(), w.data());
  return f;
}

ChannelId RecordingHostIO::open_console(const ConsoleSpec& spec) {
  const ChannelId id = LiveHostIO::open_console(spec);
  ByteWriter w;
  w.u32v(id);
  w.str(spec.name);
  m_writer.append(EventKind::console_open, icount(), w.data());
  m_digested.push_back(0);
  return id;
}

void RecordingHostIO::on_input(ChannelId channel, std::span<const u8> bytes) {
  ByteWriter w;
  w.u32v(channel);
  w.raw(bytes);
  m_writer.append(EventKind::console_input, icount(), w.data());
  m_input_since_flush = true;
}

void RecordingHostIO::write_digests() {
  for (ChannelId id = 0; id < console_count(); ++id) {
    const Digest d = console_digest(id);
    if (d.total == m_digested[id]) continue;
    ByteWriter w;
    w.u32v(id);
    w.u64v(d.total);
    w.u64v(d.hash);
    m_writer.append(EventKind::console_digest, icount(), w.data());
    m_digested[id] = d.total;
  }
}

u64 RecordingHostIO::next_stop_icount() {
  const u64 live = LiveHostIO::next_stop_icount();
  return m_next_checkpoint < live ? m_next_checkpoint : live;
}

bool RecordingHostIO::boundary(InputSink& sink) {
  LiveHostIO::boundary(sink);
  write_digests();
  const u64 now = icount();
  if (now >= m_next_checkpoint) {
    ByteWriter w;
    w.u64v(state_hash());
    m_writer.append(EventKind::checkpoint, now, w.data());
    ++m_checkpoints;
    m_next_checkpoint = (now / m_interval + 1) * m_interval;
    m_writer.flush();
    m_input_since_flush = false;
  }
  if (m_input_since_flush) {
    // Interactive input is precious: make it durable at once.
    m_writer.flush();
    m_input_since_flush = false;
  }
  return true;
}

std::optional<u64> RecordingHostIO::idle(std::optional<u64> deadline_ns) {
  const std::optional<u64> resume = LiveHostIO::idle(deadline_ns);
  if (resume && last_idle_waited()) {
    ByteWriter w;
    w.u64v(*resume);
    m_writer.append(EventKind::idle_advance, icount(), w.data());
  }
  return resume;
}

void RecordingHostIO::finish(const RunEnd& end) {
  write_digests();
  EndRecord e;
  e.kind = static_cast<u8>(end.kind);
  e.status = end.status;
  e.icount = end.icount;
  e.time_ns = end.time_ns;
  e.state_hash = end.state_hash;
  m_writer.append(EventKind::end, end.icount, encode_end(e));
  m_writer.close();
}

}  // namespace reel
