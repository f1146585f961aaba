#pragma once

#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/types.h"

namespace reel {

// A journal that cannot be read: what() is one line naming the file, the
// problem and the byte offset.
class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr u32 kJournalFormatVersion = 1;

enum class EventKind : u8 {
  host_time = 1,       // i64 ns since the epoch
  file_read = 2,       // path, ok, size, hash, error, [embedded bytes]
  console_open = 3,    // channel, name
  console_input = 4,   // channel, bytes
  console_digest = 5,  // channel, total bytes, running XXH3 of them
  idle_advance = 6,    // virtual ns to resume at
  checkpoint = 7,      // machine state hash
  end = 8,             // RunEnd
};
const char* event_kind_name(EventKind kind);
// Synchronous events answer a request the machine makes; the others are
// delivered at loop boundaries.
bool is_synchronous(EventKind kind);

struct JournalEvent {
  EventKind kind = EventKind::end;
  u64 icount = 0;
  std::vector<u8> payload;
  u64 offset = 0;  // byte offset of the chunk holding it (for messages)
};

struct InputFile {
  std::string path;  // as the options named it
  u64 size = 0;
  u64 hash = 0;  // XXH3-64 of the contents
  bool embedded = false;
  std::vector<u8> bytes;  // when embedded
};

struct JournalHeader {
  std::string reel_version;
  std::vector<std::string> argv;  // the machine options, re-parsed by replay
  std::string cwd;
  u64 seed = 0;
  u64 checkpoint_interval = 0;
  std::vector<InputFile> inputs;
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Little-endian encoding of event payloads. The reader checks every length
// against what is left and throws JournalError naming the offset.
class ByteWriter {
 public:
  void u8v(u8 v) { m_bytes.push_back(v); }
  void u32v(u32 v);
  void u64v(u64 v);
  void i64v(i64 v) { u64v(static_cast<u64>(v)); }
  void str(std::string_view s);
  void bytes(std::span<const u8> b);  // length-prefixed
  void raw(std::span<const u8> b) { m_bytes.insert(m_bytes.end(), b.begin(), b.end()); }
  std::vector<u8>& data() { return m_bytes; }

 private:
  std::vector<u8> m_bytes;
};

class ByteReader {
 public:
  ByteReader(std::span<const u8> bytes, u64 base_offset, std::string what)
      : m_bytes(bytes), m_base(base_offset), m_what(std::move(what)) {}
  u8 u8v();
  u32 u32v();
  u64 u64v();
  i64 i64v() { return static_cast<i64>(u64v()); }
  std::string str();
  std::vector<u8> bytes();
  std::span<const u8> rest();
  bool done() const { return m_pos == m_bytes.size(); }
  u64 offset() const { return m_base + m_pos; }

 private:
  void need(size_t n);
  std::span<const u8> m_bytes;
  size_t m_pos = 0;
  u64 m_base;
  std::string m_what;
};

// Writes a journal: the magic and version, a header chunk (written lazily,
// so files read while the machine is built still enter the header's input
// table), then event chunks. Each chunk is flushed to the OS as it is
// written, so an interrupted recording leaves a valid journal up to its
// last complete chunk. A write error (disk full) is reported once and
// recording stops; the run itself goes on.
class JournalWriter {
 public:
  JournalWriter(const std::string& path, JournalHeader header);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  bool header_written() const { return m_header_written; }
  JournalHeader& header() { return m_header; }

  void append(EventKind kind, u64 icount, std::span<const u8> payload);
  // Writes buffered events as one chunk.
  void flush();
  void close();
  const std::string& path() const { return m_path; }
  u64 events_written() const { return m_events; }
  u64 bytes_written() const { return m_offset; }

 private:
  void write_chunk(u32 type, const std::vector<u8>& payload);
  void write_raw(const void* data, size_t size);

  std::string m_path;
  std::FILE* m_file = nullptr;
  JournalHeader m_header;
  bool m_header_written = false;
  bool m_failed = false;
  std::vector<u8> m_pending;
  u64 m_last_icount = 0;
  u64 m_events = 0;
  u64 m_offset = 0;
};

// Reads and checks a whole journal at open, so a corrupted file is refused
// before anything runs.
class JournalReader {
 public:
  struct Options {
    bool allow_truncated = false;  // use the valid prefix of a torn file
  };
  static JournalReader open(const std::string& path, Options options);
  static JournalReader parse(std::span<const u8> bytes, const std::string& name, Options options);

  const JournalHeader& header() const { return m_header; }
  const std::vector<JournalEvent>& events() const { return m_events; }
  bool has_end() const { return !m_events.empty() && m_events.back().kind == EventKind::end; }
  bool truncated() const { return m_truncated; }
  u32 format_version() const { return m_version; }
  u64 file_size() const { return m_size; }

 private:
  JournalHeader m_header;
  std::vector<JournalEvent> m_events;
  bool m_truncated = false;
  u32 m_version = 0;
  u64 m_size = 0;
};

// Event payload codecs shared by the recording and replaying sides.
struct EndRecord {
  u8 kind = 0;
  i32 status = 0;
  u64 icount = 0;
  u64 time_ns = 0;
  u64 state_hash = 0;
};
std::vector<u8> encode_end(const EndRecord& end);
EndRecord decode_end(const JournalEvent& event, const std::string& name);

}  // namespace reel
