// Tests of the nested bit-plane layout and the .grinqh file: exact agreement with the
// reference quantizer at every level, the byte layout checked by hand, a write/read round
// trip, one test per malformed-file refusal, and a crash-hunting loop over damaged files.
#include "engine/model/grinqh_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/quant/bit_planes.h"
#include "engine/quant/quant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace grinqh {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

// An RTN-quantized random matrix: 8-bit codes, fp16 scales and zeros, as the quantizer makes.
quant::QuantizedMatrix RandomMatrix(int rows, int cols, int group_size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 0.05f);
  std::vector<float> w(static_cast<size_t>(rows) * static_cast<size_t>(cols));
  for (float& v : w) v = dist(rng);
  return quant::QuantizeRtn(w, rows, cols, 8, group_size);
}

std::vector<int> RandomLevels(int cols, int max_level, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> levels(static_cast<size_t>(cols));
  for (int& l : levels) l = std::uniform_int_distribution<int>(0, max_level)(rng);
  return levels;
}

// Column k of the result must equal column k of the reference at levels[k].
void ExpectColumnsMatchReference(const quant::QuantizedMatrix& q, const std::vector<int>& levels,
                                 const std::vector<float>& got) {
  std::vector<std::vector<float>> ref;
  for (int level = 0; level <= 8; ++level) ref.push_back(q.DequantizeLevel(level));
  ASSERT_EQ(got.size(), ref[0].size());
  for (int r = 0; r < q.rows; ++r) {
    for (int k = 0; k < q.cols; ++k) {
      const size_t i =
          static_cast<size_t>(r) * static_cast<size_t>(q.cols) + static_cast<size_t>(k);
      ASSERT_EQ(got[i], ref[static_cast<size_t>(levels[static_cast<size_t>(k)])][i])
          << "row " << r << " col " << k << " level " << levels[static_cast<size_t>(k)];
    }
  }
}

struct Case {
  int rows, cols, group_size, tile_rows;
};
const Case kCases[] = {{1, 1, 1, 8},      {70, 45, 16, 64}, {130, 300, 128, 64},
                       {64, 128, 32, 64}, {5, 200, 64, 16}, {33, 17, 128, 8}};

TEST(BitPlanesTest, EveryLevelMatchesTheReferenceExactly) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message()
                 << c.rows << "x" << c.cols << " g" << c.group_size << " t" << c.tile_rows);
    const quant::QuantizedMatrix q = RandomMatrix(c.rows, c.cols, c.group_size, 7);
    auto packed = PackBitPlanes(q, c.tile_rows);
    ASSERT_TRUE(packed.ok()) << packed.status();
    EXPECT_EQ(packed->planes.size(), packed->shape.planes_size());
    for (int level = 0; level <= 8; ++level) {
      auto w = DequantizeLevel(packed->view(), level);
      ASSERT_TRUE(w.ok()) << w.status();
      EXPECT_EQ(*w, q.DequantizeLevel(level)) << "level " << level;
      auto codes = UnpackCodes(packed->view(), level);
      ASSERT_TRUE(codes.ok());
      for (size_t i = 0; i < q.codes.size(); ++i) {
        const int want = level == 0 ? 0 : (q.codes[i] >> (8 - level)) << (8 - level);
        ASSERT_EQ((*codes)[i], want) << "weight " << i << " level " << level;
      }
    }
  }
}

TEST(BitPlanesTest, MixedPerChannelLevelsMatchTheReferenceColumnByColumn) {
  for (const Case& c : kCases) {
    const quant::QuantizedMatrix q = RandomMatrix(c.rows, c.cols, c.group_size, 11);
    auto packed = PackBitPlanes(q, c.tile_rows);
    ASSERT_TRUE(packed.ok());
    const std::vector<int> levels = RandomLevels(c.cols, 8, 3);
    auto w = DequantizeLevels(packed->view(), levels);
    ASSERT_TRUE(w.ok()) << w.status();
    ExpectColumnsMatchReference(q, levels, *w);
  }
}

// Overwrite, for every channel, the planes below its level with ones: a reader that touched
// them (or a skipped channel) would change the result.
TEST(BitPlanesTest, ReadsOnlyThePlanesEachChannelNeeds) {
  const quant::QuantizedMatrix q = RandomMatrix(130, 90, 32, 5);
  auto packed = PackBitPlanes(q, 64);
  ASSERT_TRUE(packed.ok());
  const std::vector<int> levels = RandomLevels(q.cols, 8, 9);
  BitPlaneMatrix& m = *packed;
  for (int t = 0; t < m.shape.tiles(); ++t) {
    for (int k = 0; k < m.shape.cols; ++k) {
      const size_t begin =
          m.shape.ChannelOffset(t, k) +
          static_cast<size_t>(levels[static_cast<size_t>(k)]) * m.shape.plane_bytes();
      const size_t end = m.shape.ChannelOffset(t, k) + 8 * m.shape.plane_bytes();
      std::fill(m.planes.begin() + static_cast<long>(begin),
                m.planes.begin() + static_cast<long>(end), uint8_t{0xff});
    }
  }
  auto w = DequantizeLevels(m.view(), levels);
  ASSERT_TRUE(w.ok());
  ExpectColumnsMatchReference(q, levels, *w);
}

// The strict form of the same claim: the bytes a channel's level needs end exactly at an
// inaccessible page, so reading one byte more than b planes would crash the test.
TEST(BitPlanesTest, ReadsNoByteBeyondTheLevelsPlanes) {
  const quant::QuantizedMatrix q = RandomMatrix(64, 1, 1, 17);  // one tile, one channel
  auto packed = PackBitPlanes(q, 64);
  ASSERT_TRUE(packed.ok());
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  uint8_t* guard = static_cast<uint8_t*>(mem) + page;
  ASSERT_EQ(::mprotect(guard, page, PROT_NONE), 0);
  for (int level = 0; level <= 8; ++level) {
    uint8_t* planes = guard - static_cast<size_t>(level) * packed->shape.plane_bytes();
    std::memcpy(planes, packed->planes.data(), guard - planes);
    BitPlaneView view = packed->view();
    view.planes = planes;  // only `level` planes are readable from here
    auto w = DequantizeLevel(view, level);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*w, q.DequantizeLevel(level)) << "level " << level;
  }
  ::munmap(mem, 2 * page);
}

TEST(BitPlanesTest, ShallowStoreServesItsLevelsAndRefusesDeeperOnes) {
  const quant::QuantizedMatrix q = RandomMatrix(70, 45, 16, 13);
  auto full = PackBitPlanes(q, 64, 8);
  auto shallow = PackBitPlanes(q, 64, 4);
  ASSERT_TRUE(full.ok() && shallow.ok());
  EXPECT_EQ(shallow->planes.size() * 2, full->planes.size());
  for (int level = 0; level <= 4; ++level) {
    auto w = DequantizeLevel(shallow->view(), level);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*w, q.DequantizeLevel(level)) << "level " << level;
  }
  EXPECT_THAT(DequantizeLevel(shallow->view(), 5).status().message(), HasSubstr("outside 0..4"));
  EXPECT_FALSE(UnpackCodes(shallow->view(), 5).ok());
  std::vector<int> levels(45, 2);
  levels[44] = 5;
  EXPECT_THAT(DequantizeLevels(shallow->view(), levels).status().message(),
              HasSubstr("channel 44"));
  EXPECT_FALSE(DequantizeLevels(shallow->view(), std::vector<int>(44, 1)).ok());  // wrong count
}

TEST(BitPlanesTest, ByteOffsetsFollowTheDocumentedFormula) {
  quant::QuantizedMatrix q{70, 3, 8, 2, {}, {}, {}};  // two tiles of 64 rows, the second padded
  q.codes.assign(70 * 3, 0);
  q.scales.assign(70 * 2, 1.f);
  q.zeros.assign(70 * 2, 0.f);
  q.codes[66 * 3 + 2] = 0xA0;  // 1010'0000: tile 1, channel 2, row-in-tile 2
  q.codes[9 * 3 + 0] = 0x01;   // tile 0, channel 0, row-in-tile 9: only the last plane
  auto m = PackBitPlanes(q, 64);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->planes.size(), 2u * 3 * 8 * 8);  // [tile][channel][plane][64/8]
  // ((t·cols + k)·stored_planes)·tile_rows/8 = ((1·3 + 2)·8)·8 = 320.
  EXPECT_EQ(m->shape.ChannelOffset(1, 2), 320u);
  EXPECT_EQ(m->planes[320 + 0 * 8 + 0], 1 << 2);  // plane 0 = bit 7 (set), byte 0, bit 2
  EXPECT_EQ(m->planes[320 + 1 * 8 + 0], 0);       // plane 1 = bit 6 (clear)
  EXPECT_EQ(m->planes[320 + 2 * 8 + 0], 1 << 2);  // plane 2 = bit 5 (set)
  EXPECT_EQ(m->planes[0 + 7 * 8 + 1], 1 << 1);    // row 9 is byte 1, bit 1, of plane 7
  int set_bits = 0;
  for (uint8_t b : m->planes) set_bits += __builtin_popcount(b);
  EXPECT_EQ(set_bits, 3);
  const auto run = m->view().ChannelLevel(1, 2, 3);
  EXPECT_EQ(run.data(), m->planes.data() + 320);
  EXPECT_EQ(run.size(), 3u * 8);
}

TEST(BitPlanesTest, PackRefusesWhatItCannotStore) {
  quant::QuantizedMatrix q = RandomMatrix(8, 8, 4, 1);
  EXPECT_THAT(PackBitPlanes(q, 12).status().message(), HasSubstr("tile_rows 12"));
  EXPECT_THAT(PackBitPlanes(q, 64, -1).status().message(), HasSubstr("stored_planes -1"));
  EXPECT_THAT(PackBitPlanes(q, 64, 9).status().message(), HasSubstr("stored_planes 9"));
  q.scales[3] = 0.1f;  // not an fp16 value
  EXPECT_THAT(PackBitPlanes(q).status().message(), HasSubstr("not an fp16 value"));
  quant::QuantizedMatrix q4 = RandomMatrix(8, 8, 4, 1);
  q4.bits = 4;  // its zeros (8-bit codes) are out of a 4-bit code's range, or it keeps 6 of 4 planes
  EXPECT_THAT(PackBitPlanes(q4, 64, 6).status().message(), HasSubstr("stored_planes 6 is outside 1..4"));
  q4.zeros.assign(q4.zeros.size(), 16.f);
  EXPECT_THAT(PackBitPlanes(q4).status().message(), HasSubstr("zero 16 of row 0, group 0 is not a 4-bit code"));
  q4.zeros[0] = 2.5f;
  EXPECT_THAT(PackBitPlanes(q4).status().message(), HasSubstr("zero 2.5 of row 0, group 0 is not a 4-bit code"));
  q4.bits = 9;
  EXPECT_THAT(PackBitPlanes(q4).status().message(), HasSubstr("9-bit codes"));
}

// ---------------------------------------------------------------------------------------
// The file

template <typename T>
std::span<const std::byte> Bytes(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteAll(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A hand-built file: header, the given metadata text, zero padding to 4096, then `data`
// (so tensor offsets start at 4096), for tests that need metadata the writer would refuse.
std::string RawFile(const std::string& meta, const std::string& data, uint32_t version = kGrinqhFormatVersion) {
  std::string out = "\x89GRINQH\n";
  for (uint64_t v : {uint64_t{version}, uint64_t{0}})
    out.append(reinterpret_cast<const char*>(&v), 4);
  const uint64_t len = meta.size();
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += meta;
  out.resize((out.size() + 4095) / 4096 * 4096, '\0');
  return out + data;
}

// Metadata for RawFile: tensors given as name -> {dtype, shape, offset, nbytes, crc32}.
std::string Meta(const json& tensors) {
  return json{{"format_version", kGrinqhFormatVersion}, {"tensors", tensors}}.dump();
}
json Entry(const std::string& dtype, json shape, uint64_t offset, uint64_t nbytes,
           uint32_t crc = 0) {
  return {
      {"dtype", dtype}, {"shape", shape}, {"offset", offset}, {"nbytes", nbytes}, {"crc32", crc}};
}

class GrinqhFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("grinqh_file_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A valid file of five dtypes and four sections; returns its path.
  fs::path WriteSample() {
    GrinqhFileWriter w;
    EXPECT_TRUE(
        w.AddTensor("model.embed_tokens.weight", DType::kBF16, {3, 5}, Bytes(bf16_)).ok());
    EXPECT_TRUE(w.AddTensor("model.norm.weight", DType::kF32, {7}, Bytes(f32_)).ok());
    EXPECT_TRUE(w.AddTensor("u8", DType::kU8, {300}, Bytes(u8_)).ok());
    EXPECT_TRUE(w.AddTensor("u16", DType::kU16, {2, 2}, Bytes(u16_),
                            GrinqhFileWriter::Storage::kReference)
                    .ok());
    EXPECT_TRUE(w.AddTensor("empty", DType::kF16, {0, 4}, {}).ok());
    EXPECT_TRUE(w.SetSection("config", R"({"model_type": "llama", "hidden_size": 64})").ok());
    EXPECT_TRUE(
        w.SetSection("quantization", R"({"method": "grinqh", "bits": 8, "group_size": 128})").ok());
    EXPECT_TRUE(w.SetSection("schedules", "[]").ok());
    EXPECT_TRUE(w.SetSectionString("tokenizer", tokenizer_).ok());
    const fs::path path = dir_ / "model.grinqh";
    EXPECT_TRUE(w.Write(path).ok());
    return path;
  }

  // Open must fail with every one of `parts` in the message, and the path.
  void ExpectRefused(const std::string& contents, std::vector<std::string> parts) {
    const fs::path path = dir_ / "bad.grinqh";
    WriteAll(path, contents);
    auto file = GrinqhFile::Open(path);
    ASSERT_FALSE(file.ok()) << "accepted; expected: " << parts[0];
    parts.push_back(path.string());
    for (const std::string& p : parts) EXPECT_THAT(file.status().message(), HasSubstr(p));
  }

  fs::path dir_;
  std::vector<uint16_t> bf16_ = std::vector<uint16_t>(15, 0x3f80);
  std::vector<float> f32_ = {1, 2, 3, 4, 5, 6, 7};
  std::vector<uint8_t> u8_ = std::vector<uint8_t>(300, 0x5a);
  std::vector<uint16_t> u16_ = {1, 2, 65535, 4};
  std::string tokenizer_ = "{\"model\": {\"vocab\": {\"é\\n\": 0}}}\n\"quoted\"";
};

TEST_F(GrinqhFileTest, RoundTripsTensorsAndSections) {
  const fs::path path = WriteSample();
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  auto file = GrinqhFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const GrinqhFile& f = **file;
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.tensors().size(), 5u);
  auto expect_bytes = [&](const std::string& name, DType dtype, std::vector<int64_t> shape,
                          std::span<const std::byte> want) {
    const GrinqhTensor* t = f.Find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, dtype);
    EXPECT_EQ(t->shape, shape);
    ASSERT_EQ(t->nbytes, want.size());
    EXPECT_TRUE(want.empty() || std::memcmp(t->data, want.data(), want.size()) == 0) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 256, 0u) << name;
  };
  expect_bytes("model.embed_tokens.weight", DType::kBF16, {3, 5}, Bytes(bf16_));
  expect_bytes("model.norm.weight", DType::kF32, {7}, Bytes(f32_));
  expect_bytes("u8", DType::kU8, {300}, Bytes(u8_));
  expect_bytes("u16", DType::kU16, {2, 2}, Bytes(u16_));
  expect_bytes("empty", DType::kF16, {0, 4}, {});
  EXPECT_EQ(f.Find("model.norm.weight")->as<float>()[6], 7.f);

  const json meta = json::parse(f.metadata_json());
  EXPECT_EQ(meta["tensors"]["model.embed_tokens.weight"]["offset"].get<uint64_t>() % 4096, 0u);
  for (const auto& [name, entry] : meta["tensors"].items()) {
    EXPECT_EQ(entry["offset"].get<uint64_t>() % 256, 0u) << name;
  }
  EXPECT_EQ(json::parse(*f.Section("config")),
            json::parse(R"({"model_type": "llama", "hidden_size": 64})"));
  EXPECT_EQ(*f.Section("schedules"), "[]");
  EXPECT_EQ(*f.SectionString("tokenizer"), tokenizer_);
  EXPECT_EQ(f.SectionNames(),
            (std::vector<std::string>{"config", "quantization", "schedules", "tokenizer"}));
  EXPECT_FALSE(f.Section("calibration").has_value());
  EXPECT_EQ(f.SectionString("calibration").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(f.SectionString("config").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.Get("nope").status().message(),
              AllOf(HasSubstr("\"nope\""), HasSubstr(path.string())));
}

TEST_F(GrinqhFileTest, BitPlanesRoundTripThroughTheFileWithoutCopying) {
  const quant::QuantizedMatrix q = RandomMatrix(70, 45, 16, 21);
  auto packed = PackBitPlanes(q, 64, 6);
  ASSERT_TRUE(packed.ok());
  GrinqhFileWriter w;
  ASSERT_TRUE(w.AddBitPlanes("model.layers.0.self_attn.q_proj", *packed).ok());
  ASSERT_TRUE(w.Write(dir_ / "m.grinqh").ok());
  auto file = GrinqhFile::Open(dir_ / "m.grinqh");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find("model.layers.0.self_attn.q_proj.planes")->shape,
            (std::vector<int64_t>{2, 45, 6, 8}));
  auto view = (*file)->BitPlanes("model.layers.0.self_attn.q_proj", 16, 8);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->planes, reinterpret_cast<const uint8_t*>(
                              (*file)->Find("model.layers.0.self_attn.q_proj.planes")->data));
  const std::vector<int> levels = RandomLevels(45, 6, 4);
  auto got = DequantizeLevels(*view, levels);
  ASSERT_TRUE(got.ok());
  ExpectColumnsMatchReference(q, levels, *got);
  EXPECT_THAT((*file)->BitPlanes("model.layers.0.self_attn.q_proj", 32, 8).status().message(),
              HasSubstr("groups of 32"));
  // Six stored planes cannot come from 4-bit codes, and a 4-bit reading of its zeros
  // (8-bit codes) would not fit either: both refused, not misread.
  EXPECT_THAT((*file)->BitPlanes("model.layers.0.self_attn.q_proj", 16, 4).status().message(),
              HasSubstr("stored_planes 6 is outside 1..4"));
  ASSERT_GE(*std::max_element(packed->zeros.begin(), packed->zeros.end()), 64);
  EXPECT_THAT((*file)->BitPlanes("model.layers.0.self_attn.q_proj", 16, 6).status().message(),
              HasSubstr("not a 6-bit code"));
  EXPECT_EQ((*file)->BitPlanes("model.layers.1.mlp", 16, 8).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GrinqhFileTest, WriterRefusesBadInputAndLeavesNoTemporaryFile) {
  GrinqhFileWriter w;
  ASSERT_TRUE(w.AddTensor("a", DType::kF32, {2}, Bytes(std::vector<float>{1, 2})).ok());
  EXPECT_THAT(w.AddTensor("a", DType::kF32, {2}, Bytes(std::vector<float>{1, 2})).message(),
              HasSubstr("twice"));
  EXPECT_THAT(w.AddTensor("b", DType::kF32, {3}, Bytes(std::vector<float>{1, 2})).message(),
              HasSubstr("needs 12"));
  EXPECT_FALSE(w.AddTensor("", DType::kU8, {0}, {}).ok());
  EXPECT_FALSE(w.AddTensor("bad\xff", DType::kU8, {0}, {}).ok());  // not UTF-8
  EXPECT_THAT(w.SetSection("config", "{not json").message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(w.SetSection("config", R"({"a": 1, "a": 2})").message(), HasSubstr("twice"));
  EXPECT_THAT(w.SetSection("config", R"({"a": [1, {"b": 1, "b": 2}]})").message(),
              HasSubstr("section \"config\" has the key \"b\" twice (at /a/1/b)"));
  EXPECT_THAT(w.SetSection("config", std::string(200, '[') + std::string(200, ']')).message(),
              HasSubstr("deeper"));
  EXPECT_FALSE(w.SetSection("tensors", "{}").ok());
  EXPECT_FALSE(w.SetSectionString("tokenizer", "\xff\xfe").ok());  // not UTF-8
  EXPECT_FALSE(w.Write(dir_ / "no_such_dir" / "m.grinqh").ok());
  EXPECT_FALSE(fs::exists(dir_ / "no_such_dir"));
}

TEST_F(GrinqhFileTest, WritesAFileWithoutTensorsAndReplacesAnOldOne) {
  const fs::path path = WriteSample();
  GrinqhFileWriter w;
  ASSERT_TRUE(w.SetSection("config", "{}").ok());
  ASSERT_TRUE(w.Write(path).ok());  // replaces the sample in one rename
  EXPECT_EQ(fs::file_size(path), 4096u);
  auto file = GrinqhFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->tensors().empty());
  EXPECT_EQ((*file)->SectionNames(), std::vector<std::string>{"config"});
}

TEST_F(GrinqhFileTest, FlippedTensorByteIsAChecksumErrorNamingTheTensor) {
  std::string bytes = ReadAll(WriteSample());
  uint64_t meta_len = 0;
  std::memcpy(&meta_len, bytes.data() + 16, 8);
  const size_t at =
      json::parse(bytes.substr(24, meta_len))["tensors"]["u8"]["offset"].get<size_t>();
  bytes[at + 17] ^= 0x10;
  ExpectRefused(bytes, {"\"u8\"", "checksum mismatch"});
  // Without verification the structure is still valid, so the file opens.
  auto unchecked = GrinqhFile::Open(dir_ / "bad.grinqh", /*verify_checksums=*/false);
  EXPECT_TRUE(unchecked.ok()) << unchecked.status();
}

TEST_F(GrinqhFileTest, RefusesTruncatedFiles) {
  const std::string bytes = ReadAll(WriteSample());
  ExpectRefused(bytes.substr(0, bytes.size() - 10), {"past the end", "truncated"});
  ExpectRefused(bytes.substr(0, 20), {"shorter than the 24-byte header"});
  ExpectRefused(bytes.substr(0, 100), {"metadata length", "past the end"});
  ExpectRefused("", {"truncated"});
}

TEST_F(GrinqhFileTest, RefusesBadMagicAndVersions) {
  std::string bytes = ReadAll(WriteSample());
  std::string text_mode = bytes;
  text_mode.replace(7, 1, "\r\n");  // a text-mode transfer turned \n into \r\n
  ExpectRefused(text_mode, {"not a .grinqh file"});
  ExpectRefused("PK\x03\x04 this is a zip file, not a model", {"not a .grinqh file"});
  std::string v99 = bytes;
  v99[8] = 99;
  ExpectRefused(v99, {"format version 99 is not supported", "reads version 2", "grinqh quantize"});
  std::string v1 = bytes;  // the previous version (wider zeros and statistics)
  v1[8] = 1;
  ExpectRefused(v1, {"format version 1 is not supported", "run `grinqh quantize` again"});
  std::string flags = bytes;
  flags[12] = 1;
  ExpectRefused(flags, {"flags 0x1"});
  ExpectRefused(RawFile(json{{"format_version", 3}, {"tensors", json::object()}}.dump(), ""),
                {"\"format_version\" is 3"});
}

TEST_F(GrinqhFileTest, RefusesMalformedMetadata) {
  ExpectRefused(RawFile("{\"tensors\": {", ""), {"not valid JSON"});
  ExpectRefused(RawFile("[1, 2]", ""), {"not an object"});
  ExpectRefused(RawFile(R"({"format_version": 2})", ""), {"no \"tensors\""});
  ExpectRefused(RawFile(R"({"format_version": 2, "tensors": []})", ""),
                {"\"tensors\" is a JSON array"});
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ExpectRefused(RawFile(R"({"format_version": 2, "tensors": {}, "x": )" + deep + "}", ""),
                {"nests deeper than 128 levels"});
  ExpectRefused(RawFile(R"({"format_version": 2, "tensors": {}, "config": 1, "config": 2})", ""),
                {"\"config\" twice"});
  ExpectRefused(RawFile(R"({"format_version": 2, "tensors": {}, "config": {"a": [{"b": 1, "b": 2}]}})", ""),
                {"metadata has the key \"b\" twice (at /config/a/0/b)"});
}

TEST_F(GrinqhFileTest, RefusesBadTensorEntries) {
  const std::string data(512, '\0');
  auto refuse = [&](const json& entry, const std::string& fault) {
    ExpectRefused(RawFile(Meta({{"w", entry}}), data), {"tensor \"w\"", fault});
  };
  refuse(Entry("Q4", {4}, 4096, 4), "unknown dtype \"Q4\"");
  refuse(Entry("F32", {-1}, 4096, 4), "shape dimension 0 is -1");
  refuse(Entry("F32", "4", 4096, 4), "not an array");
  refuse(Entry("F32", {1.5}, 4096, 4), "shape dimension 0 is 1.5");
  refuse(Entry("F32", {4}, 4096, 12), "nbytes 12 but shape [4] of F32 needs 16");
  refuse(Entry("F32", {1ull << 62, 8}, 4096, 0), "overflows");
  refuse(Entry("U8", {4}, 4096 + 8, 4), "offset 4104 is not a multiple of 256");
  refuse(Entry("U8", {4}, 4096 + 512, 4), "run past the end");
  refuse(Entry("U8", {4}, 1ull << 63, 4), "run past the end");
  refuse(Entry("U8", {4}, 0, 4), "overlaps the header");
  refuse(json{{"dtype", "U8"}, {"shape", {4}}, {"offset", 4096}, {"nbytes", 4}},
         "missing \"crc32\"");
  json bad_crc = Entry("U8", {4}, 4096, 4);
  bad_crc["crc32"] = -1;
  refuse(bad_crc, "\"crc32\" is -1");
  refuse(json("w"), "not an object");
}

TEST_F(GrinqhFileTest, RefusesOverlappingTensors) {
  const std::string data(1024, '\0');
  ExpectRefused(RawFile(Meta({{"a", Entry("U8", {512}, 4096, 512)},
                              {"b", Entry("U8", {256}, 4096 + 256, 256)}}),
                        data),
                {"tensors \"a\" and \"b\" overlap"});
}

// Damaged files must be refused or accepted, never crash (also run under ASan/UBSan).
TEST_F(GrinqhFileTest, SurvivesTruncationAndByteFlipsAnywhere) {
  const std::string bytes = ReadAll(WriteSample());
  const fs::path path = dir_ / "fuzz.grinqh";
  uint64_t meta_len = 0;
  std::memcpy(&meta_len, bytes.data() + 16, 8);
  const size_t meta_end = 24 + static_cast<size_t>(meta_len);
  int accepted = 0;
  for (size_t len = 0; len < bytes.size(); len += (len < meta_end + 64 ? 1 : 13)) {
    WriteAll(path, bytes.substr(0, len));
    auto file = GrinqhFile::Open(path);
    EXPECT_FALSE(file.ok()) << "truncated to " << len << " bytes, yet accepted";
  }
  std::mt19937 rng(1234);
  for (size_t at = 0; at < meta_end; ++at) {
    for (int trial = 0; trial < 3; ++trial) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ static_cast<char>(1 + rng() % 255));
      WriteAll(path, damaged);
      auto file = GrinqhFile::Open(path);
      if (file.ok()) ++accepted;  // e.g. a flipped character inside a section string
    }
  }
  RecordProperty("accepted_flips", accepted);
}

}  // namespace
}  // namespace grinqh
