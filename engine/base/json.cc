#include "engine/base/json.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

// Thrown from the parse callback to stop at the first fault (the parser would otherwise
// read on to the end of a possibly huge document).
struct Refusal {
  std::string fault;
};

// One open object or array: the keys seen so far and the current key, or the current index.
struct Container {
  bool object = false;
  std::set<std::string> keys;
  std::string key;
  size_t index = 0;
};

// A JSON Pointer (RFC 6901, unescaped) to the current value, cut short when long.
std::string Pointer(const std::vector<Container>& open) {
  constexpr size_t kMaxChars = 80;
  std::string pointer;
  for (const Container& c : open) {
    absl::StrAppend(&pointer, "/", c.object ? c.key : std::to_string(c.index));
    if (pointer.size() > kMaxChars) return pointer.substr(0, kMaxChars) + "...";
  }
  return pointer.empty() ? "/" : pointer;
}

}  // namespace

absl::StatusOr<json> ParseStrictJson(std::string_view text, std::string_view what) {
  const std::string name(what);  // absl::StrCat takes absl::string_view, not std::string_view
  std::vector<Container> open;
  const auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth) {
      throw Refusal{absl::StrCat("nests deeper than ", kMaxJsonDepth, " levels (at ", Pointer(open), ")")};
    }
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        open.emplace_back().object = event == json::parse_event_t::object_start;
        break;
      case json::parse_event_t::key:
        open.back().key = parsed.get<std::string>();
        if (!open.back().keys.insert(open.back().key).second) {
          const std::string key = json(open.back().key).dump(-1, ' ', false, json::error_handler_t::replace);
          throw Refusal{absl::StrCat("has the key ", key, " twice (at ", Pointer(open), ")")};
        }
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        open.pop_back();
        [[fallthrough]];  // a closed container is one more element of an enclosing array
      case json::parse_event_t::value:
        if (!open.empty() && !open.back().object) ++open.back().index;
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const Refusal& r) {
    return absl::InvalidArgumentError(absl::StrCat(name, " ", r.fault));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not valid JSON: ", e.what()));
  }
}

}  // namespace grinqh
