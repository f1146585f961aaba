#include "replay/journal.h"

#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace reel {

namespace {

constexpr char kMagic[8] = {'R', 'E', 'E', 'L', 'J', 'R', 'N', 'L'};
constexpr u32 kChunkMagic = 0x4b43'4c52;  // "RLCK"
constexpr u32 kChunkHeader = 1;
constexpr u32 kChunkEvents = 2;
constexpr size_t kChunkHeaderSize = 24;  // magic, type, length, reserved, hash
constexpr u32 kMaxChunk = 64u << 20;
constexpr size_t kFlushThreshold = 64u << 10;

u32 load_u32(const u8* p) { return u32{p[0]} | u32{p[1]} << 8 | u32{p[2]} << 16 | u32{p[3]} << 24; }
u64 load_u64(const u8* p) { return u64{load_u32(p)} | u64{load_u32(p + 4)} << 32; }

std::string at(const std::string& name, u64 offset, const std::string& problem) {
  return name + ": " + problem + " at byte " + std::to_string(offset);
}

}  // namespace

const char* event_kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::host_time: return "host_time";
    case EventKind::file_read: return "file_read";
    case EventKind::console_open: return "console_open";
    case EventKind::console_input: return "console_input";
    case EventKind::console_digest: return "console_digest";
    case EventKind::idle_advance: return "idle_advance";
    case EventKind::checkpoint: return "checkpoint";
    case EventKind::end: return "end";
  }
  return "unknown";
}

bool is_synchronous(EventKind kind) {
  return kind == EventKind::host_time || kind == EventKind::file_read || kind == EventKind::console_open;
}

void ByteWriter::u32v(u32 v) {
  for (int i = 0; i < 4; ++i) m_bytes.push_back(static_cast<u8>(v >> (8 * i)));
}
void ByteWriter::u64v(u64 v) {
  for (int i = 0; i < 8; ++i) m_bytes.push_back(static_cast<u8>(v >> (8 * i)));
}
void ByteWriter::str(std::string_view s) {
  u32v(static_cast<u32>(s.size()));
  m_bytes.insert(m_bytes.end(), s.begin(), s.end());
}
void ByteWriter::bytes(std::span<const u8> b) {
  u32v(static_cast<u32>(b.size()));
  raw(b);
}

void ByteReader::need(size_t n) {
  if (m_bytes.size() - m_pos < n) throw JournalError(at(m_what, offset(), "record runs past the end of its chunk"));
}
u8 ByteReader::u8v() {
  need(1);
  return m_bytes[m_pos++];
}
u32 ByteReader::u32v() {
  need(4);
  const u32 v = load_u32(m_bytes.data() + m_pos);
  m_pos += 4;
  return v;
}
u64 ByteReader::u64v() {
  need(8);
  const u64 v = load_u64(m_bytes.data() + m_pos);
  m_pos += 8;
  return v;
}
std::string ByteReader::str() {
  const u32 n = u32v();
  need(n);
  std::string s(reinterpret_cast<const char*>(m_bytes.data() + m_pos), n);
  m_pos += n;
  return s;
}
std::vector<u8> ByteReader::bytes() {
  const u32 n = u32v();
  need(n);
  std::vector<u8> b(m_bytes.begin() + static_cast<std::ptrdiff_t>(m_pos),
                    m_bytes.begin() + static_cast<std::ptrdiff_t>(m_pos + n));
  m_pos += n;
  return b;
}
std::span<const u8> ByteReader::rest() {
  std::span<const u8> r = m_bytes.subspan(m_pos);
  m_pos = m_bytes.size();
  return r;
}

// ---------------------------------------------------------------- writer

JournalWriter::JournalWriter(const std::string& path, JournalHeader header)
    : m_path(path), m_header(std::move(header)) {
  m_header.reel_version = REEL_VERSION_STRING;
  m_file = std::fopen(path.c_str(), "wb");
  if (!m_file) throw JournalError(path + ": cannot create journal: " + std::strerror(errno));
  write_raw(kMagic, sizeof kMagic);
  u8 version[4];
  for (int i = 0; i < 4; ++i) version[i] = static_cast<u8>(kJournalFormatVersion >> (8 * i));
  write_raw(version, 4);
}

JournalWriter::~JournalWriter() { close(); }

void JournalWriter::write_raw(const void* data, size_t size) {
  if (m_failed || !m_file) return;
  if (std::fwrite(data, 1, size, m_file) != size) {
    std::fprintf(stderr, "reel: %s: write failed (%s); the journal stops at byte %llu\n", m_path.c_str(),
                 std::strerror(errno), static_cast<unsigned long long>(m_offset));
    m_failed = true;
    return;
  }
  m_offset += size;
}

void JournalWriter::write_chunk(u32 type, const std::vector<u8>& payload) {
  u8 head[kChunkHeaderSize] = {};
  const u32 fields[4] = {kChunkMagic, type, static_cast<u32>(payload.size()), 0};
  for (int f = 0; f < 4; ++f)
    for (int i = 0; i < 4; ++i) head[f * 4 + i] = static_cast<u8>(fields[f] >> (8 * i));
  const u64 hash = XXH3_64bits(payload.data(), payload.size());
  for (int i = 0; i < 8; ++i) head[16 + i] = static_cast<u8>(hash >> (8 * i));
  write_raw(head, sizeof head);
  write_raw(payload.data(), payload.size());
  if (!m_failed && m_file && std::fflush(m_file) != 0) {
    std::fprintf(stderr, "reel: %s: write failed (%s)\n", m_path.c_str(), std::strerror(errno));
    m_failed = true;
  }
}

void JournalWriter::flush() {
  if (!m_file) return;
  if (!m_header_written) {
    ByteWriter w;
    w.str(m_header.reel_version);
    w.u32v(static_cast<u32>(m_header.argv.size()));
    for (const auto& a : m_header.argv) w.str(a);
    w.str(m_header.cwd);
    w.u64v(m_header.seed);
    w.u64v(m_header.checkpoint_interval);
    w.u32v(static_cast<u32>(m_header.inputs.size()));
    for (const auto& in : m_header.inputs) {
      w.str(in.path);
      w.u64v(in.size);
      w.u64v(in.hash);
      w.u8v(in.embedded ? 1 : 0);
      if (in.embedded) w.bytes(in.bytes);
    }
    w.u32v(static_cast<u32>(m_header.metadata.size()));
    for (const auto& [k, v] : m_header.metadata) {
      w.str(k);
      w.str(v);
    }
    write_chunk(kChunkHeader, w.data());
    m_header_written = true;
  }
  if (!m_pending.empty()) {
    write_chunk(kChunkEvents, m_pending);
    m_pending.clear();
  }
}

void JournalWriter::append(EventKind kind, u64 icount, std::span<const u8> payload) {
  ByteWriter w;
  w.u8v(static_cast<u8>(kind));
  w.u64v(icount);
  w.bytes(payload);
  m_pending.insert(m_pending.end(), w.data().begin(), w.data().end());
  m_last_icount = icount;
  ++m_events;
  if (m_pending.size() >= kFlushThreshold) flush();
}

void JournalWriter::close() {
  if (!m_file) return;
  flush();
  std::fclose(m_file);
  m_file = nullptr;
}

// ---------------------------------------------------------------- reader

JournalReader JournalReader::open(const std::string& path, Options options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JournalError(path + ": cannot open journal: " + std::strerror(errno));
  std::vector<u8> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(bytes, path, options);
}

JournalReader JournalReader::parse(std::span<const u8> bytes, const std::string& name, Options options) {
  JournalReader r;
  r.m_size = bytes.size();
  if (bytes.size() < 12 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw JournalError(at(name, 0, "not a reel journal (bad magic)"));
  }
  r.m_version = load_u32(bytes.data() + 8);
  if (r.m_version != kJournalFormatVersion) {
    throw JournalError(at(name, 8, "journal format version " + std::to_string(r.m_version) +
                                       " is not supported (this reel reads version " +
                                       std::to_string(kJournalFormatVersion) + ")"));
  }
  size_t pos = 12;
  bool have_header = false;
  bool ended = false;
  u64 last_icount = 0;
  while (pos < bytes.size()) {
    if (ended) throw JournalError(at(name, pos, "data after the end record"));
    if (bytes.size() - pos < kChunkHeaderSize) {
      if (options.allow_truncated && have_header) {
        r.m_truncated = true;
        break;
      }
      throw JournalError(at(name, pos, "truncated chunk header"));
    }
    const u8* h = bytes.data() + pos;
    if (load_u32(h) != kChunkMagic) throw JournalError(at(name, pos, "bad chunk magic"));
    if (load_u32(h + 12) != 0) throw JournalError(at(name, pos + 12, "bad chunk header (reserved field set)"));
    const u32 type = load_u32(h + 4);
    const u32 length = load_u32(h + 8);
    const u64 hash = load_u64(h + 16);
    if (length > kMaxChunk) throw JournalError(at(name, pos, "chunk length " + std::to_string(length) + " too large"));
    if (bytes.size() - pos - kChunkHeaderSize < length) {
      if (options.allow_truncated && have_header) {
        r.m_truncated = true;
        break;
      }
      throw JournalError(at(name, pos, "truncated chunk (the recording was cut short)"));
    }
    const std::span<const u8> payload = bytes.subspan(pos + kChunkHeaderSize, length);
    if (XXH3_64bits(payload.data(), payload.size()) != hash) {
      throw JournalError(at(name, pos, "chunk checksum mismatch"));
    }
    ByteReader br(payload, pos + kChunkHeaderSize, name);
    if (type == kChunkHeader) {
      if (have_header) throw JournalError(at(name, pos, "second header chunk"));
      JournalHeader& hd = r.m_header;
      hd.reel_version = br.str();
      const u32 argc = br.u32v();
      for (u32 i = 0; i < argc; ++i) hd.argv.push_back(br.str());
      hd.cwd = br.str();
      hd.seed = br.u64v();
      hd.checkpoint_interval = br.u64v();
      const u32 ninputs = br.u32v();
      for (u32 i = 0; i < ninputs; ++i) {
        InputFile f;
        f.path = br.str();
        f.size = br.u64v();
        f.hash = br.u64v();
        f.embedded = br.u8v() != 0;
        if (f.embedded) f.bytes = br.bytes();
        hd.inputs.push_back(std::move(f));
      }
      const u32 nmeta = br.u32v();
      for (u32 i = 0; i < nmeta; ++i) {
        std::string k = br.str();
        hd.metadata.emplace_back(std::move(k), br.str());
      }
      if (!br.done()) throw JournalError(at(name, br.offset(), "trailing bytes in header"));
      have_header = true;
    } else if (type == kChunkEvents) {
      if (!have_header) throw JournalError(at(name, pos, "events before the header"));
      while (!br.done()) {
        JournalEvent e;
        e.offset = br.offset();
        const u8 kind = br.u8v();
        if (kind < 1 || kind > static_cast<u8>(EventKind::end)) {
          throw JournalError(at(name, e.offset, "unknown event kind " + std::to_string(kind)));
        }
        e.kind = static_cast<EventKind>(kind);
        e.icount = br.u64v();
        if (e.icount < last_icount) throw JournalError(at(name, e.offset, "event instruction counts go backwards"));
        last_icount = e.icount;
        e.payload = br.bytes();
        if (e.kind == EventKind::end) ended = true;
        r.m_events.push_back(std::move(e));
        if (ended && !br.done()) throw JournalError(at(name, br.offset(), "events after the end record"));
      }
    } else {
      throw JournalError(at(name, pos, "unknown chunk type " + std::to_string(type)));
    }
    pos += kChunkHeaderSize + length;
  }
  if (!have_header) throw JournalError(at(name, pos, "journal has no header (the recording wrote nothing)"));
  return r;
}

std::vector<u8> encode_end(const EndRecord& end) {
  ByteWriter w;
  w.u8v(end.kind);
  w.u32v(static_cast<u32>(end.status));
  w.u64v(end.icount);
  w.u64v(end.time_ns);
  w.u64v(end.state_hash);
  return std::move(w.data());
}

EndRecord decode_end(const JournalEvent& event, const std::string& name) {
  ByteReader br(event.payload, event.offset, name);
  EndRecord e;
  e.kind = br.u8v();
  e.status = static_cast<i32>(br.u32v());
  e.icount = br.u64v();
  e.time_ns = br.u64v();
  e.state_hash = br.u64v();
  return e;
}

}  // namespace reel
