#include "engine/tokenizer/chat_template.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/base/unicode.h"

namespace grinqh {
namespace {

bool Contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// Python's str.strip(chars) / lstrip / rstrip, as the Jinja templates use them.
std::string_view LStrip(std::string_view s, std::string_view chars) {
  const size_t start = s.find_first_not_of(chars);
  return start == std::string_view::npos ? std::string_view() : s.substr(start);
}
std::string_view RStrip(std::string_view s, std::string_view chars) {
  const size_t end = s.find_last_not_of(chars);
  return end == std::string_view::npos ? std::string_view() : s.substr(0, end + 1);
}
std::string_view Strip(std::string_view s, std::string_view chars) { return RStrip(LStrip(s, chars), chars); }

// Jinja's `trim` (Python's str.strip()) on ASCII whitespace.
constexpr std::string_view kWhitespace = " \t\n\r\v\f";

}  // namespace

// The prompt as the template writes it: its own markers (special tokens) apart from the text
// between them (roles, contents), so that only the markers are encoded as special tokens.
class ChatPrompt {
 public:
  void Marker(std::string_view marker) { pieces_.push_back({std::string(marker), true}); }
  void Text(std::string_view text) {
    if (pieces_.empty() || pieces_.back().marker) pieces_.push_back({"", false});
    pieces_.back().text += text;
  }
  std::string Join() const {
    std::string out;
    for (const Piece& piece : pieces_) out += piece.text;
    return out;
  }
  // Each stretch of text is encoded alone, as the tokenizer itself splits the joined prompt
  // at its special tokens.
  std::vector<int32_t> Encode(const Tokenizer& tokenizer) const {
    std::vector<int32_t> ids;
    for (const Piece& piece : pieces_) {
      const std::vector<int32_t> part = tokenizer.Encode(piece.text, /*add_special_tokens=*/false,
                                                         /*parse_special_tokens=*/piece.marker);
      ids.insert(ids.end(), part.begin(), part.end());
    }
    return ids;
  }

 private:
  struct Piece {
    std::string text;
    bool marker;
  };
  std::vector<Piece> pieces_;
};

absl::StatusOr<ChatTemplate> ChatTemplate::ForTokenizer(const Tokenizer& tokenizer) {
  const std::optional<std::string>& source = tokenizer.chat_template();
  if (!source) {
    return absl::FailedPreconditionError(
        "this model has no chat template (tokenizer_config.json has no chat_template); send a prompt instead");
  }
  Format format;
  std::string_view end_of_turn;
  if (Contains(*source, "<|start_header_id|>") && Contains(*source, "<|eot_id|>")) {
    format = Format::kLlama3, end_of_turn = "<|eot_id|>";
  } else if (Contains(*source, "<|im_start|>") && Contains(*source, "<|im_end|>")) {
    format = Format::kChatMl, end_of_turn = "<|im_end|>";
  } else {
    return absl::FailedPreconditionError(
        "this model's chat template is neither Llama 3's nor ChatML (Qwen3); only those are supported");
  }
  const std::optional<int32_t> end_id = tokenizer.TokenToId(end_of_turn);
  if (!end_id) {
    return absl::FailedPreconditionError(absl::StrCat("the chat template's end-of-turn token ", std::string(end_of_turn),
                                                      " is not in the vocabulary"));
  }
  std::string bos;
  if (format == Format::kLlama3) {
    const std::optional<int32_t> bos_id = tokenizer.bos_id();
    if (!bos_id) return absl::FailedPreconditionError("the Llama 3 chat template needs a BOS token, and the tokenizer has none");
    bos = tokenizer.TokenBytes(*bos_id);
  }
  return ChatTemplate(format, *end_id, std::move(bos));
}

absl::Status ChatTemplate::CheckRoles(std::span<const ChatMessage> messages) const {
  if (messages.empty()) return absl::InvalidArgumentError("messages: the conversation is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].role: must be system, user or assistant, got ",
                                                     QuoteInput(role)));
    }
  }
  return absl::OkStatus();
}

void ChatTemplate::RenderTo(std::span<const ChatMessage> messages, ChatPrompt& out) const {
  if (format_ == Format::kLlama3) {
    RenderLlama3(messages, out);
  } else {
    RenderChatMl(messages, out);
  }
}

absl::StatusOr<std::string> ChatTemplate::Render(std::span<const ChatMessage> messages) const {
  GRINQH_RETURN_IF_ERROR(CheckRoles(messages));
  ChatPrompt prompt;
  RenderTo(messages, prompt);
  return prompt.Join();
}

absl::StatusOr<std::vector<int32_t>> ChatTemplate::Encode(const Tokenizer& tokenizer,
                                                         std::span<const ChatMessage> messages) const {
  GRINQH_RETURN_IF_ERROR(CheckRoles(messages));
  ChatPrompt prompt;
  RenderTo(messages, prompt);
  return prompt.Encode(tokenizer);
}

void ChatTemplate::RenderLlama3(std::span<const ChatMessage> messages, ChatPrompt& out) const {
  out.Marker(bos_);
  for (const ChatMessage& m : messages) {
    out.Marker("<|start_header_id|>");
    out.Text(m.role);
    out.Marker("<|end_header_id|>");
    out.Text("\n\n");
    out.Text(Strip(m.content, kWhitespace));
    out.Marker("<|eot_id|>");
  }
  out.Marker("<|start_header_id|>");
  out.Text("assistant");
  out.Marker("<|end_header_id|>");
  out.Text("\n\n");
}

// Qwen3's template without tools: assistant turns after the last user message keep their
// reasoning in a <think> block (an empty one for the final turn); earlier ones drop it.
void ChatTemplate::RenderChatMl(std::span<const ChatMessage> messages, ChatPrompt& out) const {
  const int count = static_cast<int>(messages.size());
  int last_query = count - 1;
  for (int i = count - 1; i >= 0; --i) {
    const std::string& text = messages[i].content;
    const bool tool_response = text.starts_with("<tool_response>") && text.ends_with("</tool_response>");
    if (messages[i].role == "user" && !tool_response) {
      last_query = i;
      break;
    }
  }
  for (int i = 0; i < count; ++i) {
    const ChatMessage& m = messages[i];
    out.Marker("<|im_start|>");
    if (m.role != "assistant") {
      out.Text(absl::StrCat(m.role, "\n", m.content));
      out.Marker("<|im_end|>");
      out.Text("\n");
      continue;
    }
    std::string_view content = m.content, reasoning;
    if (const size_t close = content.rfind("</think>"); close != std::string_view::npos) {
      std::string_view before = RStrip(content.substr(0, content.find("</think>")), "\n");
      if (const size_t open = before.rfind("<think>"); open != std::string_view::npos) before = before.substr(open + 7);
      reasoning = LStrip(before, "\n");
      content = LStrip(content.substr(close + 8), "\n");
    }
    if (i > last_query && (i == count - 1 || !reasoning.empty())) {
      out.Text(absl::StrCat("assistant\n<think>\n", std::string(Strip(reasoning, "\n")), "\n</think>\n\n",
                            std::string(LStrip(content, "\n"))));
    } else {
      out.Text(absl::StrCat("assistant\n", std::string(content)));
    }
    out.Marker("<|im_end|>");
    out.Text("\n");
  }
  out.Marker("<|im_start|>");
  out.Text("assistant\n");
}

}  // namespace grinqh
