#include "replay/journal.h"

#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <fstream>
#include <iterator>
#include <ostream>
#include <streambuf>

namespace reel {

namespace {

constexpr char kMagic[8] = {'R', 'E', 'E', 'L', 'J', 'R', 'N', 'L'};
constexpr size_t kPreambleSize = 12;      // magic and format version
constexpr u32 kHeaderChunk = 0x44484a52;  // "RJHD"
constexpr u32 kEventChunk = 0x56454a52;   // "RJEV"
constexpr size_t kChunkHeadSize = 16;     // magic, length, hash
// Far above any real chunk (events are flushed at 64 KiB; only a header
// with embedded files gets big), low enough that a corrupted length is
// recognised as such rather than as a truncation.
constexpr u64 kMaxChunkPayload = u64{1} << 30;
constexpr size_t kFlushThreshold = size_t{64} << 10;

u32 load_u32(const u8* p) { return u32{p[0]} | u32{p[1]} << 8 | u32{p[2]} << 16 | u32{p[3]} << 24; }
u64 load_u64(const u8* p) { return u64{load_u32(p)} | u64{load_u32(p + 4)} << 32; }
void store_u32(u8* p, u32 v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<u8>(v >> (8 * i));
}
void store_u64(u8* p, u64 v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<u8>(v >> (8 * i));
}

std::string at_byte(const std::string& name, u64 offset, const std::string& problem) {
  return name + ": " + problem + " at byte " + std::to_string(offset);
}

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

ByteReader payload_reader(const JournalEvent& e, EventKind kind, const std::string& name) {
  if (e.kind != kind) {
    throw JournalError(at_byte(
        name, e.offset,
        std::string("expected a ") + event_kind_name(kind) + " event, found " + event_kind_name(e.kind)));
  }
  return ByteReader(e.payload, e.offset, name);
}

// Embedded file contents: a flag byte, then the bytes. Flag 1 stores them
// as they are, flag 2 as a zlib stream (format 5 on), chosen when it is
// smaller; the reader inflates into exactly the recorded size and checks the
// hash, so a corrupted stream or a size that lies is refused, never trusted.
constexpr u8 kNotEmbedded = 0, kEmbeddedRaw = 1, kEmbeddedZlib = 2;

void put_embedded(ByteWriter& w, bool embedded, const std::vector<u8>& bytes) {
  if (!embedded) {
    w.u8v(kNotEmbedded);
    return;
  }
  // Level 1 for big files keeps recording fast; they are mostly data that
  // compresses little anyway. Kernels and ROMs get the default level.
  const int level = bytes.size() > (size_t{4} << 20) ? 1 : Z_DEFAULT_COMPRESSION;
  uLongf packed_size = compressBound(static_cast<uLong>(bytes.size()));
  std::vector<u8> packed(packed_size);
  if (!bytes.empty() &&
      compress2(packed.data(), &packed_size, bytes.data(), static_cast<uLong>(bytes.size()), level) == Z_OK &&
      packed_size < bytes.size()) {
    packed.resize(packed_size);
    w.u8v(kEmbeddedZlib);
    w.bytes(packed);
  } else {
    w.u8v(kEmbeddedRaw);
    w.bytes(bytes);
  }
}

// Reads what put_embedded wrote. `what` names the file for messages.
// Returns whether contents were embedded; stored_size is their size in the
// journal.
bool get_embedded(ByteReader& r, u64 size, u64 hash, const std::string& what, std::vector<u8>& out,
                  u64& stored_size) {
  const u8 flag = r.u8v();
  if (flag > kEmbeddedZlib) r.fail("bad embedded flag for " + what);
  if (flag == kNotEmbedded) return false;
  std::vector<u8> stored = r.bytes();
  stored_size = stored.size();
  if (flag == kEmbeddedRaw) {
    out = std::move(stored);
  } else {
    // Deflate cannot expand by more than about 1032:1, so a recorded size
    // beyond that is a lie; checking it first bounds the allocation.
    if (size > kMaxChunkPayload || size > (stored.size() + 64) * 1040) {
      r.fail("embedded contents of " + what + " claim an impossible size");
    }
    out.resize(size);
    uLongf out_size = static_cast<uLongf>(size);
    if (uncompress(out.data(), &out_size, stored.data(), static_cast<uLong>(stored.size())) != Z_OK ||
        out_size != size) {
      r.fail("embedded contents of " + what + " are corrupted (the compressed stream does not inflate)");
    }
  }
  if (out.size() != size || XXH3_64bits(out.data(), out.size()) != hash) {
    r.fail("embedded contents of " + what + " do not match their hash");
  }
  return true;
}

std::vector<u8> encode_header(const JournalHeader& h) {
  ByteWriter w;
  w.str(h.reel_version);
  w.u32v(static_cast<u32>(h.argv.size()));
  for (const auto& a : h.argv) w.str(a);
  w.str(h.cwd);
  w.u64v(h.seed);
  w.u64v(h.checkpoint_interval);
  w.u64v(h.poll_interval);
  w.u32v(static_cast<u32>(h.inputs.size()));
  for (const auto& in : h.inputs) {
    w.str(in.path);
    w.u64v(in.size);
    w.u64v(in.hash);
    put_embedded(w, in.embedded, in.bytes);
  }
  w.u32v(static_cast<u32>(h.metadata.size()));
  for (const auto& [k, v] : h.metadata) {
    w.str(k);
    w.str(v);
  }
  return std::move(w.data());
}

JournalHeader decode_header(ByteReader& r) {
  JournalHeader h;
  h.reel_version = r.str();
  const u32 argc = r.u32v();
  for (u32 i = 0; i < argc; ++i) h.argv.push_back(r.str());
  h.cwd = r.str();
  h.seed = r.u64v();
  h.checkpoint_interval = r.u64v();
  h.poll_interval = r.u64v();
  const u32 ninputs = r.u32v();
  for (u32 i = 0; i < ninputs; ++i) {
    InputFile f;
    f.path = r.str();
    f.size = r.u64v();
    f.hash = r.u64v();
    f.embedded = get_embedded(r, f.size, f.hash, "input file " + f.path, f.bytes, f.stored_size);
    h.inputs.push_back(std::move(f));
  }
  const u32 nmeta = r.u32v();
  for (u32 i = 0; i < nmeta; ++i) {
    std::string k = r.str();
    h.metadata.emplace_back(std::move(k), r.str());
  }
  r.expect_done("header");
  return h;
}

// Decodes the payload by kind, so a journal whose events do not decode is
// refused when it is opened rather than in the middle of a replay.
void validate_event(const JournalEvent& e, const std::string& name) {
  switch (e.kind) {
    case EventKind::host_time:
      (void)decode_host_time(e, name);
      break;
    case EventKind::file_read:
      (void)decode_file_read(e, name);
      break;
    case EventKind::console_open:
      (void)decode_console_open(e, name);
      break;
    case EventKind::console_input:
      (void)decode_console_input(e, name);
      break;
    case EventKind::console_digest:
      (void)decode_console_digest(e, name);
      break;
    case EventKind::idle_advance:
      (void)decode_idle_advance(e, name);
      break;
    case EventKind::checkpoint:
      (void)decode_checkpoint(e, name);
      break;
    case EventKind::end:
      (void)decode_end(e, name);
      break;
    case EventKind::socket_open:
      (void)decode_socket_open(e, name);
      break;
    case EventKind::socket_send:
      (void)decode_socket_send(e, name);
      break;
    case EventKind::socket_control:
      (void)decode_socket_control(e, name);
      break;
    case EventKind::socket_event:
      (void)decode_socket_event(e, name);
      break;
    case EventKind::keyframe:
      (void)decode_keyframe(e, name);
      break;
  }
}

void encode_address(ByteWriter& w, const SocketAddress& a) {
  w.u32v(a.ip);
  w.u32v(a.port);
}
SocketAddress decode_address(ByteReader& r) {
  SocketAddress a;
  a.ip = r.u32v();
  const u32 port = r.u32v();
  if (port > 0xffff) r.fail("bad port " + std::to_string(port));
  a.port = static_cast<u16>(port);
  return a;
}

}  // namespace

const char* event_kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::host_time:
      return "host_time";
    case EventKind::file_read:
      return "file_read";
    case EventKind::console_open:
      return "console_open";
    case EventKind::console_input:
      return "console_input";
    case EventKind::console_digest:
      return "console_digest";
    case EventKind::idle_advance:
      return "idle_advance";
    case EventKind::checkpoint:
      return "checkpoint";
    case EventKind::end:
      return "end";
    case EventKind::socket_open:
      return "socket_open";
    case EventKind::socket_send:
      return "socket_send";
    case EventKind::socket_control:
      return "socket_control";
    case EventKind::socket_event:
      return "socket_event";
    case EventKind::keyframe:
      return "keyframe";
  }
  return "unknown";
}

const char* socket_control_name(SocketControlRecord::Op op) {
  switch (op) {
    case SocketControlRecord::Op::pause:
      return "pause";
    case SocketControlRecord::Op::resume:
      return "resume";
    case SocketControlRecord::Op::shutdown:
      return "shutdown";
    case SocketControlRecord::Op::close:
      return "close";
  }
  return "unknown";
}

bool is_synchronous(EventKind kind) {
  return kind == EventKind::host_time || kind == EventKind::file_read || kind == EventKind::console_open ||
         kind == EventKind::socket_open || kind == EventKind::socket_send ||
         kind == EventKind::socket_control;
}

// ---------------------------------------------------------------- bytes

// Stores go through resize() and memcpy: GCC 12 at -O3 misreads chains of
// push_back and insert on a small vector as overflows (-Wstringop-overflow).
u8* ByteWriter::grow(size_t n) {
  const size_t at = m_bytes.size();
  m_bytes.resize(at + n);
  return m_bytes.data() + at;
}
void ByteWriter::u8v(u8 v) { *grow(1) = v; }
void ByteWriter::u32v(u32 v) { store_u32(grow(4), v); }
void ByteWriter::u64v(u64 v) { store_u64(grow(8), v); }
void ByteWriter::uleb(u64 v) {
  do {
    u8 b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    u8v(b);
  } while (v);
}
void ByteWriter::raw(std::span<const u8> b) {
  if (!b.empty()) std::memcpy(grow(b.size()), b.data(), b.size());
}
void ByteWriter::str(std::string_view s) {
  u32v(static_cast<u32>(s.size()));
  raw({reinterpret_cast<const u8*>(s.data()), s.size()});
}
void ByteWriter::bytes(std::span<const u8> b) {
  u32v(static_cast<u32>(b.size()));
  raw(b);
}

void ByteReader::fail(const std::string& problem) const {
  throw JournalError(at_byte(m_name, offset(), problem));
}

void ByteReader::need(size_t n, const char* what) {
  if (left() < n) fail(std::string(what) + " runs past the end of its record");
}
u8 ByteReader::u8v() {
  need(1, "a byte field");
  return m_bytes[m_pos++];
}
u32 ByteReader::u32v() {
  need(4, "a 32-bit field");
  const u32 v = load_u32(m_bytes.data() + m_pos);
  m_pos += 4;
  return v;
}
u64 ByteReader::u64v() {
  need(8, "a 64-bit field");
  const u64 v = load_u64(m_bytes.data() + m_pos);
  m_pos += 8;
  return v;
}
u64 ByteReader::uleb() {
  u64 v = 0;
  for (unsigned shift = 0;; shift += 7) {
    need(1, "a variable-length number");
    const u8 b = m_bytes[m_pos];
    // The tenth byte may only hold the top bit of a u64.
    if (shift == 63 && (b & 0xfe)) fail("variable-length number overflows 64 bits");
    ++m_pos;
    v |= u64{static_cast<u8>(b & 0x7f)} << shift;
    if (!(b & 0x80)) return v;
  }
}
std::span<const u8> ByteReader::take(size_t n) {
  need(n, "a byte string");
  const std::span<const u8> s = m_bytes.subspan(m_pos, n);
  m_pos += n;
  return s;
}
std::string ByteReader::str() {
  const u32 n = u32v();
  const std::span<const u8> s = take(n);
  return std::string(s.begin(), s.end());
}
std::vector<u8> ByteReader::bytes() {
  const u32 n = u32v();
  const std::span<const u8> s = take(n);
  return std::vector<u8>(s.begin(), s.end());
}
std::span<const u8> ByteReader::rest() { return take(left()); }
void ByteReader::expect_done(const char* what) {
  if (!done()) fail(std::to_string(left()) + " stray bytes after the " + what);
}

// ---------------------------------------------------------------- payloads

std::vector<u8> encode_host_time(i64 ns) {
  ByteWriter w;
  w.i64v(ns);
  return std::move(w.data());
}
std::vector<u8> encode_file_read(const FileReadRecord& r) {
  ByteWriter w;
  w.str(r.path);
  w.u8v(r.ok ? 1 : 0);
  w.u64v(r.size);
  w.u64v(r.hash);
  w.str(r.error);
  put_embedded(w, r.embedded, r.bytes);
  return std::move(w.data());
}
std::vector<u8> encode_console_open(const ConsoleOpenRecord& r) {
  ByteWriter w;
  w.u32v(r.channel);
  w.str(r.name);
  return std::move(w.data());
}
std::vector<u8> encode_console_input(ChannelId channel, std::span<const u8> bytes) {
  ByteWriter w;
  w.u32v(channel);
  w.raw(bytes);
  return std::move(w.data());
}
std::vector<u8> encode_console_digest(const ConsoleDigestRecord& r) {
  ByteWriter w;
  w.u32v(r.channel);
  w.u64v(r.total);
  w.u64v(r.hash);
  return std::move(w.data());
}
std::vector<u8> encode_idle_advance(const IdleAdvanceRecord& r) {
  ByteWriter w;
  w.u64v(r.resume_ns);
  w.u64v(r.deadline_ns);
  return std::move(w.data());
}
std::vector<u8> encode_checkpoint(u64 state_hash) {
  ByteWriter w;
  w.u64v(state_hash);
  return std::move(w.data());
}
std::vector<u8> encode_end(const EndRecord& end) {
  ByteWriter w;
  w.u8v(end.kind);
  w.u32v(static_cast<u32>(end.status));
  w.u64v(end.icount);
  w.u64v(end.time_ns);
  w.u64v(end.state_hash);
  w.u32v(static_cast<u32>(end.digests.size()));
  for (const auto& d : end.digests) {
    w.u32v(d.channel);
    w.u64v(d.total);
    w.u64v(d.hash);
  }
  return std::move(w.data());
}

std::vector<u8> encode_socket_open(const SocketOpenRecord& r) {
  ByteWriter w;
  w.u8v(static_cast<u8>(r.spec.kind));
  w.str(r.spec.host);
  w.u32v(r.spec.port);
  w.str(r.spec.local_host);
  w.u8v(r.result.ok ? 1 : 0);
  w.u32v(r.result.id);
  w.str(r.result.error);
  encode_address(w, r.result.local);
  return std::move(w.data());
}
std::vector<u8> encode_socket_send(const SocketSendRecord& r) {
  ByteWriter w;
  w.u32v(r.socket);
  w.u8v(r.has_to ? 1 : 0);
  encode_address(w, r.to);
  w.uleb(r.size);
  w.u64v(r.hash);
  w.uleb(r.accepted);
  return std::move(w.data());
}
std::vector<u8> encode_socket_control(const SocketControlRecord& r) {
  ByteWriter w;
  w.u32v(r.socket);
  w.u8v(static_cast<u8>(r.op));
  return std::move(w.data());
}
std::vector<u8> encode_socket_event(const SocketEvent& e) {
  ByteWriter w;
  w.u8v(static_cast<u8>(e.kind));
  w.u32v(e.socket);
  w.u32v(e.accepted);
  encode_address(w, e.peer);
  w.str(e.error);
  w.raw(e.bytes);  // to the payload's end
  return std::move(w.data());
}

i64 decode_host_time(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::host_time, name);
  const i64 v = r.i64v();
  r.expect_done("host_time event");
  return v;
}
FileReadRecord decode_file_read(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::file_read, name);
  FileReadRecord f;
  f.path = r.str();
  const u8 ok = r.u8v();
  f.size = r.u64v();
  f.hash = r.u64v();
  f.error = r.str();
  if (ok > 1) r.fail("bad flag in file_read event");
  f.ok = ok == 1;
  f.embedded = get_embedded(r, f.size, f.hash, f.path, f.bytes, f.stored_size);
  r.expect_done("file_read event");
  return f;
}
ConsoleOpenRecord decode_console_open(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::console_open, name);
  ConsoleOpenRecord c;
  c.channel = r.u32v();
  c.name = r.str();
  r.expect_done("console_open event");
  return c;
}
ConsoleInputRecord decode_console_input(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::console_input, name);
  ConsoleInputRecord c;
  c.channel = r.u32v();
  const std::span<const u8> rest = r.rest();
  c.bytes.assign(rest.begin(), rest.end());
  return c;
}
ConsoleDigestRecord decode_console_digest(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::console_digest, name);
  ConsoleDigestRecord d;
  d.channel = r.u32v();
  d.total = r.u64v();
  d.hash = r.u64v();
  r.expect_done("console_digest event");
  return d;
}
IdleAdvanceRecord decode_idle_advance(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::idle_advance, name);
  IdleAdvanceRecord a;
  a.resume_ns = r.u64v();
  a.deadline_ns = r.u64v();
  r.expect_done("idle_advance event");
  return a;
}
namespace {

// A stream buffer that deflates (zlib format, level 1) what is written to
// it. Level 1: a keyframe is taken while the guest runs, and machine state
// is mostly zero pages, which any level squeezes.
class DeflateStreambuf : public std::streambuf {
 public:
  DeflateStreambuf() {
    m_ok = deflateInit(&m_z, 1) == Z_OK;
    setp(m_in.data(), m_in.data() + m_in.size());
  }
  ~DeflateStreambuf() override { deflateEnd(&m_z); }
  DeflateStreambuf(const DeflateStreambuf&) = delete;
  DeflateStreambuf& operator=(const DeflateStreambuf&) = delete;

  // Ends the stream; `total` gets the uncompressed byte count. False when
  // zlib failed (only on allocation failure).
  bool finish(std::vector<u8>& out, u64& total) {
    drain(Z_FINISH);
    m_out.resize(m_used);
    out = std::move(m_out);
    total = m_total;
    return m_ok;
  }

 protected:
  int_type overflow(int_type c) override {
    drain(Z_NO_FLUSH);
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    // RAM arrives as one large write: deflate it in place, no copy.
    if (n < static_cast<std::streamsize>(m_in.size())) return std::streambuf::xsputn(s, n);
    drain(Z_NO_FLUSH);
    feed(reinterpret_cast<const u8*>(s), static_cast<u64>(n), Z_NO_FLUSH);
    return n;
  }

 private:
  void drain(int flush) {
    feed(reinterpret_cast<const u8*>(pbase()), static_cast<u64>(pptr() - pbase()), flush);
    setp(m_in.data(), m_in.data() + m_in.size());
  }
  void feed(const u8* data, u64 n, int flush) {
    m_total += n;
    if (!m_ok) return;
    constexpr u64 kPiece = u64{1} << 30;  // avail_in is a 32-bit uInt
    do {
      const u64 piece = std::min(n, kPiece);
      const int f = piece == n ? flush : Z_NO_FLUSH;
      m_z.next_in = const_cast<Bytef*>(data);
      m_z.avail_in = static_cast<uInt>(piece);
      for (;;) {
        if (m_out.size() - m_used < 4096) m_out.resize(std::max<size_t>(m_out.size() * 2, 1 << 16));
        m_z.next_out = m_out.data() + m_used;
        m_z.avail_out = static_cast<uInt>(std::min<size_t>(m_out.size() - m_used, kPiece));
        const int rc = deflate(&m_z, f);
        m_used = static_cast<size_t>(m_z.next_out - m_out.data());
        if (rc == Z_STREAM_ERROR) {
          m_ok = false;
          return;
        }
        if (f == Z_FINISH ? rc == Z_STREAM_END : (m_z.avail_in == 0 && m_z.avail_out != 0)) break;
      }
      data += piece;
      n -= piece;
    } while (n > 0);
  }

  z_stream m_z{};
  bool m_ok = false;
  std::array<char, 1 << 16> m_in{};
  std::vector<u8> m_out;
  size_t m_used = 0;
  u64 m_total = 0;
};

std::vector<u8> keyframe_payload(u64 state_hash, const std::vector<ConsoleDigestRecord>& consoles,
                                 u64 state_size, std::span<const u8> packed) {
  ByteWriter w;
  w.u64v(state_hash);
  w.u32v(static_cast<u32>(consoles.size()));
  for (const ConsoleDigestRecord& d : consoles) {
    w.u32v(d.channel);
    w.u64v(d.total);
    w.u64v(d.hash);
  }
  w.u64v(state_size);
  w.bytes(packed);
  return std::move(w.data());
}

}  // namespace

std::vector<u8> encode_keyframe(u64 state_hash, const std::vector<ConsoleDigestRecord>& consoles,
                                const std::function<void(std::ostream&)>& write_state) {
  DeflateStreambuf buf;
  {
    std::ostream os(&buf);
    write_state(os);
    os.flush();
  }
  std::vector<u8> packed;
  u64 total = 0;
  // A failed deflate leaves an empty stream, which fails to inflate, loudly.
  if (!buf.finish(packed, total)) packed.clear();
  return keyframe_payload(state_hash, consoles, total, packed);
}

std::vector<u8> encode_keyframe(u64 state_hash, const std::vector<ConsoleDigestRecord>& consoles,
                                std::span<const u8> state) {
  return encode_keyframe(state_hash, consoles, [&](std::ostream& os) {
    os.write(reinterpret_cast<const char*>(state.data()), static_cast<std::streamsize>(state.size()));
  });
}

KeyframeRecord decode_keyframe(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::keyframe, name);
  KeyframeRecord k;
  k.state_hash = r.u64v();
  const u32 n = r.u32v();
  if (n > r.left() / 20) r.fail("keyframe event claims " + std::to_string(n) + " consoles");
  for (u32 i = 0; i < n; ++i) {
    ConsoleDigestRecord d;
    d.channel = r.u32v();
    d.total = r.u64v();
    d.hash = r.u64v();
    k.consoles.push_back(d);
  }
  k.state_size = r.u64v();
  k.packed = r.bytes();
  r.expect_done("keyframe event");
  // Deflate expands at most about 1032:1: a larger claim is a lie, and
  // refusing it here bounds what keyframe_state allocates.
  if (k.state_size > kMaxChunkPayload * 4 || k.state_size > (k.packed.size() + 64) * 1040)
    ByteReader(e.payload, e.offset, name).fail("keyframe claims an impossible state size");
  return k;
}

std::vector<u8> keyframe_state(const JournalEvent& e, const KeyframeRecord& k, const std::string& name) {
  std::vector<u8> out(k.state_size);
  uLongf out_size = static_cast<uLongf>(k.state_size);
  if (uncompress(out.data(), &out_size, k.packed.data(), static_cast<uLong>(k.packed.size())) != Z_OK ||
      out_size != k.state_size) {
    throw JournalError(name + ": keyframe at icount " + std::to_string(e.icount) + " (byte offset " +
                       std::to_string(e.offset) + ") is corrupted: its compressed state does not inflate");
  }
  return out;
}

u64 decode_checkpoint(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::checkpoint, name);
  const u64 v = r.u64v();
  r.expect_done("checkpoint event");
  return v;
}
EndRecord decode_end(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::end, name);
  EndRecord end;
  end.kind = r.u8v();
  if (end.kind > static_cast<u8>(RunEnd::Kind::journal_end))
    r.fail("unknown run end kind " + std::to_string(end.kind));
  end.status = static_cast<i32>(r.u32v());
  end.icount = r.u64v();
  end.time_ns = r.u64v();
  end.state_hash = r.u64v();
  const u32 n = r.u32v();
  for (u32 i = 0; i < n; ++i) {
    ConsoleDigestRecord d;
    d.channel = r.u32v();
    d.total = r.u64v();
    d.hash = r.u64v();
    end.digests.push_back(d);
  }
  r.expect_done("end event");
  if (end.icount != e.icount) r.fail("end event's instruction count disagrees with its stamp");
  return end;
}

SocketOpenRecord decode_socket_open(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::socket_open, name);
  SocketOpenRecord s;
  const u8 kind = r.u8v();
  if (kind > static_cast<u8>(SocketSpec::Kind::icmp_echo))
    r.fail("unknown socket kind " + std::to_string(kind));
  s.spec.kind = static_cast<SocketSpec::Kind>(kind);
  s.spec.host = r.str();
  const u32 port = r.u32v();
  if (port > 0xffff) r.fail("bad port " + std::to_string(port));
  s.spec.port = static_cast<u16>(port);
  s.spec.local_host = r.str();
  const u8 ok = r.u8v();
  if (ok > 1) r.fail("bad flag in socket_open event");
  s.result.ok = ok == 1;
  s.result.id = r.u32v();
  s.result.error = r.str();
  s.result.local = decode_address(r);
  r.expect_done("socket_open event");
  return s;
}
SocketSendRecord decode_socket_send(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::socket_send, name);
  SocketSendRecord s;
  s.socket = r.u32v();
  const u8 has_to = r.u8v();
  if (has_to > 1) r.fail("bad flag in socket_send event");
  s.has_to = has_to == 1;
  s.to = decode_address(r);
  s.size = r.uleb();
  s.hash = r.u64v();
  s.accepted = r.uleb();
  if (s.accepted > s.size) r.fail("socket_send event took more bytes than it was given");
  r.expect_done("socket_send event");
  return s;
}
SocketControlRecord decode_socket_control(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::socket_control, name);
  SocketControlRecord s;
  s.socket = r.u32v();
  const u8 op = r.u8v();
  if (op > static_cast<u8>(SocketControlRecord::Op::close))
    r.fail("unknown socket operation " + std::to_string(op));
  s.op = static_cast<SocketControlRecord::Op>(op);
  r.expect_done("socket_control event");
  return s;
}
SocketEvent decode_socket_event(const JournalEvent& e, const std::string& name) {
  ByteReader r = payload_reader(e, EventKind::socket_event, name);
  SocketEvent s;
  const u8 kind = r.u8v();
  if (kind > static_cast<u8>(SocketEvent::Kind::error))
    r.fail("unknown socket event kind " + std::to_string(kind));
  s.kind = static_cast<SocketEvent::Kind>(kind);
  s.socket = r.u32v();
  s.accepted = r.u32v();
  s.peer = decode_address(r);
  s.error = r.str();
  const std::span<const u8> rest = r.rest();
  s.bytes.assign(rest.begin(), rest.end());
  return s;
}

std::string describe_event(const JournalEvent& e) {
  std::string s = std::string(event_kind_name(e.kind)) + " at icount " + std::to_string(e.icount);
  // Details help a divergence report; a payload that does not decode (an
  // event built by hand) is described by its kind alone.
  try {
    switch (e.kind) {
      case EventKind::host_time:
        s += " (" + std::to_string(decode_host_time(e, "")) + " ns)";
        break;
      case EventKind::file_read:
        s += " (" + decode_file_read(e, "").path + ")";
        break;
      case EventKind::console_open: {
        const ConsoleOpenRecord c = decode_console_open(e, "");
        s += " (channel " + std::to_string(c.channel) + ", " + c.name + ")";
        break;
      }
      case EventKind::console_input: {
        const ConsoleInputRecord c = decode_console_input(e, "");
        s += " (channel " + std::to_string(c.channel) + ", " + std::to_string(c.bytes.size()) + " bytes)";
        break;
      }
      case EventKind::console_digest: {
        const ConsoleDigestRecord d = decode_console_digest(e, "");
        s += " (channel " + std::to_string(d.channel) + ", " + std::to_string(d.total) + " bytes)";
        break;
      }
      case EventKind::idle_advance:
        s += " (resume at " + std::to_string(decode_idle_advance(e, "").resume_ns) + " ns)";
        break;
      case EventKind::checkpoint:
        s += " (state hash " + hex(decode_checkpoint(e, "")) + ")";
        break;
      case EventKind::end:
        s += " (status " + std::to_string(decode_end(e, "").status) + ")";
        break;
      case EventKind::socket_open: {
        const SocketOpenRecord o = decode_socket_open(e, "");
        s += " (" + o.spec.host + ":" + std::to_string(o.spec.port) +
             (o.result.ok ? ", socket " + std::to_string(o.result.id) : ", failed: " + o.result.error) + ")";
        break;
      }
      case EventKind::socket_send: {
        const SocketSendRecord o = decode_socket_send(e, "");
        s += " (socket " + std::to_string(o.socket) + ", " + std::to_string(o.size) + " bytes, " +
             std::to_string(o.accepted) + " taken)";
        break;
      }
      case EventKind::socket_control: {
        const SocketControlRecord o = decode_socket_control(e, "");
        s += " (socket " + std::to_string(o.socket) + ", " + socket_control_name(o.op) + ")";
        break;
      }
      case EventKind::socket_event: {
        const SocketEvent o = decode_socket_event(e, "");
        s += " (socket " + std::to_string(o.socket) + ", " + socket_event_kind_name(o.kind);
        if (!o.bytes.empty()) s += ", " + std::to_string(o.bytes.size()) + " bytes";
        s += ")";
        break;
      }
      case EventKind::keyframe: {
        const KeyframeRecord k = decode_keyframe(e, "");
        s += " (" + std::to_string(k.state_size) + " bytes of state, " + std::to_string(k.packed.size()) +
             " stored)";
        break;
      }
    }
  } catch (const JournalError&) {
  }
  return s;
}

// ---------------------------------------------------------------- writer

JournalWriter::JournalWriter(const std::string& path, JournalHeader header)
    : m_name(path), m_header(std::move(header)) {
  m_header.reel_version = REEL_VERSION_STRING;
  m_file = std::fopen(path.c_str(), "wb");
  if (!m_file) throw JournalError(path + ": cannot create the journal: " + std::strerror(errno));
  u8 pre[kPreambleSize];
  std::memcpy(pre, kMagic, sizeof kMagic);
  store_u32(pre + 8, kJournalFormatVersion);
  if (write_bytes(pre) && std::fflush(m_file) == 0) {
    m_offset = kPreambleSize;
  } else {
    fail(std::strerror(errno));
  }
}

JournalWriter::JournalWriter(std::ostream& out, JournalHeader header, std::string name)
    : m_name(std::move(name)), m_stream(&out), m_header(std::move(header)) {
  m_header.reel_version = REEL_VERSION_STRING;
  u8 pre[kPreambleSize];
  std::memcpy(pre, kMagic, sizeof kMagic);
  store_u32(pre + 8, kJournalFormatVersion);
  if (write_bytes(pre)) m_offset = kPreambleSize;
}

JournalWriter::~JournalWriter() { close(); }

bool JournalWriter::write_bytes(std::span<const u8> bytes) {
  if (m_file) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), m_file) != bytes.size()) return false;
    return std::fflush(m_file) == 0;
  }
  m_stream->write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  m_stream->flush();
  if (!*m_stream) {
    errno = EIO;
    return false;
  }
  return true;
}

void JournalWriter::fail(const std::string& why) {
  if (m_failed) return;
  m_failed = true;
  m_pending.data().clear();
  // A torn chunk at the end would make the journal unreadable without
  // --allow-truncated; cutting it off keeps every complete chunk usable.
  if (m_file) {
    std::clearerr(m_file);
    if (::ftruncate(::fileno(m_file), static_cast<off_t>(m_offset)) == 0) std::fseek(m_file, 0, SEEK_END);
  }
  m_error = m_name + ": write failed (" + why + "); recording stopped, the journal keeps its first " +
            std::to_string(m_offset) + " bytes";
  std::fprintf(stderr, "reel: %s\n", m_error.c_str());
}

void JournalWriter::write_chunk(u32 magic, std::span<const u8> payload) {
  if (m_failed) return;
  if (payload.size() > kMaxChunkPayload) {
    fail("a chunk of " + std::to_string(payload.size()) + " bytes is larger than the format allows");
    return;
  }
  // One buffer, one write: the chunk reaches the OS whole or not at all
  // as far as this process can tell.
  std::vector<u8> chunk(kChunkHeadSize + payload.size());
  store_u32(chunk.data(), magic);
  store_u32(chunk.data() + 4, static_cast<u32>(payload.size()));
  store_u64(chunk.data() + 8, XXH3_64bits(payload.data(), payload.size()));
  if (!payload.empty()) std::memcpy(chunk.data() + kChunkHeadSize, payload.data(), payload.size());
  if (!write_bytes(chunk)) {
    fail(std::strerror(errno));
    return;
  }
  m_offset += chunk.size();
}

void JournalWriter::flush() {
  if (m_closed || m_failed) return;
  if (!m_header_written) {
    write_chunk(kHeaderChunk, encode_header(m_header));
    m_header_written = true;
  }
  if (!m_pending.data().empty()) {
    write_chunk(kEventChunk, m_pending.data());
    m_pending.data().clear();
  }
}

void JournalWriter::set_keyframes(u64 interval, KeyframeMaker make) {
  m_keyframe_interval = interval;
  m_make_keyframe = interval ? std::move(make) : KeyframeMaker();
  m_next_keyframe = interval;
}

void JournalWriter::append(EventKind kind, u64 icount, std::span<const u8> payload) {
  if (icount < m_last_icount) {
    throw std::logic_error(m_name + ": journal event " + event_kind_name(kind) + " at icount " +
                           std::to_string(icount) + " after one at " + std::to_string(m_last_icount));
  }
  if (m_closed || m_failed) return;
  m_pending.u8v(static_cast<u8>(kind));
  m_pending.uleb(icount - m_last_icount);
  m_pending.uleb(payload.size());
  m_pending.raw(payload);
  m_last_icount = icount;
  ++m_events;
  if (kind == EventKind::checkpoint && m_make_keyframe && icount >= m_next_keyframe) {
    m_next_keyframe = (icount / m_keyframe_interval + 1) * m_keyframe_interval;
    const std::vector<u8> k = m_make_keyframe(icount);
    if (!k.empty()) {
      ++m_keyframes;
      m_keyframe_bytes += k.size();
      append(EventKind::keyframe, icount, k);
      return;  // that append flushed as needed
    }
  }
  if (m_pending.data().size() >= kFlushThreshold) flush();
}

void JournalWriter::close() {
  if (m_closed) return;
  flush();
  m_closed = true;
  if (m_file) {
    if (std::fclose(m_file) != 0 && !m_failed) {
      m_failed = true;
      m_error = m_name + ": closing the journal failed (" + std::strerror(errno) + ")";
      std::fprintf(stderr, "reel: %s\n", m_error.c_str());
    }
    m_file = nullptr;
  }
}

// ---------------------------------------------------------------- reader

JournalReader JournalReader::open(const std::string& path, Options options) {
  // An ifstream opens a directory and then reports a nonsense size.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw JournalError(path + ": cannot open the journal: " + std::strerror(EISDIR));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JournalError(path + ": cannot open the journal: " + std::strerror(errno));
  return read(in, path, options);
}

JournalReader JournalReader::read(std::istream& in, const std::string& name, Options options) {
  std::vector<u8> bytes;
  // One read when the size is known (a file); byte by byte otherwise.
  const std::streampos start = in.tellg();
  if (start != std::streampos(-1) && in.seekg(0, std::ios::end)) {
    const std::streamoff size = in.tellg() - start;
    in.seekg(start);
    if (size > 0) {
      bytes.resize(static_cast<size_t>(size));
      in.read(reinterpret_cast<char*>(bytes.data()), size);
      bytes.resize(static_cast<size_t>(in.gcount()));
    }
  } else {
    in.clear();
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (in.bad()) throw JournalError(name + ": read error");
  return parse(bytes, name, options);
}

std::optional<EndRecord> JournalReader::end_record() const {
  if (!has_end()) return std::nullopt;
  return decode_end(m_events.back(), m_name);
}

JournalReader JournalReader::parse(std::span<const u8> bytes, const std::string& name, Options options) {
  JournalReader r;
  r.m_name = name;
  r.m_size = bytes.size();
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw JournalError(at_byte(name, 0, "not a reel journal (bad magic)"));
  }
  if (bytes.size() < kPreambleSize) throw JournalError(at_byte(name, 8, "truncated format version"));
  r.m_version = load_u32(bytes.data() + 8);
  if (r.m_version < kJournalOldestReadableVersion || r.m_version > kJournalFormatVersion) {
    throw JournalError(at_byte(name, 8,
                               "journal format version " + std::to_string(r.m_version) +
                                   " is not supported (this reel reads versions " +
                                   std::to_string(kJournalOldestReadableVersion) + " to " +
                                   std::to_string(kJournalFormatVersion) + ")"));
  }
  size_t pos = kPreambleSize;
  bool have_header = false;
  u64 icount = 0;
  while (pos < bytes.size()) {
    const size_t left = bytes.size() - pos;
    // A torn tail: what an interrupted write leaves. Only the last chunk
    // can be torn, so only it may be dropped.
    auto torn = [&](const char* problem) {
      if (!options.allow_truncated || !have_header) throw JournalError(at_byte(name, pos, problem));
      r.m_truncated = true;
    };
    if (left < kChunkHeadSize) {
      torn("truncated chunk header (the recording was cut short)");
      break;
    }
    const u8* head = bytes.data() + pos;
    const u32 magic = load_u32(head);
    const u64 length = load_u32(head + 4);
    const u64 hash = load_u64(head + 8);
    if (magic != kHeaderChunk && magic != kEventChunk)
      throw JournalError(at_byte(name, pos, "bad chunk magic"));
    if (length > kMaxChunkPayload) {
      throw JournalError(at_byte(name, pos + 4, "chunk length " + std::to_string(length) + " is too big"));
    }
    if (left - kChunkHeadSize < length) {
      torn("truncated chunk (the recording was cut short)");
      break;
    }
    const std::span<const u8> payload = bytes.subspan(pos + kChunkHeadSize, length);
    if (options.verify_checksums && XXH3_64bits(payload.data(), payload.size()) != hash) {
      // A crash can leave a last chunk of the right length holding zeros.
      if (pos + kChunkHeadSize + length == bytes.size()) {
        torn("chunk checksum mismatch");
        break;
      }
      throw JournalError(at_byte(name, pos, "chunk checksum mismatch"));
    }
    ByteReader br(payload, pos + kChunkHeadSize, name);
    if (magic == kHeaderChunk) {
      if (have_header) throw JournalError(at_byte(name, pos, "a second header chunk"));
      r.m_header = decode_header(br);
      have_header = true;
    } else {
      if (!have_header) throw JournalError(at_byte(name, pos, "an event chunk before the header"));
      if (payload.empty()) throw JournalError(at_byte(name, pos, "an empty event chunk"));
      while (!br.done()) {
        if (r.has_end()) throw JournalError(at_byte(name, br.offset(), "events after the end event"));
        JournalEvent e;
        e.offset = br.offset();
        const u8 kind = br.u8v();
        if (kind < 1 || kind > kLastEventKind) {
          throw JournalError(at_byte(name, e.offset, "unknown event kind " + std::to_string(kind)));
        }
        e.kind = static_cast<EventKind>(kind);
        const u64 delta = br.uleb();
        if (delta > kNever - 1 - icount)
          throw JournalError(at_byte(name, e.offset, "instruction count overflows"));
        icount += delta;
        e.icount = icount;
        const u64 size = br.uleb();
        if (size > br.left()) throw JournalError(at_byte(name, e.offset, "event payload overruns its chunk"));
        const std::span<const u8> p = br.take(static_cast<size_t>(size));
        e.payload.assign(p.begin(), p.end());
        validate_event(e, name);
        ++r.m_counts[kind];
        r.m_events.push_back(std::move(e));
      }
    }
    pos += kChunkHeadSize + length;
  }
  if (!have_header) throw JournalError(at_byte(name, pos, "no header chunk (the recording wrote nothing)"));
  r.m_valid_size = pos;
  return r;
}

}  // namespace reel
