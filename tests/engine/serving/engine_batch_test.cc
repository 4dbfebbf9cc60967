// Batch invariance, for every backend this machine can run, each against its own guarantee
// (Backend::batch_tolerance; the CPU's is bit for bit): a sequence's logits are the same
// alone, batched beside other sequences of any length, and with its prompt read whole or in
// chunks of any size. The scheduler relies on it: every request gets what it gets alone.
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/backends/cpu/cpu_ops.h"
#include "engine/backends/registry.h"
#include "engine/calibration/grinqh_writer.h"
#include "engine/serving/model.h"
#include "gtest/gtest.h"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

// The documented order of every product (cpu_ops.h), one output at a time: lanes of
// multiply-adds over k ≡ lane (mod lanes), then the lanes added pairwise.
float ReferenceDot(const float* x, const float* w, int n) {
  constexpr int kLanes = cpu::kMatMulLanes;
  float lanes[kLanes] = {};
  for (int k = 0; k < n; ++k) {
    float& lane = lanes[k % kLanes];
    lane = cpu::kMatMulFused ? std::fma(x[k], w[k], lane) : lane + x[k] * w[k];
  }
  for (int width = kLanes / 2; width >= 1; width /= 2) {
    for (int j = 0; j < width; ++j) lanes[j] += lanes[j + width];
  }
  return lanes[0];
}

uint16_t ToBf16(float v) { return static_cast<uint16_t>(std::bit_cast<uint32_t>(v) >> 16); }
float FromBf16(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }

// Every row count (one decode row, a few, tiles and their remainders) and odd shapes give
// each output exactly the reference sum: no row's result depends on the others.
TEST(MatMulTest, EveryRowSumsInTheDocumentedOrderWhateverTheBatch) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  ThreadPool pool(2);
  for (const auto& [n_out, k_in] : {std::pair{37, 100}, std::pair{64, 256}, std::pair{5, 16}, std::pair{20, 7}}) {
    for (const DType dtype : {DType::kBF16, DType::kF32}) {
      std::vector<uint16_t> bf16(static_cast<size_t>(n_out * k_in));
      std::vector<float> f32(bf16.size()), widened(bf16.size());
      for (size_t i = 0; i < bf16.size(); ++i) {
        f32[i] = normal(rng);
        bf16[i] = ToBf16(f32[i]);
        widened[i] = dtype == DType::kBF16 ? FromBf16(bf16[i]) : f32[i];
      }
      const auto* data = dtype == DType::kBF16 ? reinterpret_cast<const std::byte*>(bf16.data())
                                               : reinterpret_cast<const std::byte*>(f32.data());
      const Matrix w{dtype, data, n_out, k_in};
      for (const int rows : {1, 2, 3, 4, 5, 8, 13, 33}) {
        std::vector<float> x(static_cast<size_t>(rows * k_in)), y(static_cast<size_t>(rows * n_out));
        for (float& v : x) v = normal(rng);
        cpu::MatMul(pool, x.data(), rows, w, y.data());
        for (int t = 0; t < rows; ++t) {
          for (int n = 0; n < n_out; ++n) {
            const float want = ReferenceDot(&x[size_t(t * k_in)], &widened[size_t(n * k_in)], k_in);
            ASSERT_EQ(std::bit_cast<uint32_t>(y[size_t(t * n_out + n)]), std::bit_cast<uint32_t>(want))
                << "shape " << n_out << "x" << k_in << " rows " << rows << " row " << t << " output " << n;
          }
        }
      }
    }
  }
}

class BatchInvarianceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto model = Model::Load(testing::SourceDir() / "models" / "tiny-llama3", {.name = GetParam()});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    std::mt19937 rng(3);
    for (const int length : {70, 5, 1, 133, 24}) {
      std::vector<int32_t>& prompt = prompts_.emplace_back();
      for (int i = 0; i < length; ++i) prompt.push_back(static_cast<int32_t>(rng() % 8192));
    }
  }
  size_t vocab() const { return static_cast<size_t>(model_->config().vocab_size); }

  // Logits of every token of `prompt` read in one Forward, alone.
  std::vector<float> Alone(const std::vector<int32_t>& prompt) {
    auto cache = model_->backend().NewCache();
    const ForwardItem item{cache.get(), prompt, Logits::kAll};
    std::vector<float> logits;
    EXPECT_TRUE(model_->backend().Forward({&item, 1}, logits).ok());
    return logits;
  }

  // Within the backend's guarantee: bit for bit when its tolerance is 0.
  void ExpectSame(const float* got, const std::vector<float>& want, const std::string& what) const {
    const double tolerance = model_->backend().batch_tolerance();
    if (tolerance == 0) {
      EXPECT_EQ(std::memcmp(got, want.data(), want.size() * sizeof(float)), 0) << what;
      return;
    }
    double diff = 0, norm = 0;
    for (size_t i = 0; i < want.size(); ++i) diff += std::pow(got[i] - want[i], 2), norm += double(want[i]) * want[i];
    EXPECT_LE(std::sqrt(diff / norm), tolerance) << what;
  }

  std::unique_ptr<Model> model_;
  std::vector<std::vector<int32_t>> prompts_;
};

INSTANTIATE_TEST_SUITE_P(Backends, BatchInvarianceTest, ::testing::ValuesIn(AvailableBackends()),
                         [](const auto& param_info) { return param_info.param; });

TEST_P(BatchInvarianceTest, PromptLogitsAreTheSameAloneAndBatched) {
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<ForwardItem> items;
  for (const auto& prompt : prompts_) {
    caches.push_back(model_->backend().NewCache());
    items.push_back({caches.back().get(), prompt, Logits::kAll});
  }
  std::vector<float> batched;
  ASSERT_TRUE(model_->backend().Forward(items, batched).ok());
  size_t offset = 0;
  for (size_t i = 0; i < prompts_.size(); ++i) {
    const std::vector<float> alone = Alone(prompts_[i]);
    ASSERT_LE(offset + alone.size(), batched.size());
    ExpectSame(&batched[offset], alone, "prompt " + std::to_string(i));
    offset += alone.size();
  }
}

// A prompt read in chunks of varied sizes, each chunk batched with decodes of other
// sequences (as the scheduler does), gives the logits it gives read whole and alone; so
// does the decode step after it.
TEST_P(BatchInvarianceTest, ChunkedPrefillBesideDecodesMatchesWholePrompt) {
  const std::vector<int32_t>& long_prompt = prompts_[3];  // 133 tokens
  std::vector<int32_t> with_next = long_prompt;
  with_next.push_back(42);
  const std::vector<float> whole = Alone(with_next);

  // Two other sequences, prefilled, then decoding one token per step beside the chunks.
  std::vector<std::unique_ptr<KvCache>> others;
  std::vector<float> logits;
  for (size_t i : {0, 2}) {
    others.push_back(model_->backend().NewCache());
    const ForwardItem item{others.back().get(), prompts_[i], Logits::kLast};
    ASSERT_TRUE(model_->backend().Forward({&item, 1}, logits).ok());
  }
  auto cache = model_->backend().NewCache();
  const int32_t next_decode = 17;
  size_t done = 0;
  for (const size_t chunk : {1, 7, 16, 33, 63, 13}) {
    ASSERT_LE(done + chunk, long_prompt.size());
    std::vector<ForwardItem> items;
    for (auto& other : others) items.push_back({other.get(), {&next_decode, 1}, Logits::kLast});
    items.push_back({cache.get(), std::span<const int32_t>(long_prompt).subspan(done, chunk), Logits::kAll});
    ASSERT_TRUE(model_->backend().Forward(items, logits).ok());
    const std::vector<float> want(whole.begin() + static_cast<ptrdiff_t>(done * vocab()),
                                  whole.begin() + static_cast<ptrdiff_t>((done + chunk) * vocab()));
    ExpectSame(&logits[others.size() * vocab()], want, "chunk at " + std::to_string(done));
    done += chunk;
  }
  ASSERT_EQ(done, long_prompt.size());

  // The next token decoded alone, then beside a prefill chunk of a fresh sequence.
  const ForwardItem decode{cache.get(), {&with_next.back(), 1}, Logits::kLast};
  const std::vector<float> want(whole.end() - static_cast<ptrdiff_t>(vocab()), whole.end());
  auto fresh = model_->backend().NewCache();
  const ForwardItem prefill{fresh.get(), prompts_[4], Logits::kLast};
  const std::vector<ForwardItem> items = {decode, prefill};
  ASSERT_TRUE(model_->backend().Forward(items, logits).ok());
  ExpectSame(logits.data(), want, "decode beside a prefill");
}

// Chunks that want no logits (Logits::kNone, as the scheduler feeds a prompt) return none,
// and leave the cache as chunks with logits do: the last chunk's logits are the whole
// prompt's last row.
TEST_P(BatchInvarianceTest, ChunksWithoutLogitsFillTheSameCache) {
  const std::vector<int32_t>& prompt = prompts_[0];  // 70 tokens
  const std::vector<float> whole = Alone(prompt);
  auto cache = model_->backend().NewCache();
  std::vector<float> logits;
  const ForwardItem first{cache.get(), std::span<const int32_t>(prompt).first(40), Logits::kNone};
  ASSERT_TRUE(model_->backend().Forward({&first, 1}, logits).ok());
  EXPECT_TRUE(logits.empty());
  EXPECT_EQ(cache->length(), 40);
  const ForwardItem last{cache.get(), std::span<const int32_t>(prompt).subspan(40), Logits::kLast};
  ASSERT_TRUE(model_->backend().Forward({&last, 1}, logits).ok());
  ASSERT_EQ(logits.size(), vocab());
  ExpectSame(logits.data(), std::vector<float>(whole.end() - static_cast<ptrdiff_t>(vocab()), whole.end()),
             "the last chunk");
}

// GRINQH: graded decode rows (each at its own target) read the nested planes, full-depth
// rows the dense weights, whatever shares the batch.
TEST(GrinqhBatchInvarianceTest, EachRowReadsAtItsOwnTargetWhateverSharesTheBatch) {
  const auto path = std::filesystem::temp_directory_path() / ("grinqh_batch_test_" + std::to_string(getpid()) + ".grinqh");
  ASSERT_TRUE(QuantizeToGrinqhFile(testing::SourceDir() / "models" / "tiny-llama3", {}, path).ok());
  auto loaded = Model::Load(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Model& model = **loaded;
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);
  const std::vector<std::vector<int32_t>> prompts = {{0, 328, 286, 1712}, {0, 779, 1568, 383, 488, 201}, {5, 6, 7}};
  const float targets[] = {3.f, 0.f, 2.5f};  // the decode step's target; prompts read full depth
  const int32_t next = 42;

  // Alone: each prompt, then one decode at its target.
  std::vector<std::vector<float>> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto cache = model.backend().NewCache();
    std::vector<float> logits;
    const ForwardItem prefill{cache.get(), prompts[i], Logits::kLast};
    ASSERT_TRUE(model.backend().Forward({&prefill, 1}, logits).ok());
    const ForwardItem decode{cache.get(), {&next, 1}, Logits::kLast, targets[i]};
    ASSERT_TRUE(model.backend().Forward({&decode, 1}, logits).ok());
    alone.push_back(logits);
  }
  // Batched: the prompts together, then the three decodes beside a fresh prompt's prefill.
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<ForwardItem> items;
  for (const auto& prompt : prompts) {
    caches.push_back(model.backend().NewCache());
    items.push_back({caches.back().get(), prompt, Logits::kLast});
  }
  std::vector<float> logits;
  ASSERT_TRUE(model.backend().Forward(items, logits).ok());
  items.clear();
  for (size_t i = 0; i < prompts.size(); ++i) items.push_back({caches[i].get(), {&next, 1}, Logits::kLast, targets[i]});
  auto fresh = model.backend().NewCache();
  items.push_back({fresh.get(), prompts[1], Logits::kLast});
  ASSERT_TRUE(model.backend().Forward(items, logits).ok());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(std::memcmp(&logits[i * vocab], alone[i].data(), vocab * sizeof(float)), 0) << "target " << targets[i];
  }
}

}  // namespace
}  // namespace grinqh
