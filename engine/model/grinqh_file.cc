// The .grinqh reader and writer (docs/FORMAT.md). The reader checks the header, then the
// metadata, then each tensor entry, then the tensors against each other, then the checksums.
#include "engine/model/grinqh_file.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/json.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

constexpr char kMagic[8] = {'\x89', 'G', 'R', 'I', 'N', 'Q', 'H', '\n'};

std::string Quote(std::string_view s) {
  // JSON-escaped, so control characters or quotes in a hostile name stay readable.
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// absl::StrCat takes Debian's absl::string_view, not std::string_view.
std::string DTypeStr(DType dtype) { return std::string(DTypeName(dtype)); }

uint64_t ReadLE(const std::byte* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

// Non-negative JSON integer; nullopt for anything else (floats, negatives, strings).
std::optional<uint64_t> AsU64(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0)
    return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

// A JSON value for an error message: compact, and cut short when long.
std::string Snippet(const json& j) {
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() <= 64 ? text : text.substr(0, 60) + " ...";
}

// nlohmann's dump throws on invalid UTF-8; the writer checks names before they get there.
bool IsUtf8(std::string_view s) {
  try {
    (void)json(std::string(s)).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

uint32_t Crc32(std::span<const std::byte> bytes) {
  return static_cast<uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

uint64_t RoundUp(uint64_t n, uint64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// The file as the checks see it: its bytes, and the name every error starts with.
struct Source {
  std::string where;
  const std::byte* base;
  uint64_t size;
  absl::Status Corrupt(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat(where, ": ", what));
  }
};

// Magic, version, flags and metadata length; returns the metadata length.
absl::StatusOr<uint64_t> CheckHeader(const Source& src) {
  if (src.size >= 8 && std::memcmp(src.base, kMagic, 8) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        src.where, ": not a .grinqh file (bad magic; expected the 8 bytes \\x89GRINQH\\n)"));
  }
  if (src.size < kGrinqhHeaderBytes) {
    return src.Corrupt(absl::StrCat("file is ", src.size, " bytes, shorter than the ",
                                    kGrinqhHeaderBytes, "-byte header (truncated)"));
  }
  if (const uint64_t version = ReadLE(src.base + 8, 4); version != kGrinqhFormatVersion) {
    return absl::UnimplementedError(absl::StrCat(src.where, ": format version ", version,
                                                 " is not supported (this build reads version ",
                                                 kGrinqhFormatVersion, "; run `grinqh quantize` again ",
                                                 "to write the file in it)"));
  }
  if (const uint64_t flags = ReadLE(src.base + 12, 4); flags != 0) {
    return absl::UnimplementedError(absl::StrCat(src.where, ": header flags 0x", absl::Hex(flags),
                                                 " are unknown to format version ", kGrinqhFormatVersion));
  }
  const uint64_t meta_len = ReadLE(src.base + 16, 8);
  if (meta_len > src.size - kGrinqhHeaderBytes) {
    return src.Corrupt(absl::StrCat("metadata length ", meta_len,
                                    " runs past the end of the file (", src.size,
                                    " bytes; truncated?)"));
  }
  return meta_len;
}

// The metadata object, with "format_version" and "tensors" checked.
absl::StatusOr<json> ParseMetadata(const Source& src, std::string_view text) {
  absl::StatusOr<json> parsed = ParseStrictJson(text, "metadata");
  if (!parsed.ok()) return src.Corrupt(parsed.status().message());
  json meta = *std::move(parsed);
  if (!meta.is_object())
    return src.Corrupt(absl::StrCat("metadata is a JSON ", meta.type_name(), ", not an object"));
  auto fv = meta.find("format_version");
  if (fv == meta.end() || AsU64(*fv) != std::optional<uint64_t>(kGrinqhFormatVersion)) {
    return src.Corrupt(absl::StrCat("metadata \"format_version\" is ",
                                    fv == meta.end() ? "missing" : Snippet(*fv),
                                    ", the header says ", kGrinqhFormatVersion));
  }
  auto jt = meta.find("tensors");
  if (jt == meta.end()) return src.Corrupt("metadata has no \"tensors\"");
  if (!jt->is_object()) {
    return src.Corrupt(
        absl::StrCat("metadata \"tensors\" is a JSON ", jt->type_name(), ", not an object"));
  }
  return meta;
}

// dtype, shape, nbytes and crc32 of one "tensors" entry, checked for type and internal
// consistency; returns the fault (empty when none) and sets `offset`.
std::string ParseEntry(const json& j, GrinqhTensor& t, uint64_t& offset) {
  if (!j.is_object()) return absl::StrCat("entry is a JSON ", j.type_name(), ", not an object");
  for (const char* key : {"dtype", "shape", "offset", "nbytes", "crc32"}) {
    if (!j.contains(key)) return absl::StrCat("missing \"", key, "\"");
  }
  const json& jdtype = j["dtype"];
  std::optional<DType> dtype;
  if (jdtype.is_string()) dtype = ParseDType(jdtype.get<std::string>());
  if (!dtype)
    return absl::StrCat("unknown dtype ", Snippet(jdtype), " (known: U8, U16, F16, BF16, F32)");
  t.dtype = *dtype;
  const json& jshape = j["shape"];
  if (!jshape.is_array()) return absl::StrCat("\"shape\" is ", Snippet(jshape), ", not an array");
  uint64_t need = DTypeSize(*dtype);
  for (size_t i = 0; i < jshape.size(); ++i) {
    std::optional<uint64_t> dim = AsU64(jshape[i]);
    if (!dim || *dim > static_cast<uint64_t>(INT64_MAX)) {
      return absl::StrCat("shape dimension ", i, " is ", Snippet(jshape[i]),
                          ", not a non-negative integer");
    }
    if (__builtin_mul_overflow(need, *dim, &need)) return "shape overflows a 64-bit byte count";
    t.shape.push_back(static_cast<int64_t>(*dim));
  }
  std::optional<uint64_t> off = AsU64(j["offset"]);
  std::optional<uint64_t> nbytes = AsU64(j["nbytes"]);
  std::optional<uint64_t> crc = AsU64(j["crc32"]);
  if (!off)
    return absl::StrCat("\"offset\" is ", Snippet(j["offset"]), ", not a non-negative integer");
  if (!nbytes)
    return absl::StrCat("\"nbytes\" is ", Snippet(j["nbytes"]), ", not a non-negative integer");
  if (!crc || *crc > 0xffffffffu)
    return absl::StrCat("\"crc32\" is ", Snippet(j["crc32"]), ", not a u32");
  if (*nbytes != need) {
    return absl::StrCat("nbytes ", *nbytes, " but shape ", ShapeString(t.shape), " of ",
                        DTypeStr(*dtype), " needs ", need);
  }
  offset = *off;
  t.nbytes = static_cast<size_t>(*nbytes);
  t.crc32 = static_cast<uint32_t>(*crc);
  return "";
}

// One entry, checked on its own and then against the file: aligned, in the data section.
absl::StatusOr<GrinqhTensor> PlaceTensor(const Source& src, const std::string& name,
                                         const json& entry, uint64_t data_start) {
  auto bad = [&](absl::string_view what) {
    return src.Corrupt(absl::StrCat("tensor ", Quote(name), ": ", what));
  };
  if (name.empty()) return src.Corrupt("a tensor has an empty name");
  GrinqhTensor t;
  uint64_t offset = 0;
  if (std::string fault = ParseEntry(entry, t, offset); !fault.empty()) return bad(fault);
  if (offset % kGrinqhTensorAlignment != 0) {
    return bad(absl::StrCat("offset ", offset, " is not a multiple of ", kGrinqhTensorAlignment));
  }
  if (offset < data_start) {
    return bad(absl::StrCat("offset ", offset, " overlaps the header and metadata (data starts at ",
                            data_start, ")"));
  }
  if (offset > src.size || t.nbytes > src.size - offset) {
    return bad(absl::StrCat("bytes [", offset, ", +", t.nbytes, ") run past the end of the file (",
                            src.size, " bytes; truncated?)"));
  }
  t.name = name;
  t.data = src.base + offset;
  return t;
}

// No byte may belong to two tensors: sort the non-empty ranges and compare neighbours.
absl::Status CheckNoOverlap(const Source& src,
                            const std::map<std::string, GrinqhTensor, std::less<>>& tensors) {
  std::vector<const GrinqhTensor*> sorted;
  for (const auto& [name, t] : tensors) {
    if (t.nbytes > 0) sorted.push_back(&t);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->data < b->data; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const GrinqhTensor& prev = *sorted[i - 1];
    const GrinqhTensor& cur = *sorted[i];
    if (cur.data < prev.data + prev.nbytes) {
      return src.Corrupt(absl::StrCat("tensors ", Quote(prev.name), " and ", Quote(cur.name),
                                      " overlap (bytes ", cur.data - src.base, " to ",
                                      prev.data + prev.nbytes - src.base, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status VerifyChecksums(const Source& src,
                             const std::map<std::string, GrinqhTensor, std::less<>>& tensors) {
  for (const auto& [name, t] : tensors) {
    if (const uint32_t crc = Crc32({t.data, t.nbytes}); crc != t.crc32) {
      return src.Corrupt(
          absl::StrCat("tensor ", Quote(name), ": checksum mismatch (crc32 of the data is 0x",
                       absl::Hex(crc, absl::kZeroPad8), ", metadata says 0x",
                       absl::Hex(t.crc32, absl::kZeroPad8), "); the file is damaged"));
    }
  }
  return absl::OkStatus();
}

// Writes a new file through stdio, remembering the first error, and on Finish flushes it
// to the disk (fsync) so that the rename that follows never publishes a file whose bytes
// are still only in the page cache. A file that is not finished cleanly is removed.
class DurableWriter {
 public:
  static absl::StatusOr<DurableWriter> Create(std::filesystem::path path) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr)
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", path.string()));
    return DurableWriter(std::move(path), f);
  }
  DurableWriter(DurableWriter&& o) noexcept
      : path_(std::move(o.path_)), f_(std::exchange(o.f_, nullptr)) {}
  DurableWriter& operator=(DurableWriter&&) = delete;
  ~DurableWriter() {
    if (f_ != nullptr) std::fclose(f_);
    if (f_ != nullptr || err_ != 0) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
    }
  }

  void Append(std::span<const std::byte> bytes) {
    if (!bytes.empty()) Check(std::fwrite(bytes.data(), 1, bytes.size(), f_) == bytes.size());
    written_ += bytes.size();
  }
  void PadTo(uint64_t offset) {  // zeros up to `offset`
    static constexpr std::byte kZeros[kGrinqhTensorAlignment] = {};
    while (written_ < offset)
      Append(std::span(kZeros).first(std::min<uint64_t>(offset - written_, sizeof(kZeros))));
  }
  absl::Status Finish() {
    Check(std::fflush(f_) == 0);
    Check(::fsync(::fileno(f_)) == 0);
    Check(std::fclose(std::exchange(f_, nullptr)) == 0);
    if (err_ == 0) return absl::OkStatus();
    return absl::ErrnoToStatus(err_, absl::StrCat("cannot write ", path_.string()));
  }

 private:
  DurableWriter(std::filesystem::path path, std::FILE* f) : path_(std::move(path)), f_(f) {}
  void Check(bool ok) {
    if (!ok && err_ == 0) err_ = errno != 0 ? errno : EIO;
  }
  std::filesystem::path path_;
  std::FILE* f_;
  int err_ = 0;
  uint64_t written_ = 0;
};

}  // namespace

int64_t GrinqhTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at open: the byte count fits in 64 bits
  return n;
}

// ---------------------------------------------------------------------------------------
// GrinqhFile

absl::StatusOr<std::unique_ptr<GrinqhFile>> GrinqhFile::Open(const std::filesystem::path& path,
                                                             bool verify_checksums) {
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  std::unique_ptr<GrinqhFile> file(new GrinqhFile(std::move(*mapped)));
  if (absl::Status s = file->Parse(verify_checksums); !s.ok()) return s;
  return file;
}

absl::Status GrinqhFile::Parse(bool verify_checksums) {
  const Source src{path().string(), file_->data(), file_->size()};
  GRINQH_ASSIGN_OR_RETURN(const uint64_t meta_len, CheckHeader(src));
  version_ = kGrinqhFormatVersion;
  metadata_json_ = std::string_view(reinterpret_cast<const char*>(src.base) + kGrinqhHeaderBytes,
                                    static_cast<size_t>(meta_len));
  GRINQH_ASSIGN_OR_RETURN(const json meta, ParseMetadata(src, metadata_json_));
  const uint64_t data_start = RoundUp(kGrinqhHeaderBytes + meta_len, kGrinqhDataAlignment);
  for (const auto& [name, entry] : meta["tensors"].items()) {
    GRINQH_ASSIGN_OR_RETURN(GrinqhTensor t, PlaceTensor(src, name, entry, data_start));
    tensors_.emplace(name, std::move(t));  // names are unique: duplicates were refused
  }
  for (const auto& [key, value] : meta.items()) {
    if (key == "format_version" || key == "tensors") continue;
    sections_[key] = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (value.is_string()) string_sections_[key] = value.get<std::string>();
  }
  GRINQH_RETURN_IF_ERROR(CheckNoOverlap(src, tensors_));
  return verify_checksums ? VerifyChecksums(src, tensors_) : absl::OkStatus();
}

const GrinqhTensor* GrinqhFile::Find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::StatusOr<const GrinqhTensor*> GrinqhFile::Get(std::string_view name) const {
  if (const GrinqhTensor* t = Find(name)) return t;
  return absl::NotFoundError(absl::StrCat(path().string(), ": no tensor ", Quote(name)));
}

std::optional<std::string> GrinqhFile::Section(std::string_view name) const {
  auto it = sections_.find(name);
  if (it == sections_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> GrinqhFile::SectionString(std::string_view name) const {
  if (auto it = string_sections_.find(name); it != string_sections_.end()) return it->second;
  if (sections_.contains(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path().string(), ": metadata section ", Quote(name), " is not a JSON string"));
  }
  return absl::NotFoundError(absl::StrCat(path().string(), ": no metadata section ", Quote(name)));
}

std::vector<std::string> GrinqhFile::SectionNames() const {
  std::vector<std::string> names;
  for (const auto& [name, text] : sections_) names.push_back(name);
  return names;
}

absl::StatusOr<BitPlaneView> GrinqhFile::BitPlanes(std::string_view prefix, int group_size, int code_bits) const {
  const std::string p(prefix);
  GRINQH_ASSIGN_OR_RETURN(const GrinqhTensor* planes, Get(p + ".planes"));
  GRINQH_ASSIGN_OR_RETURN(const GrinqhTensor* scales, Get(p + ".scales"));
  GRINQH_ASSIGN_OR_RETURN(const GrinqhTensor* zeros, Get(p + ".zeros"));
  auto bad = [&](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat(path().string(), ": bit planes ", Quote(prefix), ": ", what));
  };
  const auto fits_int = [](const std::vector<int64_t>& shape) {
    return std::all_of(shape.begin(), shape.end(), [](int64_t d) { return d <= INT32_MAX; });
  };
  if (planes->dtype != DType::kU8 || planes->shape.size() != 4 || !fits_int(planes->shape)) {
    return bad(absl::StrCat(".planes is ", DTypeStr(planes->dtype), " ", ShapeString(planes->shape),
                            ", not U8 [tiles, cols, planes, tile_rows/8]"));
  }
  if (scales->dtype != DType::kF16 || scales->shape.size() != 2 || !fits_int(scales->shape)) {
    return bad(absl::StrCat(".scales is ", DTypeStr(scales->dtype), " ", ShapeString(scales->shape),
                            ", not F16 [rows, groups]"));
  }
  if (zeros->dtype != DType::kU8 || zeros->shape != scales->shape) {
    return bad(absl::StrCat(".zeros is ", DTypeStr(zeros->dtype), " ", ShapeString(zeros->shape),
                            ", not U8 [rows, groups] matching .scales"));
  }
  // Every field comes from a stored shape, so the sizes below are the (validated) nbytes.
  BitPlaneShape shape;
  shape.rows = static_cast<int>(scales->shape[0]);
  shape.cols = static_cast<int>(planes->shape[1]);
  shape.stored_planes = static_cast<int>(planes->shape[2]);
  shape.tile_rows = static_cast<int>(std::min<int64_t>(planes->shape[3] * 8, INT32_MAX / 8 * 8));
  shape.group_size = group_size;
  shape.code_bits = code_bits;
  if (absl::Status s = shape.Validate(); !s.ok()) return bad(s.message());
  if (shape.tiles() != planes->shape[0] || shape.groups() != scales->shape[1]) {
    return bad(absl::StrCat(ShapeString(planes->shape), " planes and ", ShapeString(scales->shape),
                            " scales do not describe one ", shape.rows, " x ", shape.cols,
                            " matrix in groups of ", group_size));
  }
  for (const uint8_t zero : zeros->as<uint8_t>()) {
    if (zero >> code_bits != 0) {
      return bad(absl::StrCat(".zeros holds ", int{zero}, ", not a ", code_bits, "-bit code"));
    }
  }
  return MakeBitPlaneView(shape, planes->as<uint8_t>(), scales->as<uint16_t>(), zeros->as<uint8_t>());
}

// ---------------------------------------------------------------------------------------
// GrinqhFileWriter

absl::Status GrinqhFileWriter::AddTensor(std::string_view name, DType dtype,
                                         std::vector<int64_t> shape,
                                         std::span<const std::byte> bytes, Storage storage) {
  if (name.empty() || !IsUtf8(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("grinqh writer: tensor name ", Quote(name), " is empty or not UTF-8"));
  }
  for (const auto& t : tensors_) {
    if (t->name == name) {
      return absl::InvalidArgumentError(
          absl::StrCat("grinqh writer: tensor ", Quote(name), " added twice"));
    }
  }
  uint64_t need = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(need, static_cast<uint64_t>(d), &need)) {
      return absl::InvalidArgumentError(
          absl::StrCat("grinqh writer: tensor ", Quote(name), ": bad shape ", ShapeString(shape)));
    }
  }
  if (need != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grinqh writer: tensor ", Quote(name), ": ", bytes.size(), " bytes given, shape ",
        ShapeString(shape), " of ", DTypeStr(dtype), " needs ", need));
  }
  auto t =
      std::make_unique<Pending>(Pending{std::string(name), dtype, std::move(shape), {}, bytes});
  if (storage == Storage::kCopy) {
    t->owned.assign(bytes.begin(), bytes.end());
    t->bytes = t->owned;
  }
  tensors_.push_back(std::move(t));
  return absl::OkStatus();
}

absl::Status GrinqhFileWriter::AddBitPlanes(std::string_view prefix, const BitPlaneMatrix& m,
                                            Storage storage) {
  const BitPlaneShape& s = m.shape;
  GRINQH_RETURN_IF_ERROR(MakeBitPlaneView(s, m.planes, m.scales, m.zeros).status());
  const std::string p(prefix);
  GRINQH_RETURN_IF_ERROR(AddTensor(p + ".planes", DType::kU8,
                                   {s.tiles(), s.cols, s.stored_planes, s.tile_rows / 8},
                                   std::as_bytes(std::span(m.planes)), storage));
  GRINQH_RETURN_IF_ERROR(AddTensor(p + ".scales", DType::kF16, {s.rows, s.groups()},
                                   std::as_bytes(std::span(m.scales)), storage));
  return AddTensor(p + ".zeros", DType::kU8, {s.rows, s.groups()},
                   std::as_bytes(std::span(m.zeros)), storage);
}

absl::Status GrinqhFileWriter::CheckSectionName(std::string_view name) const {
  if (name.empty() || name == "format_version" || name == "tensors" || !IsUtf8(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("grinqh writer: ", Quote(name), " cannot name a metadata section"));
  }
  return absl::OkStatus();
}

absl::Status GrinqhFileWriter::SetSection(std::string_view name, std::string_view json_text) {
  GRINQH_RETURN_IF_ERROR(CheckSectionName(name));
  // Held to the reader's rules, so that the writer never writes a file the reader refuses.
  GRINQH_ASSIGN_OR_RETURN(const json value,
                          ParseStrictJson(json_text, absl::StrCat("grinqh writer: section ", Quote(name))));
  sections_[std::string(name)] = value.dump();
  return absl::OkStatus();
}

absl::Status GrinqhFileWriter::SetSectionString(std::string_view name, std::string_view text) {
  GRINQH_RETURN_IF_ERROR(CheckSectionName(name));
  if (!IsUtf8(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("grinqh writer: section ", Quote(name), " is not valid UTF-8"));
  }
  sections_[std::string(name)] = json(std::string(text)).dump();
  return absl::OkStatus();
}

// The metadata text, with `offsets` set to each tensor's absolute offset. The offsets sit
// in the metadata and depend on its length, so lay out again until the data start holds.
std::string GrinqhFileWriter::Layout(std::vector<uint64_t>& offsets) const {
  json meta = json::object();
  meta["format_version"] = kGrinqhFormatVersion;
  for (const auto& [name, text] : sections_) meta[name] = json::parse(text);
  std::vector<uint32_t> crcs;
  for (const auto& t : tensors_) crcs.push_back(Crc32(t->bytes));
  uint64_t data_start = kGrinqhDataAlignment;
  while (true) {
    json tensors = json::object();
    offsets.clear();
    uint64_t at = data_start;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Pending& t = *tensors_[i];
      offsets.push_back(at);
      tensors[t.name] = {{"dtype", DTypeStr(t.dtype)},
                         {"shape", t.shape},
                         {"offset", at},
                         {"nbytes", t.bytes.size()},
                         {"crc32", crcs[i]}};
      at += RoundUp(t.bytes.size(), kGrinqhTensorAlignment);
    }
    meta["tensors"] = std::move(tensors);
    std::string text = meta.dump();
    const uint64_t need = RoundUp(kGrinqhHeaderBytes + text.size(), kGrinqhDataAlignment);
    if (need <= data_start) return text;
    data_start = need;  // offsets only grow, so this settles within a pass or two
  }
}

absl::Status GrinqhFileWriter::Write(const std::filesystem::path& path) const {
  std::vector<uint64_t> offsets;
  const std::string meta = Layout(offsets);
  std::string header(kMagic, sizeof(kMagic));
  for (uint64_t v : {uint64_t{kGrinqhFormatVersion}, uint64_t{0}}) {  // version, flags
    for (int i = 0; i < 4; ++i) header.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  for (int i = 0; i < 8; ++i) header.push_back(static_cast<char>((meta.size() >> (8 * i)) & 0xff));
  header += meta;

  const std::filesystem::path tmp = path.string() + ".tmp";
  GRINQH_ASSIGN_OR_RETURN(DurableWriter out, DurableWriter::Create(tmp));
  out.Append(std::as_bytes(std::span(header)));
  out.PadTo(RoundUp(header.size(), kGrinqhDataAlignment));  // even when there are no tensors
  for (size_t i = 0; i < tensors_.size(); ++i) {
    out.PadTo(offsets[i]);  // zero padding up to the tensor's aligned offset
    out.Append(tensors_[i]->bytes);
  }
  GRINQH_RETURN_IF_ERROR(out.Finish());
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp.string(), " to ", path.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace grinqh
