// Chat template rendering: a conversation of arbitrary roles and contents (the client's),
// rendered with the Llama 3 and ChatML templates and encoded as the server does; and
// ForTokenizer on an arbitrary chat_template text.
//
// The tokenizer is built here: ids 0-255 are the bytes (byte-level), then both families'
// special tokens, so each template finds its BOS and end-of-turn tokens.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/unicode.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_util.h"

namespace grinqh::fuzz {
namespace {

using json = nlohmann::json;

std::string TokenizerJson() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[BytesToByteLevel(std::string(1, static_cast<char>(b)))] = b;
  json added = json::array();
  int id = 256;
  for (const char* content : {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                              "<|im_start|>", "<|im_end|>", "<think>", "</think>"}) {
    added.push_back({{"id", id++}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  return json{{"version", "1.0"},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer",
               {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}},
              {"model",
               {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
                {"ignore_merges", false}, {"vocab", vocab}, {"merges", json::array()}}}}
      .dump();
}

std::unique_ptr<Tokenizer> MakeTokenizer(const std::string& chat_template) {
  const json config = {{"bos_token", "<|begin_of_text|>"}, {"chat_template", chat_template}};
  // Invalid UTF-8 in the template becomes U+FFFD: JSON text cannot carry it.
  auto tokenizer = Tokenizer::FromJson(TokenizerJson(), config.dump(-1, ' ', false, json::error_handler_t::replace));
  GRINQH_FUZZ_CHECK(tokenizer.ok());
  return *std::move(tokenizer);
}

struct Family {
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat;
};

Family MakeFamily(const std::string& chat_template) {
  auto tokenizer = MakeTokenizer(chat_template);
  auto chat = ChatTemplate::ForTokenizer(*tokenizer);
  GRINQH_FUZZ_CHECK(chat.ok());
  return {std::move(tokenizer), *chat};
}

// The markers ForTokenizer recognizes each family by (the real templates hold them).
const Family& Llama3() {
  static const Family family = MakeFamily("<|start_header_id|>...<|eot_id|>");
  return family;
}
const Family& ChatMl() {
  static const Family family = MakeFamily("<|im_start|>...<|im_end|>");
  return family;
}

}  // namespace
}  // namespace grinqh::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  using namespace grinqh::fuzz;
  FuzzedDataProvider input(data, size);
  const int mode = input.ConsumeIntegralInRange(0, 2);
  if (mode == 2) {
    // An arbitrary template text: recognized or refused, never a fault.
    const auto tokenizer = MakeTokenizer(input.ConsumeRemainingBytesAsString());
    const auto chat = ChatTemplate::ForTokenizer(*tokenizer);
    if (chat.ok()) GRINQH_FUZZ_CHECK(chat->end_of_turn_id() >= 256);
    return 0;
  }
  const Family& family = mode == 0 ? Llama3() : ChatMl();
  std::vector<ChatMessage> messages;
  while (input.remaining_bytes() > 0 && messages.size() < 64) {
    static const char* const kRoles[] = {"system", "user", "assistant", "tool", ""};
    std::string role = input.ConsumeBool() ? input.PickValueInArray(kRoles) : input.ConsumeRandomLengthString(16);
    messages.push_back({std::move(role), input.ConsumeRandomLengthString(256)});
  }
  const auto prompt = family.chat.Render(messages);
  if (!prompt.ok()) return 0;
  // The server encodes the rendered prompt with the special tokens parsed.
  for (const int32_t id : family.tokenizer->Encode(*prompt)) {
    GRINQH_FUZZ_CHECK(id >= 0 && id < family.tokenizer->vocab_size());
  }
  return 0;
}
