// A GRINQH model file made from the bundled model, loaded back and decoded at graded depths.
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "engine/calibration/calibration.h"
#include "engine/serving/generator.h"
#include "engine/calibration/grinqh_writer.h"
#include "engine/serving/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

double RelativeL2(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / norm);
}

class GrinqhModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                      ("grinqh_model_test_" + std::to_string(getpid()) + ".grinqh"));
    const absl::Status status = QuantizeToGrinqhFile(testing::SourceDir() / "models" / "tiny-llama3", {}, *path_);
    ASSERT_TRUE(status.ok()) << status;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove(*path_);
    delete path_;
  }

  std::vector<float> ForwardLogits(Model& model, const std::vector<int32_t>& ids, float target_bits) {
    auto cache = model.backend().NewCache();
    const ForwardItem item{cache.get(), ids, Logits::kAll, target_bits};
    std::vector<float> logits;
    EXPECT_TRUE(model.backend().Forward({&item, 1}, logits).ok());
    return logits;
  }

  static std::filesystem::path* path_;
  const std::vector<int32_t> prompt_ = {0, 328, 286, 1712, 266, 1210, 3845, 597, 329, 261, 417, 2144};
};
std::filesystem::path* GrinqhModelTest::path_ = nullptr;

TEST_F(GrinqhModelTest, LoadsWithItsConfigAndTokenizer) {
  auto model = Model::Load(*path_);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->max_decode_bits(), 8);
  EXPECT_EQ((*model)->config().num_layers, 4);
  ASSERT_NE((*model)->tokenizer(), nullptr);
  EXPECT_EQ((*model)->tokenizer()->Encode("def fibonacci(n):\n    \"\"\"Return", true), prompt_);
}

// Graded at 8 bits every channel reads every plane: the result is the dequantized 8-bit
// model's, which the dense full-depth path computes.
TEST_F(GrinqhModelTest, EightBitsMatchTheDequantizedModel) {
  auto model = Model::Load(*path_);
  ASSERT_TRUE(model.ok()) << model.status();
  const auto dense = ForwardLogits(**model, prompt_, 0.f);
  const auto graded = ForwardLogits(**model, prompt_, 8.f);
  EXPECT_LT(RelativeL2(graded, dense), 1e-5);

  // And the 8-bit model stays close to the bf16 checkpoint it came from.
  auto reference = Model::Load(testing::SourceDir() / "models" / "tiny-llama3");
  ASSERT_TRUE(reference.ok());
  EXPECT_LT(RelativeL2(dense, ForwardLogits(**reference, prompt_, 0.f)), 0.02);
}

// Fewer bits, further from full depth, monotonically.
TEST_F(GrinqhModelTest, ErrorGrowsAsBitsShrink) {
  auto model = Model::Load(*path_);
  ASSERT_TRUE(model.ok()) << model.status();
  const auto dense = ForwardLogits(**model, prompt_, 0.f);
  double previous = 0;
  for (float bits : {6.f, 4.f, 3.f, 2.f, 1.f}) {
    const double error = RelativeL2(ForwardLogits(**model, prompt_, bits), dense);
    EXPECT_GT(error, previous) << bits << " bits";
    previous = error;
  }
}

// What the file holds is what was quantized: the model loaded from it computes exactly
// what the in-memory quantized variant of the same checkpoint computes, graded at 3 bits.
TEST_F(GrinqhModelTest, FileMatchesTheInMemoryQuantization) {
  auto from_file = Model::Load(*path_);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  auto base = Model::Load(testing::SourceDir() / "models" / "tiny-llama3");
  ASSERT_TRUE(base.ok());
  BaselineOptions options;
  options.method = "grinqh";
  options.bits = 8;
  options.group_size = kGrinqhGroupSize;  // the file was written with quantize's default
  auto variant = QuantizedVariant::Create(**base, options, {});
  ASSERT_TRUE(variant.ok()) << variant.status();
  auto cache = (*variant)->backend().NewCache();
  const ForwardItem item{cache.get(), prompt_, Logits::kAll, 3.f};
  std::vector<float> in_memory;
  ASSERT_TRUE((*variant)->backend().Forward({&item, 1}, in_memory).ok());
  EXPECT_LT(RelativeL2(ForwardLogits(**from_file, prompt_, 3.f), in_memory), 1e-6);
}

TEST_F(GrinqhModelTest, DecodeBitsAreCheckedAgainstTheModel) {
  auto model = Model::Load(*path_);
  ASSERT_TRUE(model.ok());
  GenerationRequest request;
  request.prompt_ids = prompt_;
  request.max_tokens = 8;
  request.decode_bits = 3.f;
  auto result = Generate(**model, request);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tokens.size(), 8u);
  request.decode_bits = 9.f;
  EXPECT_EQ(Generate(**model, request).status().code(), absl::StatusCode::kInvalidArgument);

  auto plain = Model::Load(testing::SourceDir() / "models" / "tiny-llama3");
  ASSERT_TRUE(plain.ok());
  request.decode_bits = 3.f;
  const auto status = Generate(**plain, request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("GRINQH model"));
}

TEST_F(GrinqhModelTest, CorruptFileIsRefusedWithTheTensorNamed) {
  const auto copy = std::filesystem::path(*path_).replace_extension(".corrupt.grinqh");
  std::filesystem::copy_file(*path_, copy, std::filesystem::copy_options::overwrite_existing);
  {
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(copy) - 100));
    f.put('\x5a');
  }
  auto model = Model::Load(copy);
  std::filesystem::remove(copy);
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("checksum"));
}

}  // namespace
}  // namespace grinqh
