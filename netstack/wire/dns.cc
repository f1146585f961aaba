#include "netstack/wire/dns.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace reel::wire {

namespace {

u16 load16(std::span<const u8> b, std::size_t at) { return static_cast<u16>((b[at] << 8) | b[at + 1]); }

u32 load32(std::span<const u8> b, std::size_t at) {
  return (u32{b[at]} << 24) | (u32{b[at + 1]} << 16) | (u32{b[at + 2]} << 8) | u32{b[at + 3]};
}

void store16(std::span<u8> b, std::size_t at, u16 v) {
  b[at] = static_cast<u8>(v >> 8);
  b[at + 1] = static_cast<u8>(v);
}

void store32(std::span<u8> b, std::size_t at, u32 v) {
  store16(b, at, static_cast<u16>(v >> 16));
  store16(b, at + 2, static_cast<u16>(v));
}

bool is_name_type(u16 type) {
  return type == static_cast<u16>(DnsType::cname) || type == static_cast<u16>(DnsType::ptr) ||
         type == static_cast<u16>(DnsType::ns);
}

// Reads the name at `pos`. `end` receives the offset just past the name as
// it sits at `pos` (past the first pointer if there is one). Every jump must
// land strictly before the run of labels that holds the pointer, so the
// offsets visited fall with each jump and the walk ends; the 255-byte bound
// caps the text.
DnsError read_name(std::span<const u8> msg, std::size_t pos, std::string& out, std::size_t& end) {
  out.clear();
  std::size_t run_start = pos;
  std::size_t wire = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= msg.size()) return DnsError::truncated;
    const u8 len = msg[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= msg.size()) return DnsError::truncated;
      const std::size_t target = (std::size_t{len & 0x3fu} << 8) | msg[pos + 1];
      if (!jumped) end = pos + 2;
      if (target >= msg.size()) return DnsError::pointer_out_of_range;
      if (target > pos) return DnsError::pointer_forward;
      if (target >= run_start) return DnsError::pointer_loop;
      jumped = true;
      run_start = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) return DnsError::bad_label;
    wire += 1 + std::size_t{len};
    if (wire > kDnsMaxNameWire) return DnsError::name_too_long;
    if (len == 0) {
      if (!jumped) end = pos + 1;
      return DnsError::none;
    }
    if (pos + 1 + len > msg.size()) return DnsError::truncated;
    if (!out.empty()) out += '.';
    out.append(reinterpret_cast<const char*>(msg.data() + pos + 1), len);
    pos += 1 + std::size_t{len};
  }
}

DnsError read_records(std::span<const u8> msg, std::size_t& pos, u16 count, std::vector<DnsRecord>& out) {
  for (u16 i = 0; i < count; ++i) {
    DnsRecord rec;
    std::size_t end = 0;
    if (auto e = read_name(msg, pos, rec.name, end); e != DnsError::none) return e;
    pos = end;
    if (msg.size() - pos < 10) return DnsError::truncated;
    rec.type = load16(msg, pos);
    rec.klass = load16(msg, pos + 2);
    rec.ttl = load32(msg, pos + 4);
    const std::size_t rdlength = load16(msg, pos + 8);
    pos += 10;
    if (msg.size() - pos < rdlength) return DnsError::truncated;
    rec.rdata = msg.subspan(pos, rdlength);
    if (rec.type == static_cast<u16>(DnsType::a) && rdlength != 4) return DnsError::bad_rdata;
    if (rec.type == static_cast<u16>(DnsType::aaaa) && rdlength != 16) return DnsError::bad_rdata;
    if (is_name_type(rec.type)) {
      std::size_t name_end = 0;
      // The name may point back anywhere in the message, but its own bytes
      // must fill the rdata exactly.
      if (auto e = read_name(msg.first(pos + rdlength), pos, rec.target, name_end); e != DnsError::none) {
        return e == DnsError::truncated ? DnsError::bad_rdata : e;
      }
      if (name_end != pos + rdlength) return DnsError::bad_rdata;
    }
    pos += rdlength;
    out.push_back(std::move(rec));
  }
  return DnsError::none;
}

// Splits a dotted name into labels. One trailing dot is allowed; "" and
// "." are the root.
bool split_name(std::string_view name, std::vector<std::string_view>& labels) {
  labels.clear();
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return true;
  std::size_t wire = 1;
  for (;;) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > kDnsMaxLabel) return false;
    wire += 1 + label.size();
    labels.push_back(label);
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return wire <= kDnsMaxNameWire;
}

bool labels_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// Suffixes already written, for compression: each entry is the labels of a
// suffix and the offset (from the start of the buffer) where it begins.
struct NameTable {
  struct Entry {
    std::vector<std::string_view> labels;
    std::size_t offset;
  };
  std::vector<Entry> entries;

  std::optional<std::size_t> find(std::span<const std::string_view> suffix) const {
    for (const Entry& e : entries) {
      if (e.labels.size() != suffix.size()) continue;
      bool same = true;
      for (std::size_t i = 0; i < suffix.size() && same; ++i) same = labels_equal(e.labels[i], suffix[i]);
      if (same) return e.offset;
    }
    return std::nullopt;
  }
};

// Writes `name` at `pos` (advanced). With a table, suffixes seen before
// become pointers and new suffixes are remembered. The table's string_views
// refer to the caller's name strings, which outlive the call.
bool write_name(std::span<u8> out, std::size_t& pos, std::string_view name, NameTable* table) {
  std::vector<std::string_view> labels;
  if (!split_name(name, labels)) return false;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::span<const std::string_view> suffix(labels.data() + i, labels.size() - i);
    if (table) {
      if (auto at = table->find(suffix)) {
        if (out.size() - pos < 2) return false;
        store16(out, pos, static_cast<u16>(0xc000 | *at));
        pos += 2;
        return true;
      }
      if (pos < 0x4000) table->entries.push_back({{suffix.begin(), suffix.end()}, pos});
    }
    if (out.size() - pos < 1 + labels[i].size()) return false;
    out[pos] = static_cast<u8>(labels[i].size());
    std::memcpy(out.data() + pos + 1, labels[i].data(), labels[i].size());
    pos += 1 + labels[i].size();
  }
  if (out.size() - pos < 1) return false;
  out[pos++] = 0;
  return true;
}

bool write_header(std::span<u8> out, u16 id, u16 flags, u16 qd, u16 an) {
  if (out.size() < kDnsHeaderSize) return false;
  store16(out, 0, id);
  store16(out, 2, flags);
  store16(out, 4, qd);
  store16(out, 6, an);
  store16(out, 8, 0);
  store16(out, 10, 0);
  return true;
}

bool write_question(std::span<u8> out, std::size_t& pos, std::string_view name, DnsType type,
                    NameTable* table) {
  if (!write_name(out, pos, name, table)) return false;
  if (out.size() - pos < 4) return false;
  store16(out, pos, static_cast<u16>(type));
  store16(out, pos + 2, kDnsClassIn);
  pos += 4;
  return true;
}

}  // namespace

std::string_view to_string(DnsError error) {
  switch (error) {
    case DnsError::none:
      return "none";
    case DnsError::too_short:
      return "too_short";
    case DnsError::truncated:
      return "truncated";
    case DnsError::bad_label:
      return "bad_label";
    case DnsError::name_too_long:
      return "name_too_long";
    case DnsError::pointer_loop:
      return "pointer_loop";
    case DnsError::pointer_forward:
      return "pointer_forward";
    case DnsError::pointer_out_of_range:
      return "pointer_out_of_range";
    case DnsError::bad_rdata:
      return "bad_rdata";
  }
  return "?";
}

std::optional<std::array<u8, 4>> DnsRecord::a() const {
  if (type != static_cast<u16>(DnsType::a) || rdata.size() != 4) return std::nullopt;
  std::array<u8, 4> r{};
  std::copy(rdata.begin(), rdata.end(), r.begin());
  return r;
}

std::optional<std::array<u8, 16>> DnsRecord::aaaa() const {
  if (type != static_cast<u16>(DnsType::aaaa) || rdata.size() != 16) return std::nullopt;
  std::array<u8, 16> r{};
  std::copy(rdata.begin(), rdata.end(), r.begin());
  return r;
}

bool DnsRecord::has_target() const { return is_name_type(type); }

DnsParsed DnsMessage::parse(std::span<const u8> bytes) {
  if (bytes.size() < kDnsHeaderSize) return {std::nullopt, DnsError::too_short};
  DnsMessage m;
  m.m_id = load16(bytes, 0);
  m.m_flags = load16(bytes, 2);
  const u16 qd = load16(bytes, 4);
  const u16 an = load16(bytes, 6);
  const u16 ns = load16(bytes, 8);
  const u16 ar = load16(bytes, 10);
  std::size_t pos = kDnsHeaderSize;
  for (u16 i = 0; i < qd; ++i) {
    DnsQuestion q;
    std::size_t end = 0;
    if (auto e = read_name(bytes, pos, q.name, end); e != DnsError::none) return {std::nullopt, e};
    pos = end;
    if (bytes.size() - pos < 4) return {std::nullopt, DnsError::truncated};
    q.type = load16(bytes, pos);
    q.klass = load16(bytes, pos + 2);
    pos += 4;
    m.m_questions.push_back(std::move(q));
  }
  for (auto [count, list] :
       {std::pair{an, &m.m_answers}, std::pair{ns, &m.m_authorities}, std::pair{ar, &m.m_additionals}}) {
    if (auto e = read_records(bytes, pos, count, *list); e != DnsError::none) return {std::nullopt, e};
  }
  m.m_trailing = bytes.size() - pos;
  return {std::move(m), DnsError::none};
}

std::optional<std::size_t> encode_dns_names(std::span<const std::string_view> names, std::span<u8> out,
                                            DnsCompression compression) {
  NameTable table;
  std::size_t pos = 0;
  for (std::string_view name : names) {
    if (!write_name(out, pos, name, compression == DnsCompression::on ? &table : nullptr))
      return std::nullopt;
  }
  return pos;
}

std::optional<std::size_t> build_dns_query(std::span<u8> out, u16 id, std::string_view name, DnsType type,
                                           DnsRecursion recursion) {
  const u16 flags = recursion == DnsRecursion::desired ? 0x0100 : 0;
  if (!write_header(out, id, flags, 1, 0)) return std::nullopt;
  std::size_t pos = kDnsHeaderSize;
  if (!write_question(out, pos, name, type, nullptr)) return std::nullopt;
  return pos;
}

std::optional<std::size_t> build_dns_response(std::span<u8> out, const DnsResponse& response) {
  if (response.answers.size() > 0xffff) return std::nullopt;
  u16 flags = 0x8000 | 0x0080 | (response.rcode & 0xf);
  if (response.recursion == DnsRecursion::desired) flags |= 0x0100;
  if (!write_header(out, response.id, flags, 1, static_cast<u16>(response.answers.size())))
    return std::nullopt;
  NameTable table;
  std::size_t pos = kDnsHeaderSize;
  if (!write_question(out, pos, response.question_name, response.question_type, &table)) return std::nullopt;
  for (const DnsAnswer& a : response.answers) {
    if (!write_name(out, pos, a.name, &table)) return std::nullopt;
    if (out.size() - pos < 10) return std::nullopt;
    store16(out, pos, static_cast<u16>(a.type));
    store16(out, pos + 2, kDnsClassIn);
    store32(out, pos + 4, a.ttl);
    const std::size_t rdlength_at = pos + 8;
    pos += 10;
    const std::size_t rdata_at = pos;
    if (a.type == DnsType::a || a.type == DnsType::aaaa) {
      const std::size_t want = a.type == DnsType::a ? 4 : 16;
      if (a.address.size() != want || out.size() - pos < want) return std::nullopt;
      std::memcpy(out.data() + pos, a.address.data(), want);
      pos += want;
    } else if (is_name_type(static_cast<u16>(a.type))) {
      if (!write_name(out, pos, a.target, &table)) return std::nullopt;
    } else {
      return std::nullopt;
    }
    store16(out, rdlength_at, static_cast<u16>(pos - rdata_at));
  }
  return pos;
}

}  // namespace reel::wire
