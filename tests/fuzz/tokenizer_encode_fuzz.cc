// Tokenizer encode and streaming decode on arbitrary bytes, with the bundled model's
// tokenizer (models/tiny-llama3: Llama 3's pre-tokenizer regex, byte-level BPE, specials).
//
// Properties checked beyond "no crash, no sanitizer report":
//   - every id Encode returns is in the vocabulary;
//   - valid UTF-8 round-trips: Decode(Encode(text)) == text (no normalizer, byte-level BPE);
//   - streaming decode (IncrementalDecoder) emits exactly what Decode of the whole gives,
//     for encoded ids and for the input read as arbitrary (even invalid) ids.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/file_util.h"
#include "engine/base/unicode.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

namespace grinqh::fuzz {
namespace {

const Tokenizer& BundledTokenizer() {
  static const Tokenizer* const tokenizer = [] {
    auto loaded = Tokenizer::FromDirectory(SourceDir() / "models" / "tiny-llama3");
    GRINQH_FUZZ_CHECK(loaded.ok());
    return loaded->release();
  }();
  return *tokenizer;
}

void CheckStreamingDecode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip_special) {
  IncrementalDecoder decoder(tokenizer, skip_special);
  std::string streamed;
  for (const int32_t id : ids) streamed += decoder.Push(id);
  streamed += decoder.Flush();
  GRINQH_FUZZ_CHECK(streamed == tokenizer.Decode(ids, skip_special));
  GRINQH_FUZZ_CHECK(IsValidUtf8(streamed));
}

}  // namespace
}  // namespace grinqh::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  using namespace grinqh::fuzz;
  const Tokenizer& tokenizer = BundledTokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::vector<int32_t> ids = tokenizer.Encode(text, /*add_special_tokens=*/size % 2 == 1);
  for (const int32_t id : ids) GRINQH_FUZZ_CHECK(id >= 0 && id < tokenizer.vocab_size());
  if (size % 2 == 0 && IsValidUtf8(text)) GRINQH_FUZZ_CHECK(tokenizer.Decode(ids) == text);
  CheckStreamingDecode(tokenizer, ids, /*skip_special=*/true);

  // The same bytes as token ids a client could send: negative, huge, special, anything.
  std::vector<int32_t> raw_ids(size / sizeof(int32_t));
  if (!raw_ids.empty()) std::memcpy(raw_ids.data(), data, raw_ids.size() * sizeof(int32_t));
  CheckStreamingDecode(tokenizer, raw_ids, /*skip_special=*/true);
  CheckStreamingDecode(tokenizer, raw_ids, /*skip_special=*/false);
  return 0;
}
