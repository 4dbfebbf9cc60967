// Chat templates: a conversation (system / user / assistant messages) rendered into the
// prompt text the model was tuned on, and the token that ends the model's turn.
//
// Hugging Face models carry their template as Jinja in tokenizer_config.json. Rather than
// embed a Jinja interpreter, we recognize the two families we serve by their special tokens
// and render them in C++ exactly as their templates do (tests compare against the real
// templates rendered by Jinja):
//   llama3  <|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|>, BOS first
//   chatml  <|im_start|>role\n content <|im_end|>\n  (Qwen3, without tools)
// Any other template is refused with a message, never rendered approximately.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace grinqh {

class ChatPrompt;  // the rendered prompt, its markers kept apart from its text (chat_template.cc)

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  enum class Format { kLlama3, kChatMl };

  // The template of the tokenizer's tokenizer_config.json. FAILED_PRECONDITION when it has
  // none, or one that is not of a family above, or whose end-of-turn token is missing.
  static absl::StatusOr<ChatTemplate> ForTokenizer(const Tokenizer& tokenizer);

  // The prompt for the assistant's next turn (add_generation_prompt in Hugging Face's
  // terms). INVALID_ARGUMENT, naming the message, for an unknown role or no messages.
  absl::StatusOr<std::string> Render(std::span<const ChatMessage> messages) const;
  // The same prompt as token ids. Only the template's own markers (<|im_start|>, <|eot_id|>,
  // BOS, ...) become special tokens: a message that contains `<|im_end|>` gets the ids of
  // that text, so a user cannot forge a turn (as OpenAI's API treats content). Otherwise the
  // ids are those of `tokenizer.Encode(*Render(messages))`.
  absl::StatusOr<std::vector<int32_t>> Encode(const Tokenizer& tokenizer, std::span<const ChatMessage> messages) const;

  Format format() const { return format_; }
  std::string_view name() const { return format_ == Format::kLlama3 ? "llama3" : "chatml"; }
  // The token the model emits at the end of its turn; generation stops there.
  int32_t end_of_turn_id() const { return end_of_turn_id_; }

 private:
  ChatTemplate(Format format, int32_t end_of_turn_id, std::string bos)
      : format_(format), end_of_turn_id_(end_of_turn_id), bos_(std::move(bos)) {}
  absl::Status CheckRoles(std::span<const ChatMessage> messages) const;
  void RenderLlama3(std::span<const ChatMessage> messages, ChatPrompt& out) const;
  void RenderChatMl(std::span<const ChatMessage> messages, ChatPrompt& out) const;
  void RenderTo(std::span<const ChatMessage> messages, ChatPrompt& out) const;

  Format format_;
  int32_t end_of_turn_id_;
  std::string bos_;  // llama3: the BOS token's text, which the template writes first
};

}  // namespace grinqh
