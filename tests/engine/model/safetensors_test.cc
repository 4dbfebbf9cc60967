// Tests of the safetensors reader: round trips, every malformed-file refusal, sharded
// checkpoints, the real fixtures and a crash-hunting loop over damaged files.
#include "engine/model/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------
// A tiny safetensors writer.

struct TestTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string LittleEndianU64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// The file: length, header text, data bytes, as given (so tests can write bad headers).
std::string RawFile(const std::string& header, const std::string& data) {
  return LittleEndianU64(header.size()) + header + data;
}

// A valid file: tensors laid out back to back, header padded with spaces to 8 bytes.
std::string BuildSafetensors(const std::vector<TestTensor>& tensors,
                             const json& metadata = nullptr) {
  json header = json::object();
  std::string data;
  for (const TestTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text += ' ';
  return RawFile(text, data);
}

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

uint16_t FloatToBF16(float f) {  // exact for the values used here
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>(bits >> 16);
}

float BF16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float F16ToFloat(uint16_t h) {  // normal numbers and zero only
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0 && mant == 0) return sign ? -0.0f : 0.0f;
  uint32_t bits = (sign << 31) | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
std::vector<T> Values(const TensorView& view) {
  std::vector<T> out(view.nbytes / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), view.data, view.nbytes);
  return out;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / (std::string("st_") + info->test_suite_name() + "_" +
                                             info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes contents as dir_/name and opens it, expecting failure with code; returns message.
  std::string OpenExpectingError(const std::string& contents, absl::StatusCode code,
                                 const std::string& name = "model.safetensors") {
    const fs::path path = dir_ / name;
    WriteFile(path, contents);
    auto file = SafetensorsFile::Open(path);
    EXPECT_FALSE(file.ok()) << "opened a bad file";
    if (file.ok()) return "";
    EXPECT_EQ(file.status().code(), code) << file.status();
    const std::string message(file.status().message());
    EXPECT_THAT(message, HasSubstr(path.string()));
    return message;
  }

  // A header with one entry for tensor "w" whose JSON is `entry`, and data_bytes of data.
  std::string OneEntry(const std::string& entry, size_t data_bytes = 16) {
    return RawFile("{\"w\":" + entry + "}", std::string(data_bytes, '\x01'));
  }

  fs::path dir_;
};

std::vector<TestTensor> SampleTensors() {
  return {
      {"f32", "F32", {2, 3}, Bytes<float>({1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f})},
      // 1.0, -2.0, 0.5, 65504 in IEEE half
      {"f16", "F16", {4}, Bytes<uint16_t>({0x3C00, 0xC000, 0x3800, 0x7BFF})},
      {"bf16",
       "BF16",
       {2, 2},
       Bytes<uint16_t>(
           {FloatToBF16(1.0f), FloatToBF16(-0.5f), FloatToBF16(3.0f), FloatToBF16(256.0f)})},
      {"scalar", "F32", {}, Bytes<float>({42.0f})},
      {"empty", "BF16", {0, 5}, ""},
  };
}

// ---------------------------------------------------------------------------------------
// Valid files

TEST(DTypeTest, NamesAndSizes) {
  EXPECT_EQ(DTypeName(DType::kF32), "F32");
  EXPECT_EQ(DTypeName(DType::kF16), "F16");
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  TensorView v;
  v.shape = {3, 4, 5};
  EXPECT_EQ(v.numel(), 60);
  v.shape = {};
  EXPECT_EQ(v.numel(), 1);
  v.shape = {7, 0};
  EXPECT_EQ(v.numel(), 0);
}

TEST_F(SafetensorsTest, RoundTripsF32F16BF16) {
  const fs::path path = dir_ / "model.safetensors";
  WriteFile(path, BuildSafetensors(SampleTensors(), {{"format", "pt"}, {"note", "hi"}}));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const auto& tensors = (*file)->tensors();
  ASSERT_EQ(tensors.size(), 5u);
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  EXPECT_EQ((*file)->metadata().at("note"), "hi");
  EXPECT_EQ((*file)->metadata().size(), 2u);

  const TensorView& f32 = tensors.at("f32");
  EXPECT_EQ(f32.name, "f32");
  EXPECT_EQ(f32.dtype, DType::kF32);
  EXPECT_EQ(f32.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f32.numel(), 6);
  EXPECT_EQ(f32.nbytes, 24u);
  EXPECT_EQ(Values<float>(f32), (std::vector<float>{1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f}));

  const TensorView& f16 = tensors.at("f16");
  EXPECT_EQ(f16.dtype, DType::kF16);
  EXPECT_EQ(f16.shape, (std::vector<int64_t>{4}));
  std::vector<float> f16_values;
  for (uint16_t h : Values<uint16_t>(f16)) f16_values.push_back(F16ToFloat(h));
  EXPECT_EQ(f16_values, (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f}));

  const TensorView& bf16 = tensors.at("bf16");
  EXPECT_EQ(bf16.dtype, DType::kBF16);
  EXPECT_EQ(bf16.numel(), 4);
  std::vector<float> bf16_values;
  for (uint16_t h : Values<uint16_t>(bf16)) bf16_values.push_back(BF16ToFloat(h));
  EXPECT_EQ(bf16_values, (std::vector<float>{1.0f, -0.5f, 3.0f, 256.0f}));

  const TensorView& scalar = tensors.at("scalar");
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(Values<float>(scalar), std::vector<float>{42.0f});

  const TensorView& empty = tensors.at("empty");
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_EQ(empty.nbytes, 0u);
}

TEST_F(SafetensorsTest, SingleFileCheckpoint) {
  WriteFile(dir_ / "model.safetensors", BuildSafetensors(SampleTensors()));
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->dir(), dir_);
  EXPECT_EQ((*ckpt)->Names(), (std::vector<std::string>{"bf16", "empty", "f16", "f32", "scalar"}));
  auto f32 = (*ckpt)->Get("f32");
  ASSERT_TRUE(f32.ok()) << f32.status();
  EXPECT_EQ(Values<float>(*f32)[1], -2.5f);
  ASSERT_NE((*ckpt)->Find("bf16"), nullptr);
  EXPECT_EQ((*ckpt)->Find("lm_head.weight"), nullptr);

  auto missing = (*ckpt)->Get("lm_head.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      std::string(missing.status().message()),
      AllOf(HasSubstr("\"lm_head.weight\""), HasSubstr(dir_.string()), HasSubstr("not found")));
}

TEST_F(SafetensorsTest, ShardedCheckpointReadsBack) {
  std::vector<TestTensor> all = SampleTensors();
  std::vector<TestTensor> first(all.begin(), all.begin() + 2);
  std::vector<TestTensor> second(all.begin() + 2, all.end());
  WriteFile(dir_ / "model-00001-of-00002.safetensors", BuildSafetensors(first));
  WriteFile(dir_ / "model-00002-of-00002.safetensors", BuildSafetensors(second));
  json index = {{"metadata", {{"total_size", 64}}}, {"weight_map", json::object()}};
  for (const auto& t : first) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : second) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
  WriteFile(dir_ / "model.safetensors.index.json", index.dump(2));
  // A stale single file beside the index must be ignored in favour of the index.
  WriteFile(dir_ / "model.safetensors", "garbage");

  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->Names().size(), all.size());
  for (const TestTensor& t : all) {
    auto view = (*ckpt)->Get(t.name);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->shape, t.shape) << t.name;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(view->data), view->nbytes), t.bytes)
        << t.name;
  }
}

// ---------------------------------------------------------------------------------------
// Malformed files: each refused with the right code, naming the file, tensor and fault.

TEST_F(SafetensorsTest, EmptyFileIsTruncated) {
  std::string msg = OpenExpectingError("", absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("0 bytes"), HasSubstr("truncated")));
}

TEST_F(SafetensorsTest, FileShorterThanLengthField) {
  std::string msg = OpenExpectingError("abc", absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("3 bytes"), HasSubstr("truncated")));
}

TEST_F(SafetensorsTest, HeaderLengthPastEndOfFile) {
  std::string msg = OpenExpectingError(LittleEndianU64(1000) + "{}", absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("header length 1000"), HasSubstr("past the end")));
}

TEST_F(SafetensorsTest, AbsurdHeaderLength) {
  std::string msg =
      OpenExpectingError(LittleEndianU64(~uint64_t{0}) + "{}", absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, HasSubstr("header length 18446744073709551615"));
}

TEST_F(SafetensorsTest, HeaderNotJson) {
  std::string msg =
      OpenExpectingError(RawFile("{\"w\": {\"dtype\": ", ""), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, HasSubstr("not valid JSON"));
  msg = OpenExpectingError(RawFile("", ""), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, HasSubstr("not valid JSON"));
}

TEST_F(SafetensorsTest, HeaderNotObject) {
  std::string msg = OpenExpectingError(RawFile("[1, 2]", ""), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("header"), HasSubstr("not an object")));
}

TEST_F(SafetensorsTest, DuplicateTensorName) {
  std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  std::string msg =
      OpenExpectingError(RawFile("{\"w\":" + entry + ",\"w\":" + entry + "}", std::string(4, '\0')),
                         absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("\"w\""), HasSubstr("twice")));
}

TEST_F(SafetensorsTest, DuplicateKeyAtAnyDepth) {
  std::string msg = OpenExpectingError(RawFile(R"({"__metadata__": {"format": "pt", "format": "np"}})", ""),
                                       absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("header has the key \"format\" twice"), HasSubstr("/__metadata__/format")));
}

TEST_F(SafetensorsTest, EntryNotObject) {
  std::string msg = OpenExpectingError(OneEntry("[1,2]"), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor \"w\""), HasSubstr("not an object")));
}

TEST_F(SafetensorsTest, MissingFields) {
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"shape":[4],"data_offsets":[0,16]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("missing \"dtype\"")));
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"dtype":"F32","data_offsets":[0,16]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("missing \"shape\"")));
  EXPECT_THAT(
      OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":[4]})"), absl::StatusCode::kDataLoss),
      AllOf(HasSubstr("tensor \"w\""), HasSubstr("missing \"data_offsets\"")));
}

TEST_F(SafetensorsTest, WrongJsonTypes) {
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"dtype":5,"shape":[4],"data_offsets":[0,16]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("\"dtype\" is a JSON number")));
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":"4","data_offsets":[0,16]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("\"shape\" is a JSON string")));
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":[4.0],"data_offsets":[0,16]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("not a non-negative integer")));
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":[4],"data_offsets":[0]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("not [begin, end]")));
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":[4],"data_offsets":["0",16]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("not non-negative integers")));
  EXPECT_THAT(OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":[4],"data_offsets":[-4,16]})"),
                                 absl::StatusCode::kDataLoss),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("not non-negative integers")));
}

TEST_F(SafetensorsTest, NegativeDimension) {
  std::string msg =
      OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]})"),
                         absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor \"w\""), HasSubstr("dimension 1 is negative")));
}

TEST_F(SafetensorsTest, UnsupportedDTypeNamed) {
  for (const char* dtype : {"I8", "F8_E4M3", "F64", "bf16", "Q4_K", "U8", "U16"}) {
    std::string msg = OpenExpectingError(
        OneEntry(std::string(R"({"dtype":")") + dtype + R"(","shape":[4],"data_offsets":[0,4]})"),
        absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(msg, AllOf(HasSubstr("tensor \"w\""),
                           HasSubstr(std::string("unsupported dtype \"") + dtype + "\"")));
  }
}

TEST_F(SafetensorsTest, ShapeDisagreesWithByteCount) {
  const std::string header =
      R"({"model.layers.0.mlp.up_proj.weight":{"dtype":"BF16","shape":[768,256],)"
      R"("data_offsets":[0,393214]}})";
  std::string msg =
      OpenExpectingError(RawFile(header, std::string(393214, '\0')), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, HasSubstr("model.safetensors: tensor \"model.layers.0.mlp.up_proj.weight\": "
                             "shape [768, 256] of BF16 needs 393216 bytes but data_offsets "
                             "span 393214"));
}

TEST_F(SafetensorsTest, ShapeProductOverflow) {
  // 2^32 * 2^32 * 4 bytes wraps to 0 in 64 bits: must not be taken as "0 bytes needed".
  std::string msg = OpenExpectingError(
      OneEntry(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})"),
      absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor \"w\""), HasSubstr("overflow")));
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  std::string msg =
      OpenExpectingError(OneEntry(R"({"dtype":"F32","shape":[8],"data_offsets":[0,32]})", 16),
                         absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor \"w\""), HasSubstr("[0, 32]"),
                         HasSubstr("past the end of the data section (16 bytes")));
  msg = OpenExpectingError(
      OneEntry(R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,4]})"),
      absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor \"w\""), HasSubstr("begin after they end")));
}

TEST_F(SafetensorsTest, BeginAfterEnd) {
  std::string msg = OpenExpectingError(
      OneEntry(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})"), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor \"w\""), HasSubstr("[8, 4]"),
                         HasSubstr("begin after they end")));
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"F32","shape":[4],"data_offsets":[16,32]},)"
                             R"("c":{"dtype":"F32","shape":[2],"data_offsets":[28,36]}})";
  std::string msg =
      OpenExpectingError(RawFile(header, std::string(40, '\0')), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("\"b\""), HasSubstr("\"c\""), HasSubstr("overlap")));

  // Same begin, listed in the other order.
  const std::string header2 = R"({"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("y":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})";
  msg = OpenExpectingError(RawFile(header2, std::string(4, '\0')), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("\"y\""), HasSubstr("\"z\""), HasSubstr("overlap")));
}

TEST_F(SafetensorsTest, MetadataMustBeStrings) {
  std::string msg = OpenExpectingError(RawFile(R"({"__metadata__":{"format":"pt","n":3}})", ""),
                                       absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("__metadata__"), HasSubstr("\"n\""), HasSubstr("not a string")));
  msg = OpenExpectingError(RawFile(R"({"__metadata__":[1]})", ""), absl::StatusCode::kDataLoss);
  EXPECT_THAT(msg, AllOf(HasSubstr("__metadata__"), HasSubstr("not an object")));
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  auto file = SafetensorsFile::Open(dir_ / "absent.safetensors");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("absent.safetensors"));
}

TEST_F(SafetensorsTest, DirectoryIsNotAFile) {
  auto file = SafetensorsFile::Open(dir_);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("not a regular file"));
}

// ---------------------------------------------------------------------------------------
// Checkpoint directories

TEST_F(SafetensorsTest, EmptyDirectoryHasNoCheckpoint) {
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      std::string(ckpt.status().message()),
      HasSubstr("no model.safetensors or model.safetensors.index.json in " + dir_.string()));
  auto none = Checkpoint::Open(dir_ / "nope");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, CorruptSingleFileNamed) {
  WriteFile(dir_ / "model.safetensors", "short");
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr("model.safetensors"));
}

TEST_F(SafetensorsTest, IndexNamesMissingShard) {
  WriteFile(dir_ / "model-00001-of-00002.safetensors", BuildSafetensors(SampleTensors()));
  json index = {{"weight_map",
                 {{"f32", "model-00001-of-00002.safetensors"},
                  {"lm_head.weight", "model-00002-of-00002.safetensors"}}}};
  WriteFile(dir_ / "model.safetensors.index.json", index.dump());
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ckpt.status().message()),
              AllOf(HasSubstr("model-00002-of-00002.safetensors"), HasSubstr("lm_head.weight"),
                    HasSubstr("model.safetensors.index.json")));
}

TEST_F(SafetensorsTest, TensorMissingFromItsShard) {
  WriteFile(dir_ / "a.safetensors", BuildSafetensors(SampleTensors()));
  json index = {{"weight_map", {{"f32", "a.safetensors"}, {"model.norm.weight", "a.safetensors"}}}};
  WriteFile(dir_ / "model.safetensors.index.json", index.dump());
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(ckpt.status().message()),
              AllOf(HasSubstr("\"model.norm.weight\""), HasSubstr("\"a.safetensors\""),
                    HasSubstr("does not contain it")));
}

TEST_F(SafetensorsTest, ShardPathEscapeRefused) {
  fs::create_directories(dir_ / "sub");
  WriteFile(dir_ / "sub" / "x.safetensors", BuildSafetensors(SampleTensors()));
  WriteFile(dir_ / "x.safetensors", BuildSafetensors(SampleTensors()));
  for (const std::string& shard :
       {std::string("../x.safetensors"), std::string("sub/x.safetensors"),
        std::string("/etc/passwd"), std::string(".."), std::string(""),
        std::string("..\\x.safetensors")}) {
    json index = {{"weight_map", {{"f32", shard}}}};
    WriteFile(dir_ / "model.safetensors.index.json", index.dump());
    auto ckpt = Checkpoint::Open(dir_);
    ASSERT_FALSE(ckpt.ok()) << shard;
    EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument) << shard;
    EXPECT_THAT(
        std::string(ckpt.status().message()),
        AllOf(HasSubstr("\"f32\""), HasSubstr(json(shard).dump()), HasSubstr("path escape")));
  }
}

TEST_F(SafetensorsTest, TensorInTwoShards) {
  WriteFile(dir_ / "a.safetensors", BuildSafetensors(SampleTensors()));
  // b.safetensors repeats "f32" although the index places it in a.safetensors only.
  WriteFile(dir_ / "b.safetensors",
            BuildSafetensors({SampleTensors()[0], {"other", "F32", {1}, Bytes<float>({1.f})}}));
  json index = {{"weight_map", {{"f32", "a.safetensors"}, {"other", "b.safetensors"}}}};
  WriteFile(dir_ / "model.safetensors.index.json", index.dump());
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(ckpt.status().message()),
              AllOf(HasSubstr("\"f32\""), HasSubstr("two shards"), HasSubstr("a.safetensors"),
                    HasSubstr("b.safetensors")));
}

TEST_F(SafetensorsTest, MalformedIndex) {
  WriteFile(dir_ / "model.safetensors.index.json", "{\"weight_map\": ");
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(ckpt.status().message()),
              AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("not valid JSON")));

  WriteFile(dir_ / "model.safetensors.index.json", R"({"metadata": {}})");
  ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr("missing \"weight_map\""));

  WriteFile(dir_ / "model.safetensors.index.json", R"({"weight_map": {"f32": 3}})");
  ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_THAT(std::string(ckpt.status().message()),
              AllOf(HasSubstr("\"f32\""), HasSubstr("not a shard file name")));

  WriteFile(dir_ / "model.safetensors.index.json", "");
  ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kDataLoss);
}

// ---------------------------------------------------------------------------------------
// Damaged files never crash the reader.

TEST_F(SafetensorsTest, DamagedFilesNeverCrash) {
  const std::string valid = BuildSafetensors(SampleTensors(), {{"format", "pt"}});
  const fs::path path = dir_ / "fuzz.safetensors";
  auto check = [&](const std::string& contents) {
    WriteFile(path, contents);
    auto file = SafetensorsFile::Open(path);
    if (file.ok()) {
      // Whatever was accepted is consistent and readable.
      for (const auto& [name, view] : (*file)->tensors()) {
        EXPECT_EQ(view.nbytes, static_cast<size_t>(view.numel()) * DTypeSize(view.dtype));
        volatile std::byte sink{};
        for (size_t i = 0; i < view.nbytes; ++i) sink = view.data[i];  // touch every byte
        (void)sink;
      }
    } else {
      EXPECT_THAT(std::string(file.status().message()), HasSubstr(path.string()));
    }
    return file.ok();
  };

  ASSERT_TRUE(check(valid));
  int accepted = 0;
  for (size_t len = 0; len < valid.size(); ++len) accepted += check(valid.substr(0, len));
  EXPECT_EQ(accepted, 0) << "a truncated file was accepted";

  const uint64_t header_end =
      8 + (static_cast<uint8_t>(valid[0]) | (static_cast<uint8_t>(valid[1]) << 8));
  for (size_t pos = 0; pos < header_end; ++pos) {
    for (int mask : {0x01, 0x20, 0x80, 0xff}) {
      std::string damaged = valid;
      damaged[pos] = static_cast<char>(static_cast<unsigned char>(damaged[pos]) ^ mask);
      check(damaged);
    }
  }
  std::mt19937 rng(1234);
  for (int round = 0; round < 300; ++round) {
    std::string damaged = valid;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t pos = rng() % header_end;
      damaged[pos] = static_cast<char>(rng() & 0xff);
    }
    check(damaged);
  }
}

// ---------------------------------------------------------------------------------------
// The real fixtures

void CheckFixtureCheckpoint(const std::string& model) {
  const fs::path dir = testing::SharedDir() / "models" / model;
  auto config = ModelConfig::FromDirectory(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const ModelConfig& c = *config;
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, vocab = c.vocab_size;
  const int64_t q_out = int64_t{c.num_heads} * c.head_dim,
                kv_out = int64_t{c.num_kv_heads} * c.head_dim;

  size_t expected = 0;
  auto expect = [&](const std::string& name, std::vector<int64_t> shape) {
    ++expected;
    auto view = (*ckpt)->Get(name);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->shape, shape) << name;
    EXPECT_EQ(view->dtype, DType::kBF16) << name;
    EXPECT_EQ(view->nbytes, static_cast<size_t>(view->numel()) * 2) << name;
  };
  expect("model.embed_tokens.weight", {vocab, hidden});
  expect("model.norm.weight", {hidden});
  if (c.tie_word_embeddings) {
    EXPECT_EQ((*ckpt)->Find("lm_head.weight"), nullptr);
  } else {
    expect("lm_head.weight", {vocab, hidden});
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    expect(p + "input_layernorm.weight", {hidden});
    expect(p + "post_attention_layernorm.weight", {hidden});
    expect(p + "self_attn.q_proj.weight", {q_out, hidden});
    expect(p + "self_attn.k_proj.weight", {kv_out, hidden});
    expect(p + "self_attn.v_proj.weight", {kv_out, hidden});
    expect(p + "self_attn.o_proj.weight", {hidden, q_out});
    expect(p + "mlp.gate_proj.weight", {inter, hidden});
    expect(p + "mlp.up_proj.weight", {inter, hidden});
    expect(p + "mlp.down_proj.weight", {hidden, inter});
    if (c.qk_norm) {
      expect(p + "self_attn.q_norm.weight", {c.head_dim});
      expect(p + "self_attn.k_norm.weight", {c.head_dim});
    }
  }
  EXPECT_EQ((*ckpt)->Names().size(), expected) << "unexpected extra tensors";
  EXPECT_FALSE(
      (*ckpt)->Get("model.layers." + std::to_string(c.num_layers) + ".mlp.up_proj.weight").ok());

  // The reference logits are fp32.
  auto logits = SafetensorsFile::Open(dir / "reference_logits.safetensors");
  ASSERT_TRUE(logits.ok()) << logits.status();
  ASSERT_FALSE((*logits)->tensors().empty());
  for (const auto& [name, view] : (*logits)->tensors()) {
    EXPECT_EQ(view.dtype, DType::kF32) << name;
    ASSERT_EQ(view.shape.size(), 2u) << name;
    EXPECT_EQ(view.shape[1], vocab) << name;
  }
}

TEST(SafetensorsFixtureTest, TinyLlama3) {
  GRINQH_REQUIRE_SHARED();
  CheckFixtureCheckpoint("tiny-llama3");
}

TEST(SafetensorsFixtureTest, SmallQwen3) {
  GRINQH_REQUIRE_SHARED();
  CheckFixtureCheckpoint("small-qwen3");
}

TEST_F(SafetensorsTest, FixtureResharded) {
  GRINQH_REQUIRE_SHARED();
  // Split the real tiny-llama3 weights into two shards + index and read them back.
  const fs::path src = testing::SharedDir() / "models" / "tiny-llama3";
  auto whole = Checkpoint::Open(src);
  ASSERT_TRUE(whole.ok()) << whole.status();
  std::vector<TestTensor> shards[2];
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  int i = 0;
  for (const std::string& name : (*whole)->Names()) {
    const TensorView* v = (*whole)->Find(name);
    const int s = (i++ % 2);
    shards[s].push_back({name, std::string(DTypeName(v->dtype)), v->shape,
                         std::string(reinterpret_cast<const char*>(v->data), v->nbytes)});
    index["weight_map"][name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  WriteFile(dir_ / "model-00001-of-00002.safetensors", BuildSafetensors(shards[0]));
  WriteFile(dir_ / "model-00002-of-00002.safetensors", BuildSafetensors(shards[1]));
  WriteFile(dir_ / "model.safetensors.index.json", index.dump(2));
  auto resharded = Checkpoint::Open(dir_);
  ASSERT_TRUE(resharded.ok()) << resharded.status();
  ASSERT_EQ((*resharded)->Names(), (*whole)->Names());
  for (const std::string& name : (*whole)->Names()) {
    const TensorView* a = (*whole)->Find(name);
    const TensorView* b = (*resharded)->Find(name);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->shape, b->shape);
    ASSERT_EQ(a->nbytes, b->nbytes);
    EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << name;
  }
}

}  // namespace
}  // namespace grinqh

namespace grinqh {
namespace {

// Nesting deep enough to overflow a recursive walk is refused, not followed.
TEST(SafetensorsHostileTest, DeeplyNestedHeaderIsRefused) {
  const std::string header = "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + std::string(200000, '[') +
                             std::string(200000, ']') + "}}";
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[size_t(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  bytes += header;
  const auto path = std::filesystem::temp_directory_path() / ("grinqh_deep_" + std::to_string(getpid()) + ".safetensors");
  { std::ofstream(path, std::ios::binary) << bytes; }
  auto file = SafetensorsFile::Open(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("nests deeper"), std::string::npos) << file.status();
}

}  // namespace
}  // namespace grinqh
