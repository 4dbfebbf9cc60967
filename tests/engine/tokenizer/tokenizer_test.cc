// Tests of the byte-level BPE tokenizer: UTF-8 helpers, a small hand-built tokenizer that
// exercises each pipeline stage, refusals of malformed files, and the real Llama 3 and
// Qwen3 tokenizer.json files against encodings made by Hugging Face `tokenizers`.
#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/base/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json ReadJson(const std::filesystem::path& path) { return json::parse(ReadText(path)); }

// Printable form of a string for failure messages (escapes control and invalid bytes).
std::string Show(const std::string& text) {
  return json(text).dump(-1, ' ', true, json::error_handler_t::replace);
}

std::string ShowIds(const std::vector<int32_t>& ids) { return json(ids).dump(); }

// ---------------------------------------------------------------------------------------
// UTF-8 helpers

TEST(Utf8Test, IsValidUtf8) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9 \xE4\xBD\xA0 \xF0\x9F\x91\x8B"));  // hé 你 👋
  EXPECT_FALSE(IsValidUtf8("\xC3"));                                    // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));                                // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));                            // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));                        // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("a\x80z"));  // stray continuation byte
}

TEST(Utf8Test, CompletePrefixHoldsBackOnlyAnUnfinishedCharacter) {
  EXPECT_EQ(CompleteUtf8PrefixLength(""), 0u);
  EXPECT_EQ(CompleteUtf8PrefixLength("abc"), 3u);
  EXPECT_EQ(CompleteUtf8PrefixLength("ab\xF0\x9F\x91"), 2u);      // 3 of 4 bytes of 👋
  EXPECT_EQ(CompleteUtf8PrefixLength("ab\xF0\x9F\x91\x8B"), 6u);  // all 4
  EXPECT_EQ(CompleteUtf8PrefixLength("\xE4"), 0u);
  EXPECT_EQ(CompleteUtf8PrefixLength("\xE4\xBD"), 0u);
  // Bytes that can never become valid are not held back: nothing can repair them.
  EXPECT_EQ(CompleteUtf8PrefixLength("a\xFF"), 2u);
  EXPECT_EQ(CompleteUtf8PrefixLength("a\x80\x80\x80"), 4u);
  EXPECT_EQ(CompleteUtf8PrefixLength("a\xE0\x80"), 3u);  // E0 80 is overlong already
}

TEST(Utf8Test, ValidPrefixLength) {
  EXPECT_EQ(ValidUtf8PrefixLength("ab\xC3\xA9"), 4u);
  EXPECT_EQ(ValidUtf8PrefixLength("ab\xC3"), 2u);
  EXPECT_EQ(ValidUtf8PrefixLength("ab\xFF\x41"), 2u);
}

TEST(Utf8Test, SanitizeReplacesEachMaximalInvalidSubpart) {
  // The same replacements as Rust's String::from_utf8_lossy, which HF decode uses.
  EXPECT_EQ(SanitizeUtf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x91" "A"), "\xEF\xBF\xBD" "A");
  EXPECT_EQ(SanitizeUtf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(SanitizeUtf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
}

TEST(Utf8Test, DecodeAndAppendRoundTrip) {
  for (char32_t cp : {U'\0', U'A', U'\u00E9', U'\u4F60', U'\U0001F44B', U'\U0010FFFF'}) {
    std::string text;
    AppendUtf8(text, cp);
    const Utf8Char c = DecodeUtf8(text, 0);
    EXPECT_EQ(c.status, Utf8Status::kOk);
    EXPECT_EQ(c.code_point, cp);
    EXPECT_EQ(c.length, text.size());
  }
  std::string surrogate;
  AppendUtf8(surrogate, 0xD800);
  EXPECT_EQ(surrogate, "\xEF\xBF\xBD");
}

TEST(Utf8Test, Gpt2ByteTableIsABijection) {
  EXPECT_EQ(BytesToByteLevel(" hello\n"), "\xC4\xA0hello\xC4\x8A");  // "Ġhello" + "Ċ"
  EXPECT_EQ(ByteToUnicodeTable()['A'], U'A');
  EXPECT_EQ(ByteToUnicodeTable()[0], U'\u0100');
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  EXPECT_EQ(ByteLevelToBytes(BytesToByteLevel(all_bytes)), all_bytes);
  EXPECT_EQ(ByteLevelToBytes("plain space"), std::nullopt);  // ' ' itself is not in the table
  EXPECT_EQ(ByteLevelToBytes("\xE4\xBD\xA0"), std::nullopt);
}

TEST(Utf8Test, WhitespaceAndNfc) {
  EXPECT_TRUE(IsUnicodeWhitespace(U' '));
  EXPECT_TRUE(IsUnicodeWhitespace(U'\u0085'));
  EXPECT_TRUE(IsUnicodeWhitespace(U'\u3000'));
  EXPECT_FALSE(IsUnicodeWhitespace(U'\u200B'));
  EXPECT_TRUE(IsWordCharacter(U'_'));
  EXPECT_TRUE(IsWordCharacter(U'\u00E9'));
  EXPECT_FALSE(IsWordCharacter(U'-'));
  EXPECT_EQ(NormalizeNfc("e\xCC\x81"), "\xC3\xA9");  // e + combining acute -> é
  EXPECT_EQ(NormalizeNfc("ascii"), "ascii");
}

// ---------------------------------------------------------------------------------------
// A hand-built tokenizer: ids 0-255 are the bytes, then a few merges and added tokens.

constexpr char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The merges, lowest rank first. "b c" outranks "a b", so "abc" merges to a + bc.
const std::vector<std::pair<std::string, std::string>> kTinyMerges = {
    {"l", "l"},       {"h", "e"},     {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"},
    {"o", "r"},       {"Ġw", "or"},   {"Ġwor", "l"}, {"Ġworl", "d"}, {"b", "c"},
    {"a", "b"},
};

json TinyTokenizerJson(bool merges_as_pairs = true) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[BytesToByteLevel(std::string(1, static_cast<char>(b)))] = b;
  int next_id = 256;
  json merges = json::array();
  for (const auto& [left, right] : kTinyMerges) {
    vocab[left + right] = next_id++;
    merges.push_back(merges_as_pairs ? json::array({left, right}) : json(left + " " + right));
  }
  vocab["abc"] = next_id++;  // a whole-word entry that no merge produces

  auto added = [](int id, const std::string& content, bool special) {
    return json{{"id", id},          {"content", content}, {"single_word", false},
                {"lstrip", false},   {"rstrip", false},    {"normalized", false},
                {"special", special}};
  };
  json added_tokens = json::array({added(300, "<|bos|>", true), added(301, "<|eos|>", true),
                                   added(302, "<tool>", false), added(303, "[M]", false),
                                   added(304, "XY", false)});
  added_tokens[3]["lstrip"] = true;
  added_tokens[3]["rstrip"] = true;
  added_tokens[4]["single_word"] = true;

  return json{
      {"version", "1.0"},
      {"added_tokens", added_tokens},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"},
                       {"pattern", {{"Regex", kLlama3Pattern}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                      {{"type", "ByteLevel"},
                       {"add_prefix_space", false},
                       {"trim_offsets", true},
                       {"use_regex", false}}})}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
}

constexpr int32_t kHello = 259, kSpaceWorld = 264, kBc = 265, kAbc = 267;
constexpr int32_t kBos = 300, kEos = 301, kTool = 302, kStrip = 303, kSingle = 304;

std::unique_ptr<Tokenizer> Load(const json& tokenizer_json) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(tokenizer_json.dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

using Ids = std::vector<int32_t>;

TEST(TinyTokenizerTest, MergesByRank) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("hello world"), (Ids{kHello, kSpaceWorld}));
  EXPECT_EQ(tokenizer->Encode("abc"), (Ids{'a', kBc}));  // rank decides, not position
  EXPECT_EQ(tokenizer->Encode("hell"), (Ids{258}));
  EXPECT_EQ(tokenizer->Encode("  "), (Ids{' ', ' '}));
  EXPECT_EQ(tokenizer->Encode(""), Ids{});
  EXPECT_EQ(tokenizer->Decode(Ids{kHello, kSpaceWorld}), "hello world");
}

TEST(TinyTokenizerTest, MergesAsStringsOrPairsAgree) {
  auto pairs = Load(TinyTokenizerJson(/*merges_as_pairs=*/true));
  auto strings = Load(TinyTokenizerJson(/*merges_as_pairs=*/false));
  ASSERT_NE(pairs, nullptr);
  ASSERT_NE(strings, nullptr);
  for (const char* text : {"hello world", "abc", "hellohello worldly", "bc ab"}) {
    EXPECT_EQ(pairs->Encode(text), strings->Encode(text)) << text;
  }
}

TEST(TinyTokenizerTest, IgnoreMergesTakesWholeVocabularyWords) {
  json tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["ignore_merges"] = true;
  auto tokenizer = Load(tokenizer_json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("abc"), (Ids{kAbc}));
  EXPECT_EQ(tokenizer->Encode("abcd"), (Ids{'a', kBc, 'd'}));  // not a vocab entry: merged
}

TEST(TinyTokenizerTest, AddedTokensAreCutOutOfTheRawText) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "<|bos|>hello<tool> world<|eos|>";
  const Ids ids = tokenizer->Encode(text);
  EXPECT_EQ(ids, (Ids{kBos, kHello, kTool, kSpaceWorld, kEos}));
  EXPECT_EQ(tokenizer->Decode(ids), text);
  EXPECT_EQ(tokenizer->Decode(ids, /*skip_special_tokens=*/true), "hello<tool> world");
  // A partial match is plain text.
  EXPECT_EQ(tokenizer->Encode("<|bos").size(), 5u);
}

TEST(TinyTokenizerTest, AddedTokenStripsWhitespaceWhenAsked) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  // "[M]" has lstrip and rstrip: the spaces around it become part of it.
  EXPECT_EQ(tokenizer->Encode("a  [M] b"), (Ids{'a', kStrip, 'b'}));
  EXPECT_EQ(tokenizer->Encode("a\u3000[M]\nb"), (Ids{'a', kStrip, 'b'}));
}

TEST(TinyTokenizerTest, SingleWordAddedTokenMustStandAlone) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("a XY b"), (Ids{'a', ' ', kSingle, ' ', 'b'}));
  EXPECT_EQ(tokenizer->Encode("XY"), (Ids{kSingle}));
  EXPECT_EQ(tokenizer->Encode("aXY"), (Ids{'a', 'X', 'Y'}));
  EXPECT_EQ(tokenizer->Encode("XY_"), (Ids{'X', 'Y', '_'}));
}

TEST(TinyTokenizerTest, TemplateProcessingAddsSpecialTokens) {
  json tokenizer_json = TinyTokenizerJson();
  tokenizer_json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", "<|eos|>"}, {"type_id", 0}}}}})},
      {"pair", json::array()},
      {"special_tokens",
       {{"<|bos|>", {{"id", "<|bos|>"}, {"ids", {kBos}}, {"tokens", {"<|bos|>"}}}},
        {"<|eos|>", {{"id", "<|eos|>"}, {"ids", {kEos}}, {"tokens", {"<|eos|>"}}}}}}};
  auto tokenizer = Load(tokenizer_json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("hello", /*add_special_tokens=*/true), (Ids{kBos, kHello, kEos}));
  EXPECT_EQ(tokenizer->Encode("hello", /*add_special_tokens=*/false), (Ids{kHello}));
  EXPECT_EQ(tokenizer->bos_id(), kBos);
}

// Found by tests/fuzz/tokenizer_json_fuzz: a template id naming no token was accepted, and
// every encoding with special tokens then held an id past the vocabulary.
TEST(TinyTokenizerTest, TemplateIdOutsideTheVocabularyIsRefused) {
  json tokenizer_json = TinyTokenizerJson();
  tokenizer_json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|x|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"special_tokens", {{"<|x|>", {{"id", "<|x|>"}, {"ids", {400}}, {"tokens", {"<|x|>"}}}}}}};
  const auto tokenizer = Tokenizer::FromJson(tokenizer_json.dump());
  EXPECT_TRUE(absl::IsInvalidArgument(tokenizer.status()));
  EXPECT_THAT(std::string(tokenizer.status().message()), HasSubstr("special token id 400 is not in the vocabulary"));
}

TEST(TinyTokenizerTest, TemplateInsideASequenceAsInLlama31) {
  json tokenizer_json = TinyTokenizerJson();
  json template_processing = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"special_tokens",
       {{"<|bos|>", {{"id", "<|bos|>"}, {"ids", {kBos}}, {"tokens", {"<|bos|>"}}}}}}};
  tokenizer_json["post_processor"] = {
      {"type", "Sequence"},
      {"processors", json::array({{{"type", "ByteLevel"}, {"add_prefix_space", true}},
                                  template_processing})}};
  const std::filesystem::path dir = ::testing::TempDir() + "/grinqh-tokenizer-template-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << tokenizer_json.dump();
  // add_bos_token on top of a template that already adds BOS must not add a second one.
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"add_bos_token": true, "bos_token": "<|bos|>"})";
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Encode("hello", /*add_special_tokens=*/true), (Ids{kBos, kHello}));
  EXPECT_EQ((*tokenizer)->bos_id(), kBos);
  std::filesystem::remove_all(dir);
}

TEST(TinyTokenizerTest, NoTemplateMeansNoSpecialTokens) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("hello", /*add_special_tokens=*/true), (Ids{kHello}));
  EXPECT_EQ(tokenizer->bos_id(), std::nullopt);
}

TEST(TinyTokenizerTest, NfcNormalizer) {
  json tokenizer_json = TinyTokenizerJson();
  const std::string decomposed = "e\xCC\x81";  // e + U+0301
  auto plain = Load(tokenizer_json);
  tokenizer_json["normalizer"] = {{"type", "NFC"}};
  auto nfc = Load(tokenizer_json);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(nfc, nullptr);
  EXPECT_EQ(plain->Encode(decomposed), (Ids{'e', 0xCC, 0x81}));
  EXPECT_EQ(nfc->Encode(decomposed), (Ids{0xC3, 0xA9}));  // é
}

TEST(TinyTokenizerTest, ByteLevelPreTokenizerWithGpt2Regex) {
  json tokenizer_json = TinyTokenizerJson();
  tokenizer_json["pre_tokenizer"] = {
      {"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  auto tokenizer = Load(tokenizer_json);
  ASSERT_NE(tokenizer, nullptr);
  // add_prefix_space makes it " hello", which has no merge for "Ġ h".
  EXPECT_EQ(tokenizer->Encode("hello world"), (Ids{' ', kHello, kSpaceWorld}));
  tokenizer_json["pre_tokenizer"]["add_prefix_space"] = false;
  tokenizer = Load(tokenizer_json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("hello world"), (Ids{kHello, kSpaceWorld}));
}

TEST(TinyTokenizerTest, InvalidUtf8InputIsReplacedNotFatal) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("a\xFF"), (Ids{'a', 0xEF, 0xBF, 0xBD}));  // U+FFFD
}

TEST(TinyTokenizerTest, Lookups) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->vocab_size(), 305);
  EXPECT_EQ(tokenizer->TokenToId("hello"), kHello);
  EXPECT_EQ(tokenizer->TokenToId("\xC4\xA0world"), kSpaceWorld);  // spelled "Ġworld"
  EXPECT_EQ(tokenizer->TokenToId(" world"), std::nullopt);
  EXPECT_EQ(tokenizer->TokenToId("<tool>"), kTool);
  EXPECT_EQ(tokenizer->TokenToId("nope"), std::nullopt);
  EXPECT_EQ(tokenizer->TokenBytes(kSpaceWorld), " world");
  EXPECT_EQ(tokenizer->TokenBytes(kEos), "<|eos|>");
  EXPECT_EQ(tokenizer->TokenBytes(290), "");  // a gap in the ids
  EXPECT_EQ(tokenizer->TokenBytes(-1), "");
  EXPECT_EQ(tokenizer->TokenBytes(100000), "");
  EXPECT_TRUE(tokenizer->IsSpecial(kBos));
  EXPECT_FALSE(tokenizer->IsSpecial(kTool));
  EXPECT_FALSE(tokenizer->IsSpecial(kHello));
  EXPECT_FALSE(tokenizer->IsSpecial(-5));
  // Ids that are no token decode to nothing, as in HF.
  EXPECT_EQ(tokenizer->Decode(Ids{kHello, 290, -1, 99999}), "hello");
}

TEST(TinyTokenizerTest, DecodeReplacesBrokenUtf8) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Decode(Ids{0xE4, 0xBD, 'a'}), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(tokenizer->Decode(Ids{0xE4, 0xBD, 0xA0}), "\xE4\xBD\xA0");  // 你
}

TEST(IncrementalDecoderTest, HoldsBackPartialCharacters) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  IncrementalDecoder decoder(*tokenizer);
  EXPECT_EQ(decoder.Push(kHello), "hello");
  EXPECT_EQ(decoder.Push(0xF0), "");  // first byte of 👋
  EXPECT_EQ(decoder.Push(0x9F), "");
  EXPECT_EQ(decoder.Push(0x91), "");
  EXPECT_EQ(decoder.Push(0x8B), "\xF0\x9F\x91\x8B");
  EXPECT_EQ(decoder.Push(kBos), "");  // special: skipped by default
  EXPECT_EQ(decoder.Push(0xE4), "");
  EXPECT_EQ(decoder.Flush(), "\xEF\xBF\xBD");  // a character that never completed
  EXPECT_EQ(decoder.Flush(), "");
}

TEST(IncrementalDecoderTest, EmitsBytesThatCanNeverBecomeValidAtOnce) {
  auto tokenizer = Load(TinyTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  IncrementalDecoder decoder(*tokenizer, /*skip_special_tokens=*/false);
  EXPECT_EQ(decoder.Push(0xE4), "");
  EXPECT_EQ(decoder.Push('a'), "\xEF\xBF\xBD" "a");  // E4 then 'a': E4 is dead
  EXPECT_EQ(decoder.Push(0xFF), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.Push(kBos), "<|bos|>");
  EXPECT_EQ(decoder.Flush(), "");
}

// ---------------------------------------------------------------------------------------
// Refusals

void ExpectTextRefused(std::string_view text, std::string_view message_part) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(text);
  ASSERT_FALSE(tokenizer.ok()) << "accepted: " << text.substr(0, 200);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tokenizer.status().message()), HasSubstr(std::string(message_part)));
}

void ExpectRefused(const json& tokenizer_json, std::string_view message_part) {
  ExpectTextRefused(tokenizer_json.dump(), message_part);
}

TEST(MalformedTokenizerTest, NotJson) {
  ExpectTextRefused("", "not valid JSON");
  ExpectTextRefused("{\"model\": ", "not valid JSON");
  ExpectTextRefused("\xFF\xFE garbage", "not valid JSON");
  const std::string good = TinyTokenizerJson().dump();
  ExpectTextRefused(good.substr(0, good.size() / 2), "not valid JSON");
  ExpectTextRefused("[1, 2, 3]", "not a JSON object");
}

TEST(MalformedTokenizerTest, MissingOrWrongModel) {
  json tokenizer_json = TinyTokenizerJson();
  tokenizer_json.erase("model");
  ExpectRefused(tokenizer_json, "no \"model\"");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["type"] = "WordPiece";
  ExpectRefused(tokenizer_json, "model type \"WordPiece\" is not supported");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"].erase("vocab");
  ExpectRefused(tokenizer_json, "no \"vocab\"");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["vocab"] = json::array({"a", "b"});
  ExpectRefused(tokenizer_json, "model.vocab must be an object");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["vocab"]["zz"] = "seven";
  ExpectRefused(tokenizer_json, "model.vocab[\"zz\"]");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["vocab"]["zz"] = -3;
  ExpectRefused(tokenizer_json, "is not a token id");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["vocab"]["zz"] = json{{"id", 3}};
  ExpectRefused(tokenizer_json, "model.vocab[\"zz\"]");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["vocab"]["zz"] = 7;  // 7 is the byte 0x07 already
  ExpectRefused(tokenizer_json, "gives id 7 to two tokens");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["byte_fallback"] = true;
  ExpectRefused(tokenizer_json, "byte_fallback");
}

TEST(MalformedTokenizerTest, BadMerges) {
  json tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["merges"].push_back(json::array({"h", "unknown"}));
  ExpectRefused(tokenizer_json, "refers to \"unknown\", which is not in model.vocab");

  tokenizer_json = TinyTokenizerJson(/*merges_as_pairs=*/false);
  tokenizer_json["model"]["merges"].push_back("x z");  // "xz" is no token
  ExpectRefused(tokenizer_json, "refers to \"xz\"");

  tokenizer_json = TinyTokenizerJson(/*merges_as_pairs=*/false);
  tokenizer_json["model"]["merges"].push_back("nospace");
  ExpectRefused(tokenizer_json, "model.merges[11]");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["merges"].push_back(json::array({"a", "b", "c"}));
  ExpectRefused(tokenizer_json, "model.merges[11]");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["merges"].push_back(42);
  ExpectRefused(tokenizer_json, "model.merges[11] is 42");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["model"]["merges"] = "l l";
  ExpectRefused(tokenizer_json, "model.merges must be a list");
}

TEST(MalformedTokenizerTest, UnsupportedComponentsAreNamed) {
  json tokenizer_json = TinyTokenizerJson();
  tokenizer_json["normalizer"] = {{"type", "Lowercase"}};
  ExpectRefused(tokenizer_json, "normalizer type \"Lowercase\" is not supported");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["pre_tokenizer"] = {{"type", "Whitespace"}};
  ExpectRefused(tokenizer_json, "pre_tokenizer type \"Whitespace\" is not supported");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithNext";
  ExpectRefused(tokenizer_json, "behavior \"MergedWithNext\" is not supported");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  ExpectRefused(tokenizer_json, "does not compile");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["pre_tokenizer"] = tokenizer_json["pre_tokenizer"]["pretokenizers"][0];
  ExpectRefused(tokenizer_json, "no ByteLevel step");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["decoder"] = {{"type", "WordPiece"}};
  ExpectRefused(tokenizer_json, "decoder type \"WordPiece\" is not supported");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["post_processor"] = {{"type", "BertProcessing"}};
  ExpectRefused(tokenizer_json, "post_processor type \"BertProcessing\" is not supported");

  tokenizer_json = TinyTokenizerJson();
  tokenizer_json["added_tokens"].push_back({{"content", "<x>"}});
  ExpectRefused(tokenizer_json, "added_tokens[5]");
}

// Odd values at every place of the file: each load must end in a tokenizer or an error,
// never a crash or an exception (run under the sanitizers to make this bite).
TEST(MalformedTokenizerTest, OddValuesAnywhereNeverCrash) {
  const std::vector<std::string> places = {
      "", "/model", "/model/type", "/model/vocab", "/model/vocab/a", "/model/merges",
      "/model/merges/0", "/model/merges/0/0", "/model/ignore_merges", "/model/unk_token",
      "/model/continuing_subword_prefix", "/added_tokens", "/added_tokens/0",
      "/added_tokens/0/id", "/added_tokens/0/content", "/added_tokens/0/special",
      "/normalizer", "/normalizer/type", "/pre_tokenizer", "/pre_tokenizer/type",
      "/pre_tokenizer/pretokenizers", "/pre_tokenizer/pretokenizers/0",
      "/pre_tokenizer/pretokenizers/0/pattern", "/pre_tokenizer/pretokenizers/0/pattern/Regex",
      "/pre_tokenizer/pretokenizers/0/behavior", "/pre_tokenizer/pretokenizers/1/use_regex",
      "/post_processor", "/decoder", "/decoder/type"};
  const std::vector<json> odd_values = {
      nullptr, 0, -1, 1e300, true, "", "x", json::array(), json::object(),
      json::array({json::array()}), json{{"type", "BPE"}}, int64_t{1} << 40};
  for (const std::string& place : places) {
    for (const json& value : odd_values) {
      json tokenizer_json = TinyTokenizerJson();
      const json::json_pointer pointer(place);
      if (place.empty()) {
        tokenizer_json = value;
      } else {
        tokenizer_json[pointer] = value;
      }
      absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
          Tokenizer::FromJson(tokenizer_json.dump());
      if (tokenizer.ok()) {
        const Ids ids = (*tokenizer)->Encode("hello <|bos|> w\xC3\xB6rld [M] XY", true);
        (*tokenizer)->Decode(ids);
      } else {
        EXPECT_FALSE(tokenizer.status().message().empty());
      }
    }
  }
}

TEST(MalformedTokenizerTest, DamagedBytesNeverCrash) {
  const std::string good = TinyTokenizerJson(/*merges_as_pairs=*/false).dump();
  std::mt19937 random(12345);
  std::uniform_int_distribution<size_t> position(0, good.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 300; ++round) {
    std::string damaged = good;
    for (int flips = 1 + round % 3; flips > 0; --flips) {
      damaged[position(random)] = static_cast<char>(byte(random));
    }
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(damaged);
    if (tokenizer.ok()) (*tokenizer)->Decode((*tokenizer)->Encode("hello world \xE4\xBD\xA0"));
  }
}

TEST(MalformedTokenizerTest, MissingFilesAreNotFound) {
  const std::filesystem::path missing = ::testing::TempDir() + "/no-such-tokenizer-dir";
  absl::StatusOr<std::unique_ptr<Tokenizer>> from_file =
      Tokenizer::FromFile(missing / "tokenizer.json");
  ASSERT_FALSE(from_file.ok());
  EXPECT_EQ(from_file.status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::unique_ptr<Tokenizer>> from_dir = Tokenizer::FromDirectory(missing);
  ASSERT_FALSE(from_dir.ok());
  EXPECT_EQ(from_dir.status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenizerConfigTest, BosAndEosPolicy) {
  const std::filesystem::path dir = ::testing::TempDir() + "/grinqh-tokenizer-config-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << TinyTokenizerJson().dump();

  std::ofstream(dir / "tokenizer_config.json") << R"({"add_bos_token": true, "bos_token": "<s>"})";
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_THAT(std::string(tokenizer.status().message()), HasSubstr("bos_token \"<s>\""));

  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_THAT(std::string(tokenizer.status().message()), HasSubstr("not valid JSON"));

  // A repeated key is refused, not settled by whichever value the parser keeps.
  std::ofstream(dir / "tokenizer_config.json") << R"({"add_bos_token": false, "add_bos_token": true})";
  tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tokenizer.status().message()),
              AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("\"add_bos_token\" twice")));
  tokenizer = Tokenizer::FromJson(TinyTokenizerJson().dump(), R"({"bos_token": {"content": "a", "content": "b"}})");
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_THAT(std::string(tokenizer.status().message()),
              AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("\"content\" twice"), HasSubstr("/bos_token/content")));

  // bos_token may also be an object, as older configs write it.
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"add_bos_token": true, "bos_token": {"content": "<|bos|>", "lstrip": false}})";
  tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Encode("hello", true), (Ids{kBos, kHello}));
  EXPECT_EQ((*tokenizer)->bos_id(), kBos);

  // An unknown bos_token that nothing asks to add is no reason to refuse the model.
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<s>", "eos_token": null})";
  tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->bos_id(), std::nullopt);
  EXPECT_EQ((*tokenizer)->Encode("hello", true), (Ids{kHello}));

  std::ofstream(dir / "tokenizer_config.json")
      << R"({"add_bos_token": false, "add_eos_token": true, "eos_token": "<|eos|>"})";
  tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->Encode("hello", true), (Ids{kHello, kEos}));
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------
// The real Llama 3 and Qwen3 files (../shared/tokenizers) against golden.json

// Loads each shared tokenizer once for the whole test program.
const Tokenizer& SharedTokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::unique_ptr<Tokenizer>& slot = cache[name];
  if (slot == nullptr) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::FromFile(
        ::grinqh::testing::SharedDir() / "tokenizers" / (name + "-tokenizer.json"));
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    if (!loaded.ok()) std::abort();  // every test below needs it
    slot = *std::move(loaded);
  }
  return *slot;
}

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
  std::string decoded;
};

std::vector<GoldenCase> GoldenCases(const std::string& name) {
  const json golden = ReadJson(::grinqh::testing::SharedDir() / "tokenizers" / "golden.json");
  std::vector<GoldenCase> cases;
  for (const json& entry : golden.at(name)) {
    cases.push_back({entry.at("text").get<std::string>(),
                     entry.at("ids").get<std::vector<int32_t>>(),
                     entry.at("decoded").get<std::string>()});
  }
  return cases;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EncodeMatchesHuggingFace) {
  GRINQH_REQUIRE_SHARED();
  const Tokenizer& tokenizer = SharedTokenizer(GetParam());
  const std::vector<GoldenCase> cases = GoldenCases(GetParam());
  ASSERT_FALSE(cases.empty());
  int matched = 0;
  for (const GoldenCase& c : cases) {
    const Ids ids = tokenizer.Encode(c.text);
    if (ids == c.ids) {
      ++matched;
    } else {
      ADD_FAILURE() << GetParam() << " encodes " << Show(c.text) << "\n   as " << ShowIds(ids)
                    << "\n  not " << ShowIds(c.ids);
    }
  }
  std::cout << "[ golden   ] " << GetParam() << " Encode: " << matched << "/" << cases.size()
            << " match\n";
}

TEST_P(GoldenTest, DecodeMatchesHuggingFace) {
  GRINQH_REQUIRE_SHARED();
  const Tokenizer& tokenizer = SharedTokenizer(GetParam());
  int matched = 0;
  const std::vector<GoldenCase> cases = GoldenCases(GetParam());
  for (const GoldenCase& c : cases) {
    const std::string decoded = tokenizer.Decode(c.ids);
    if (decoded == c.decoded) {
      ++matched;
    } else {
      ADD_FAILURE() << GetParam() << " decodes the ids of " << Show(c.text) << "\n   as "
                    << Show(decoded) << "\n  not " << Show(c.decoded);
    }
  }
  std::cout << "[ golden   ] " << GetParam() << " Decode: " << matched << "/" << cases.size()
            << " match\n";
}

TEST_P(GoldenTest, IncrementalDecodeMatchesDecode) {
  GRINQH_REQUIRE_SHARED();
  const Tokenizer& tokenizer = SharedTokenizer(GetParam());
  for (const GoldenCase& c : GoldenCases(GetParam())) {
    for (bool skip_special : {false, true}) {
      IncrementalDecoder decoder(tokenizer, skip_special);
      std::string streamed;
      for (int32_t id : c.ids) {
        const std::string piece = decoder.Push(id);
        EXPECT_TRUE(IsValidUtf8(piece)) << Show(c.text) << ": id " << id << " gave " << Show(piece);
        streamed += piece;
      }
      streamed += decoder.Flush();
      EXPECT_EQ(streamed, tokenizer.Decode(c.ids, skip_special)) << Show(c.text);
    }
  }
}

TEST_P(GoldenTest, ConcurrentEncodesAgree) {
  GRINQH_REQUIRE_SHARED();
  const Tokenizer& tokenizer = SharedTokenizer(GetParam());
  const std::vector<GoldenCase> cases = GoldenCases(GetParam());
  std::vector<std::vector<Ids>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&tokenizer, &cases, &result] {
      for (int round = 0; round < 3; ++round) {
        result.clear();
        for (const GoldenCase& c : cases) result.push_back(tokenizer.Encode(c.text));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& result : results) {
    ASSERT_EQ(result.size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      EXPECT_EQ(result[i], cases[i].ids) << Show(cases[i].text);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, GoldenTest, ::testing::Values("llama3", "qwen3"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

TEST(RealTokenizerTest, Llama3Lookups) {
  GRINQH_REQUIRE_SHARED();
  const Tokenizer& tokenizer = SharedTokenizer("llama3");
  EXPECT_EQ(tokenizer.vocab_size(), 128256);
  EXPECT_EQ(tokenizer.TokenToId("<|begin_of_text|>"), 128000);
  EXPECT_EQ(tokenizer.TokenToId("<|eot_id|>"), 128009);
  EXPECT_TRUE(tokenizer.IsSpecial(128009));
  EXPECT_FALSE(tokenizer.IsSpecial(9906));
  EXPECT_EQ(tokenizer.TokenBytes(9906), "Hello");
  EXPECT_EQ(tokenizer.TokenBytes(1917), " world");
  // This Llama 3 file's post-processor is ByteLevel: no BOS is added, and with no
  // tokenizer_config.json (FromFile) the BOS token is not known either.
  EXPECT_EQ(tokenizer.Encode("Hello", /*add_special_tokens=*/true), (Ids{9906}));
  EXPECT_EQ(tokenizer.bos_id(), std::nullopt);
}

TEST(RealTokenizerTest, Qwen3Lookups) {
  GRINQH_REQUIRE_SHARED();
  const Tokenizer& tokenizer = SharedTokenizer("qwen3");
  EXPECT_EQ(tokenizer.vocab_size(), 151669);
  EXPECT_EQ(tokenizer.TokenToId("<|im_end|>"), 151645);
  EXPECT_TRUE(tokenizer.IsSpecial(151645));
  EXPECT_FALSE(tokenizer.IsSpecial(151667));  // <think> is added but not special
  EXPECT_EQ(tokenizer.Decode(Ids{151667, 9707}, /*skip_special_tokens=*/true), "<think>Hello");
}

// Without a normalizer, decoding an encoding gives back the text (invalid UTF-8 aside).
TEST(RealTokenizerTest, Llama3RoundTripsRandomText) {
  GRINQH_REQUIRE_SHARED();
  const Tokenizer& tokenizer = SharedTokenizer("llama3");
  const std::vector<std::string> atoms = {
      "a", "Z", "7", "42", " ", "  ", "\t", "\n", "\r\n", "\xC2\xA0", "'s", "'LL", ".", "...",
      "\xC3\xA9", "e\xCC\x81", "\xE4\xBD\xA0", "\xF0\x9F\x91\x8B", "\xF0\x9F\x8F\xBD",
      "<|begin_of_text|>", "<|eot_id|>", "<|", "|>", "\xFF", "\xE4\xBD", "_", "-", "\xD9\xA3"};
  std::mt19937 random(7);
  std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    for (int i = 0; i < 1 + round % 40; ++i) text += atoms[pick(random)];
    const Ids ids = tokenizer.Encode(text);
    EXPECT_EQ(tokenizer.Decode(ids), SanitizeUtf8(text)) << Show(text);
    IncrementalDecoder decoder(tokenizer, /*skip_special_tokens=*/false);
    std::string streamed;
    for (int32_t id : ids) streamed += decoder.Push(id);
    streamed += decoder.Flush();
    EXPECT_EQ(streamed, SanitizeUtf8(text)) << Show(text);
  }
}

TEST(RealTokenizerTest, TruncatedFileIsRefused) {
  GRINQH_REQUIRE_SHARED();
  const std::string text =
      ReadText(::grinqh::testing::SharedDir() / "tokenizers" / "qwen3-tokenizer.json");
  ASSERT_GT(text.size(), 1000u);
  for (size_t cut : {text.size() / 3, text.size() / 2, text.size() - 10}) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
        Tokenizer::FromJson(std::string_view(text).substr(0, cut));
    EXPECT_FALSE(tokenizer.ok()) << "cut at " << cut;
  }
}

// ---------------------------------------------------------------------------------------
// The fixture models: tokenizer.json + tokenizer_config.json (add_bos_token) against the
// input_ids and greedy outputs that transformers recorded in reference.json.

TEST(ReferenceModelsTest, EncodeAndDecodeMatchReference) {
  GRINQH_REQUIRE_SHARED();
  int models = 0;
  const std::filesystem::path models_dir = ::grinqh::testing::SharedDir() / "models";
  for (const auto& entry : std::filesystem::directory_iterator(models_dir)) {
    const std::filesystem::path reference_path = entry.path() / "reference.json";
    if (!std::filesystem::exists(reference_path)) continue;
    ++models;
    SCOPED_TRACE(entry.path().filename().string());
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromDirectory(entry.path());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    const json reference = ReadJson(reference_path);
    for (const json& prompt : reference.at("prompts")) {
      const std::string text = prompt.at("text").get<std::string>();
      const Ids input_ids = prompt.at("input_ids").get<Ids>();
      EXPECT_EQ((*tokenizer)->Encode(text, /*add_special_tokens=*/true), input_ids) << Show(text);
      ASSERT_FALSE(input_ids.empty());
      EXPECT_EQ((*tokenizer)->bos_id(), input_ids.front());
      EXPECT_EQ((*tokenizer)->Decode(prompt.at("greedy_ids").get<Ids>()),
                prompt.at("greedy_text").get<std::string>());
    }
  }
  EXPECT_GT(models, 0);
}

// The default model bundled with the repository (a copy of the shared tiny-llama3).
TEST(BundledModelTest, TinyLlama3RoundTrips) {
  const std::filesystem::path dir = ::grinqh::testing::SourceDir() / "models" / "tiny-llama3";
  if (!std::filesystem::exists(dir / "tokenizer.json")) {
    GTEST_SKIP() << "no bundled model at " << dir;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // Ids from ../shared/models/tiny-llama3/reference.json (BOS 0 from tokenizer_config.json).
  EXPECT_EQ((*tokenizer)->Encode("import numpy as np\n", true), (Ids{0, 779, 1568, 383, 488, 201}));
  EXPECT_EQ((*tokenizer)->Encode("# Licensed under the Apache License", true),
            (Ids{0, 5, 3361, 1348, 310, 3066, 990}));
  EXPECT_EQ((*tokenizer)->bos_id(), 0);
  for (const char* text :
       {"def f(x):\n    return x**2  # ok\n", "naïve café 你好 👋", "", "  \t\n"}) {
    const Ids ids = (*tokenizer)->Encode(text, true);
    EXPECT_EQ((*tokenizer)->Decode(ids, /*skip_special_tokens=*/true), text);
  }
}

}  // namespace
}  // namespace grinqh
