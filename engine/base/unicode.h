// Small UTF-8 and Unicode helpers shared by the tokenizer and the streaming code.
//
// Invalid UTF-8 is handled the way Rust's String::from_utf8_lossy (and so Hugging Face
// `tokenizers`) does: every "maximal subpart" of an ill-formed sequence becomes one
// U+FFFD, which keeps our decoded text byte-identical to the reference implementation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace grinqh {

inline constexpr char32_t kReplacementChar = U'\uFFFD';

enum class Utf8Status {
  kOk,         // a complete, valid character
  kInvalid,    // an ill-formed sequence that no further bytes can repair
  kTruncated,  // a valid start of a character that the string ends in the middle of
};

// One character (or one maximal ill-formed subpart) read from a UTF-8 string.
struct Utf8Char {
  char32_t code_point = kReplacementChar;  // U+FFFD unless status is kOk
  size_t length = 0;                       // bytes consumed, at least 1
  Utf8Status status = Utf8Status::kInvalid;
};

// Reads the character starting at text[pos]; pos must be < text.size().
Utf8Char DecodeUtf8(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of code_point (U+FFFD for surrogates and values past U+10FFFF).
void AppendUtf8(std::string& out, char32_t code_point);

bool IsValidUtf8(std::string_view text);

// Length of the longest prefix that does not end inside an unfinished multi-byte character.
// The rest (at most 3 bytes) could still become valid when more bytes arrive, so a
// streaming writer emits the prefix and holds the rest back. The prefix itself may hold
// invalid bytes; SanitizeUtf8 it before showing it.
size_t CompleteUtf8PrefixLength(std::string_view text);

// Length of the longest prefix that is entirely valid UTF-8.
size_t ValidUtf8PrefixLength(std::string_view text);

// Returns text with each maximal ill-formed subpart replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view text);

// `text` in single quotes for an error message: whole when it has at most `max_chars`
// characters, else its first `max_chars` and "…". Input echoed in a status must stay short:
// gRPC refuses trailers over 8 KB (the client would see RESOURCE_EXHAUSTED instead).
// Invalid UTF-8 is replaced by U+FFFD.
std::string QuoteInput(std::string_view text, size_t max_chars = 64);

// Unicode White_Space property (what Rust's char::is_whitespace tests).
bool IsUnicodeWhitespace(char32_t code_point);

// A regex `\w` character in Unicode mode: letters, marks, decimal and letter numbers,
// connector punctuation ('_' among them) and the zero-width joiners. Hugging Face's
// single_word added-token rule uses this notion of a word.
bool IsWordCharacter(char32_t code_point);

// Canonical composition (NFC). Expects valid UTF-8; returns the input unchanged otherwise.
std::string NormalizeNfc(std::string_view text);

// GPT-2's reversible byte <-> printable-character mapping used by byte-level BPE: bytes
// that are printable and not whitespace map to themselves, the other 68 bytes map in
// order to U+0100 onwards (so the space byte 0x20 becomes 'Ġ', U+0120).
const std::array<char32_t, 256>& ByteToUnicodeTable();
// The byte a character stands for, or nullopt when it is not one of the 256.
std::optional<uint8_t> UnicodeToByte(char32_t code_point);
// Bytes to their byte-level spelling (e.g. " hi" -> "Ġhi").
std::string BytesToByteLevel(std::string_view bytes);
// A byte-level spelling back to bytes; nullopt if a character is outside the table
// (or the text is not valid UTF-8).
std::optional<std::string> ByteLevelToBytes(std::string_view text);

}  // namespace grinqh
