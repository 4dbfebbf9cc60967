// grinqh quantize beyond the plain nested store: calibrated decode schedules, and the
// fixed-width baselines written as .grinqh files, against what they must compute.
#include <unistd.h>

#include <cmath>

#include "engine/backends/cpu/bit_plane_matvec.h"
#include "engine/calibration/calibration.h"
#include "engine/base/file_util.h"
#include "engine/serving/generator.h"
#include "engine/model/grinqh_file.h"
#include "engine/calibration/grinqh_writer.h"
#include "engine/serving/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

std::filesystem::path TinyLlama() { return testing::SourceDir() / "models" / "tiny-llama3"; }

std::filesystem::path TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("grinqh_quantize_test_" + std::to_string(getpid()) + "_" + name);
}

// Small calibration: any text will do for the mechanics (this one is in the repository).
GrinqhQuantizeOptions Calibrated(GrinqhQuantizeOptions o = {}) {
  o.calib = testing::SourceDir() / "docs" / "FORMAT.md";
  o.calib_windows = 4;
  o.window_tokens = 128;
  o.schedule.sample_stride = 16;
  o.schedule.sensitivity_windows = 1;
  return o;
}

std::vector<float> ForwardLogits(Backend& backend, const std::vector<int32_t>& ids, float target_bits,
                                 ForwardStats* stats = nullptr) {
  auto cache = backend.NewCache();
  const ForwardItem item{cache.get(), ids, Logits::kAll, target_bits};
  std::vector<float> logits;
  std::vector<ForwardStats> item_stats;
  EXPECT_TRUE(backend.Forward({&item, 1}, logits, &item_stats).ok());
  if (stats != nullptr) *stats = item_stats.at(0);
  return logits;
}

const std::vector<int32_t> kPrompt = {0, 328, 286, 1712, 266, 1210, 3845, 597, 329, 261, 417, 2144};

class ScheduledFileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::filesystem::path(TempPath("scheduled.grinqh"));
    const absl::Status status = QuantizeToGrinqhFile(TinyLlama(), Calibrated(), *path_);
    ASSERT_TRUE(status.ok()) << status;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove(*path_);
    delete path_;
  }
  static std::filesystem::path* path_;
};
std::filesystem::path* ScheduledFileTest::path_ = nullptr;

// Every layer has a schedule; at any target, fitted or between fitted ones, the layers'
// budgets average to it over the weights, and decode reads exactly that many planes.
TEST_F(ScheduledFileTest, BudgetsAverageToTheTargetAndDecodeReadsThem) {
  auto summary = ReadGrinqhSummary(*path_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->method, "grinqh");
  ASSERT_FALSE(summary->schedule_targets.empty());
  EXPECT_FLOAT_EQ(summary->schedule_targets.front(), 1.5f);
  EXPECT_FLOAT_EQ(summary->schedule_targets.back(), 8.f);

  auto model = Model::Load(*path_);
  ASSERT_TRUE(model.ok()) << model.status();
  ModelWeights weights = (*model)->weights();
  bool uneven = false;
  for (float target : {1.f, 2.f, 2.1f, 3.f, 4.6f, 8.f}) {
    double bits = 0, total = 0;
    for (const LinearLayerRef& l : LinearLayers(weights, (*model)->config())) {
      ASSERT_NE(l.weights->planes(), nullptr);
      const float b = l.weights->planes()->schedule.LayerTarget(target);
      EXPECT_GT(b, 0.f);
      EXPECT_LE(b, 8.f);
      uneven = uneven || std::abs(b - target) > 0.1f;
      bits += double(b) * l.weights->rows() * l.weights->cols();
      total += double(l.weights->rows()) * l.weights->cols();
    }
    EXPECT_NEAR(bits / total, target, 1e-4) << target;
  }
  EXPECT_TRUE(uneven) << "the fit gave every layer the model-wide target";

  // What the products read: per row, round(budget · cols) planes of each layer.
  ForwardStats reads;
  ForwardLogits((*model)->backend(), kPrompt, 2.5f, &reads);
  ASSERT_GT(reads.weights, 0u);
  EXPECT_NEAR(8.0 * double(reads.plane_bytes) / double(reads.weights), 2.5, 0.01);
}

// At 8 bits every budget is the full depth: the scheduled model is the dequantized one.
TEST_F(ScheduledFileTest, EightBitsStillMatchFullDepth) {
  auto model = Model::Load(*path_);
  ASSERT_TRUE(model.ok());
  const auto dense = ForwardLogits((*model)->backend(), kPrompt, 0.f);
  const auto graded = ForwardLogits((*model)->backend(), kPrompt, 8.f);
  double diff = 0, norm = 0;
  for (size_t i = 0; i < dense.size(); ++i) diff += std::pow(graded[i] - dense[i], 2), norm += dense[i] * dense[i];
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
}

// A copy of `from` whose "schedules" section is replaced.
absl::Status RewriteSchedules(const std::filesystem::path& from, const std::filesystem::path& to,
                              const std::function<void(nlohmann::json&)>& edit) {
  auto file = GrinqhFile::Open(from);
  if (!file.ok()) return file.status();
  GrinqhFileWriter writer;
  for (const auto& [name, t] : (*file)->tensors()) {
    if (auto s = writer.AddTensor(name, t.dtype, t.shape, {t.data, t.nbytes}, GrinqhFileWriter::Storage::kReference);
        !s.ok()) {
      return s;
    }
  }
  for (const std::string& name : (*file)->SectionNames()) {
    if (auto text = (*file)->SectionString(name); text.ok()) {
      if (auto s = writer.SetSectionString(name, *text); !s.ok()) return s;
      continue;
    }
    nlohmann::json section = nlohmann::json::parse(*(*file)->Section(name));
    if (name == "schedules") edit(section);
    if (auto s = writer.SetSection(name, section.dump()); !s.ok()) return s;
  }
  return writer.Write(to);
}

TEST_F(ScheduledFileTest, ASchedulesSectionThatMissesTheTargetIsRefused) {
  const auto copy = TempPath("bad_schedule.grinqh");
  ASSERT_TRUE(RewriteSchedules(*path_, copy, [](nlohmann::json& s) {
                for (auto& b : s["layers"]["lm_head"]) b = std::min(8.0, b.get<double>() * 1.5);
              }).ok());
  auto model = Model::Load(copy);
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("\"schedules\": at target"));

  ASSERT_TRUE(RewriteSchedules(*path_, copy, [](nlohmann::json& s) { s["layers"].erase("lm_head"); }).ok());
  model = Model::Load(copy);
  std::filesystem::remove(copy);
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("layer \"lm_head\""));
}

// A baseline written to a file computes exactly what the in-memory variant computes, and
// decodes at its own width only.
TEST(BaselineFileTest, RoundTripsThroughTheFile) {
  auto base = Model::Load(TinyLlama());
  ASSERT_TRUE(base.ok()) << base.status();
  GrinqhQuantizeOptions calibrated = Calibrated();
  calibrated.calib_windows = 2;
  auto ids = (*base)->tokenizer()->Encode(*ReadFileToString(calibrated.calib), false);
  const auto windows = MakeWindows(ids, calibrated.window_tokens, calibrated.calib_windows);
  for (const auto& [method, bits] : std::vector<std::pair<std::string, int>>{{"rtn", 4}, {"gptq", 3}, {"awq", 3}}) {
    GrinqhQuantizeOptions options = calibrated;
    options.method = method;
    options.bits = bits;
    const auto path = TempPath(method + ".grinqh");
    const absl::Status written = QuantizeToGrinqhFile(TinyLlama(), options, path);
    ASSERT_TRUE(written.ok()) << method << ": " << written;
    auto summary = ReadGrinqhSummary(path);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->method, method);
    EXPECT_EQ(summary->bits, bits);
    auto from_file = Model::Load(path);
    std::filesystem::remove(path);
    ASSERT_TRUE(from_file.ok()) << from_file.status();
    EXPECT_EQ((*from_file)->max_decode_bits(), 0);

    BaselineOptions in_memory;
    in_memory.method = method;
    in_memory.bits = bits;
    auto variant = QuantizedVariant::Create(**base, in_memory, windows);
    ASSERT_TRUE(variant.ok()) << variant.status();
    EXPECT_EQ(ForwardLogits((*from_file)->backend(), kPrompt, 0.f), ForwardLogits((*variant)->backend(), kPrompt, 0.f)) << method;

    GenerationRequest request;
    request.prompt_ids = kPrompt;
    request.max_tokens = 2;
    request.decode_bits = 2.f;
    EXPECT_EQ(Generate(**from_file, request).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(BaselineFileTest, MethodsAreCheckedBeforeAnyWork) {
  GrinqhQuantizeOptions options;
  options.method = "gptq";
  options.bits = 4;
  EXPECT_THAT(std::string(QuantizeToGrinqhFile(TinyLlama(), options, TempPath("x")).message()),
              ::testing::HasSubstr("needs calibration text"));
  options.method = "hqq";
  EXPECT_THAT(std::string(QuantizeToGrinqhFile(TinyLlama(), options, TempPath("x")).message()),
              ::testing::HasSubstr("unknown method"));
  options.method = "rtn";
  options.bits = 0;
  EXPECT_THAT(std::string(QuantizeToGrinqhFile(TinyLlama(), options, TempPath("x")).message()),
              ::testing::HasSubstr("--bits"));
}

}  // namespace
}  // namespace grinqh
