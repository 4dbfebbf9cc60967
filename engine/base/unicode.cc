#include "engine/base/unicode.h"

#include <cstdlib>

#include <utf8proc.h>

#include "absl/strings/str_cat.h"

namespace grinqh {
namespace {

bool IsContinuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// The range the second byte of a sequence must fall in, per lead byte (Unicode Table 3-7).
// This is what rules out overlong forms, surrogates and values past U+10FFFF.
struct LeadInfo {
  size_t length;  // 0 for a byte that cannot start a character
  unsigned char second_min;
  unsigned char second_max;
};

LeadInfo InfoForLead(unsigned char lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead >= 0xC2 && lead <= 0xDF) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead >= 0xE1 && lead <= 0xEF) return {3, 0x80, 0xBF};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  if (lead >= 0xF1 && lead <= 0xF3) return {4, 0x80, 0xBF};
  return {0, 0, 0};
}

}  // namespace

Utf8Char DecodeUtf8(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const LeadInfo info = InfoForLead(lead);
  if (info.length == 1) return {lead, 1, Utf8Status::kOk};
  if (info.length == 0) return {kReplacementChar, 1, Utf8Status::kInvalid};

  // Payload bits of the lead byte: 5, 4 or 3 of them for 2-, 3- and 4-byte sequences.
  char32_t code_point = lead & (0x7Fu >> info.length);
  for (size_t i = 1; i < info.length; ++i) {
    if (pos + i >= text.size()) return {kReplacementChar, i, Utf8Status::kTruncated};
    const auto byte = static_cast<unsigned char>(text[pos + i]);
    const bool in_range = i == 1 ? (byte >= info.second_min && byte <= info.second_max)
                                 : IsContinuation(byte);
    // The bytes read so far form the maximal subpart that one U+FFFD replaces.
    if (!in_range) return {kReplacementChar, i, Utf8Status::kInvalid};
    code_point = (code_point << 6) | (byte & 0x3Fu);
  }
  return {code_point, info.length, Utf8Status::kOk};
}

void AppendUtf8(std::string& out, char32_t code_point) {
  if (code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    code_point = kReplacementChar;
  }
  auto put = [&out](char32_t bits) { out.push_back(static_cast<char>(bits)); };
  if (code_point < 0x80) {
    put(code_point);
  } else if (code_point < 0x800) {
    put(0xC0 | (code_point >> 6));
    put(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    put(0xE0 | (code_point >> 12));
    put(0x80 | ((code_point >> 6) & 0x3F));
    put(0x80 | (code_point & 0x3F));
  } else {
    put(0xF0 | (code_point >> 18));
    put(0x80 | ((code_point >> 12) & 0x3F));
    put(0x80 | ((code_point >> 6) & 0x3F));
    put(0x80 | (code_point & 0x3F));
  }
}

size_t ValidUtf8PrefixLength(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {  // fast path for ASCII runs
      ++pos;
      continue;
    }
    const Utf8Char c = DecodeUtf8(text, pos);
    if (c.status != Utf8Status::kOk) break;
    pos += c.length;
  }
  return pos;
}

bool IsValidUtf8(std::string_view text) { return ValidUtf8PrefixLength(text) == text.size(); }

size_t CompleteUtf8PrefixLength(std::string_view text) {
  // An unfinished character is a lead byte followed by at most 2 continuation bytes, so
  // only the last 3 bytes need a look. A non-continuation byte is never swallowed by an
  // earlier sequence, so decoding can safely restart there.
  const size_t n = text.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t start = n - back;
    if (IsContinuation(static_cast<unsigned char>(text[start]))) continue;
    const Utf8Char c = DecodeUtf8(text, start);
    return c.status == Utf8Status::kTruncated ? start : n;
  }
  return n;
}

std::string SanitizeUtf8(std::string_view text) {
  const size_t valid = ValidUtf8PrefixLength(text);
  if (valid == text.size()) return std::string(text);

  std::string out(text.substr(0, valid));
  out.reserve(text.size() + 8);
  size_t pos = valid;
  while (pos < text.size()) {
    const Utf8Char c = DecodeUtf8(text, pos);
    if (c.status == Utf8Status::kOk) {
      out.append(text.substr(pos, c.length));
    } else {
      AppendUtf8(out, kReplacementChar);
    }
    pos += c.length;
  }
  return out;
}

std::string QuoteInput(std::string_view text, size_t max_chars) {
  size_t end = 0;  // bytes of the first max_chars characters (ill-formed ones count as one)
  for (size_t chars = 0; end < text.size() && chars < max_chars; ++chars) end += DecodeUtf8(text, end).length;
  return absl::StrCat("'", SanitizeUtf8(text.substr(0, end)), end < text.size() ? "…'" : "'");
}

bool IsUnicodeWhitespace(char32_t cp) {
  switch (cp) {
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x2000 && cp <= 0x200A);
  }
}

bool IsWordCharacter(char32_t cp) {
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  if (cp > 0x10FFFF) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

std::string NormalizeNfc(std::string_view text) {
  // Pure ASCII is always in NFC; skipping utf8proc there saves an allocation per call.
  bool ascii = true;
  for (char ch : text) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return std::string(text);

  utf8proc_uint8_t* composed = nullptr;
  const utf8proc_ssize_t length = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
      static_cast<utf8proc_ssize_t>(text.size()), &composed,
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (length < 0) return std::string(text);  // invalid UTF-8: leave it to the caller
  std::string out(reinterpret_cast<const char*>(composed), static_cast<size_t>(length));
  std::free(composed);
  return out;
}

namespace {

std::array<char32_t, 256> BuildByteToUnicode() {
  std::array<char32_t, 256> table{};
  char32_t next_extra = 0x100;
  for (unsigned byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
                           (byte >= 0xAE && byte <= 0xFF);
    table[byte] = printable ? static_cast<char32_t>(byte) : next_extra++;
  }
  return table;
}

// The inverse table covers U+0000..U+0143, the range all 256 characters fall in.
constexpr char32_t kByteLevelMax = 0x143;

std::array<int16_t, kByteLevelMax + 1> BuildUnicodeToByte() {
  std::array<int16_t, kByteLevelMax + 1> inverse;
  inverse.fill(-1);
  const auto& table = ByteToUnicodeTable();
  for (unsigned byte = 0; byte < 256; ++byte) inverse[table[byte]] = static_cast<int16_t>(byte);
  return inverse;
}

}  // namespace

const std::array<char32_t, 256>& ByteToUnicodeTable() {
  static const std::array<char32_t, 256> table = BuildByteToUnicode();
  return table;
}

std::optional<uint8_t> UnicodeToByte(char32_t code_point) {
  static const auto inverse = BuildUnicodeToByte();
  if (code_point > kByteLevelMax || inverse[code_point] < 0) return std::nullopt;
  return static_cast<uint8_t>(inverse[code_point]);
}

std::string BytesToByteLevel(std::string_view bytes) {
  const auto& table = ByteToUnicodeTable();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) AppendUtf8(out, table[static_cast<unsigned char>(ch)]);
  return out;
}

std::optional<std::string> ByteLevelToBytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Char c = DecodeUtf8(text, pos);
    if (c.status != Utf8Status::kOk) return std::nullopt;
    const std::optional<uint8_t> byte = UnicodeToByte(c.code_point);
    if (!byte) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
    pos += c.length;
  }
  return out;
}

}  // namespace grinqh
