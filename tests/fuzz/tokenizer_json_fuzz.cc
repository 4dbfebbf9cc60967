// Loading a tokenizer from tokenizer.json text (and tokenizer_config.json after a NUL byte),
// then using whatever loaded: a tokenizer that passes the checks must encode and decode
// anything without fault.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  const auto [tokenizer_json, config_json] = fuzz::SplitAtNul(data, size);
  auto tokenizer = Tokenizer::FromJson(tokenizer_json, config_json);
  if (!tokenizer.ok()) return 0;
  const Tokenizer& t = **tokenizer;
  for (const char* text : {"Hello world, it's 2024!\n\tabc", "<|bos|> [M] XY \xC3\xA9\xF0\x9F\x98\x80 \xFF\xFE"}) {
    const std::vector<int32_t> ids = t.Encode(text, /*add_special_tokens=*/true);
    for (const int32_t id : ids) GRINQH_FUZZ_CHECK(id >= 0 && id < t.vocab_size());
    (void)t.Decode(ids);
    IncrementalDecoder decoder(t);
    for (const int32_t id : ids) (void)decoder.Push(id);
    (void)decoder.Flush();
  }
  const std::vector<int32_t> edge_ids = {-1, 0, t.vocab_size() - 1, t.vocab_size(), INT32_MAX, INT32_MIN};
  (void)t.Decode(edge_ids, /*skip_special_tokens=*/true);
  if (t.bos_id()) (void)t.TokenBytes(*t.bos_id());
  return 0;
}
