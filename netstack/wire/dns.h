#pragma once

// DNS messages (RFC 1035): a checked view and builders for queries and
// simple responses, plus domain-name encoding with compression that DHCP
// option 119 (RFC 3397) shares.
//
// Names are untrusted and compressed, so the parser walks every name once
// with hard bounds: a compression pointer must point strictly before the
// run of labels it ends (so every jump goes backwards and the walk ends),
// labels are at most 63 bytes, whole names at most 255 bytes on the wire.
// Anything else is refused with a reason before a view exists.

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"

namespace reel::wire {

enum class DnsError : u8 {
  none,
  too_short,             // shorter than the 12-byte header
  truncated,             // a question or record runs past the message
  bad_label,             // label type 01/10 (reserved) or label > 63 bytes
  name_too_long,         // a name longer than 255 bytes on the wire
  pointer_loop,          // a pointer into its own run of labels or itself
  pointer_forward,       // a pointer to a later offset
  pointer_out_of_range,  // a pointer past the end of the message
  bad_rdata,             // A not 4 bytes, AAAA not 16, a name rdata not exactly one name
};

std::string_view to_string(DnsError error);

enum class DnsType : u16 {
  a = 1,
  ns = 2,
  cname = 5,
  soa = 6,
  ptr = 12,
  mx = 15,
  txt = 16,
  aaaa = 28,
  any = 255,
};

inline constexpr u16 kDnsClassIn = 1;
inline constexpr std::size_t kDnsHeaderSize = 12;
inline constexpr std::size_t kDnsMaxNameWire = 255;
inline constexpr std::size_t kDnsMaxLabel = 63;

struct DnsQuestion {
  std::string name;  // dotted, no trailing dot; the root is ""
  u16 type = 0;
  u16 klass = 0;
};

struct DnsRecord {
  std::string name;
  u16 type = 0;
  u16 klass = 0;
  u32 ttl = 0;
  std::span<const u8> rdata;  // into the parsed bytes
  // CNAME, PTR and NS: the target name, decompressed; empty otherwise.
  std::string target;

  // The parser has checked A and AAAA sizes, so these only say "not this
  // type" (nullopt), never "malformed".
  std::optional<std::array<u8, 4>> a() const;
  std::optional<std::array<u8, 16>> aaaa() const;
  bool has_target() const;  // CNAME, PTR or NS
};

struct DnsParsed;

// A parsed message. Names are decoded into bounded strings (a message has
// at most as many records as it has bytes / 11); rdata spans point into
// the bytes given to parse(), which must outlive the view.
class DnsMessage {
 public:
  static DnsParsed parse(std::span<const u8> bytes);

  u16 id() const { return m_id; }
  u16 flags() const { return m_flags; }
  bool is_response() const { return (m_flags & 0x8000) != 0; }
  u8 opcode() const { return static_cast<u8>((m_flags >> 11) & 0xf); }
  bool authoritative() const { return (m_flags & 0x0400) != 0; }
  bool truncated() const { return (m_flags & 0x0200) != 0; }
  bool recursion_desired() const { return (m_flags & 0x0100) != 0; }
  bool recursion_available() const { return (m_flags & 0x0080) != 0; }
  u8 rcode() const { return static_cast<u8>(m_flags & 0xf); }

  const std::vector<DnsQuestion>& questions() const { return m_questions; }
  const std::vector<DnsRecord>& answers() const { return m_answers; }
  const std::vector<DnsRecord>& authorities() const { return m_authorities; }
  const std::vector<DnsRecord>& additionals() const { return m_additionals; }
  // Bytes after the last counted record (allowed, e.g. padding).
  std::size_t trailing_bytes() const { return m_trailing; }

 private:
  DnsMessage() = default;
  u16 m_id = 0;
  u16 m_flags = 0;
  std::vector<DnsQuestion> m_questions;
  std::vector<DnsRecord> m_answers;
  std::vector<DnsRecord> m_authorities;
  std::vector<DnsRecord> m_additionals;
  std::size_t m_trailing = 0;
};

// The view, or why there is none (for drop counters).
struct DnsParsed {
  std::optional<DnsMessage> message;
  DnsError error = DnsError::none;
  explicit operator bool() const { return message.has_value(); }
  bool has_value() const { return message.has_value(); }
  const DnsMessage& operator*() const { return *message; }
  const DnsMessage* operator->() const { return &*message; }
};

// ---- builders (write into a caller's buffer; nullopt when it is too small
// or a name is not encodable: empty inner label, label > 63, name > 255) ----

enum class DnsCompression : u8 { off, on };
enum class DnsRecursion : u8 { not_desired, desired };

// Encodes `names` one after another, the way DHCP option 119 wants them
// (RFC 3397): with compression on, a suffix already written is replaced by
// a pointer whose offset is relative to the start of `out`.
std::optional<std::size_t> encode_dns_names(std::span<const std::string_view> names, std::span<u8> out,
                                            DnsCompression compression);

std::optional<std::size_t> build_dns_query(std::span<u8> out, u16 id, std::string_view name, DnsType type,
                                           DnsRecursion recursion);

struct DnsAnswer {
  std::string_view name;
  DnsType type = DnsType::a;
  u32 ttl = 0;
  std::span<const u8> address;  // A (4 bytes) or AAAA (16 bytes)
  std::string_view target;      // CNAME, PTR, NS
};

// A response to `query_id`/`question`: QR, RD copied as given, RA set, the
// question echoed, answers with names compressed against earlier names.
struct DnsResponse {
  u16 id = 0;
  DnsRecursion recursion = DnsRecursion::desired;
  u8 rcode = 0;  // 0 no error, 2 server failure, 3 name error
  std::string_view question_name;
  DnsType question_type = DnsType::a;
  std::span<const DnsAnswer> answers;
};

std::optional<std::size_t> build_dns_response(std::span<u8> out, const DnsResponse& response);

}  // namespace reel::wire
