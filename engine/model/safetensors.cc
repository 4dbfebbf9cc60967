#include "engine/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/file_util.h"
#include "engine/base/json.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we (a header that
// large is a corrupt length field, not a real checkpoint).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

constexpr char kIndexName[] = "model.safetensors.index.json";
constexpr char kSingleName[] = "model.safetensors";

std::string Quote(std::string_view s) {
  // JSON-escape so that control characters or quotes in a hostile name stay readable.
  return json(std::string(s)).dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string JsonTypeName(const json& j) { return std::string(j.type_name()); }

// Non-negative JSON integer as u64; nullopt for anything else (floats, negatives, ...).
std::optional<uint64_t> AsU64(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v >= 0) return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at load: fits, no overflow
  return n;
}

// ---------------------------------------------------------------------------------------
// MappedFile

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::filesystem::path& path) {
  // O_NONBLOCK so that a FIFO does not hang the open; it is refused below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path.string(), ": no such file"));
    return absl::ErrnoToStatus(err, absl::StrCat(path.string(), ": cannot open"));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat(path.string(), ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        path.string(), ": not a regular file", S_ISDIR(st.st_mode) ? " (it is a directory)" : ""));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    // mmap refuses length 0: an empty file is an empty mapping.
    ::close(fd);
    return std::unique_ptr<MappedFile>(new MappedFile(path, nullptr, 0));
  }
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (addr == MAP_FAILED) {
    return absl::ErrnoToStatus(err, absl::StrCat(path.string(), ": cannot mmap ", size, " bytes"));
  }
  return std::unique_ptr<MappedFile>(
      new MappedFile(path, static_cast<const std::byte*>(addr), size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr && size_ > 0) {
    ::munmap(const_cast<std::byte*>(data_), size_);
  }
}

// ---------------------------------------------------------------------------------------
// SafetensorsFile

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::filesystem::path& path) {
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(std::move(*mapped)));
  const std::string where = path.string();
  const std::byte* base = file->file_->data();
  const uint64_t size = file->file_->size();

  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(where, ": ", what));
  };
  auto corrupt_tensor = [&](const std::string& name, absl::string_view what) {
    return absl::DataLossError(absl::StrCat(where, ": tensor ", Quote(name), ": ", what));
  };

  if (size < 8) {
    return corrupt(absl::StrCat("file is ", size,
                                " bytes, shorter than the 8-byte header length (truncated)"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<uint64_t>(base[i]);
  }
  if (header_len > kMaxHeaderBytes) {
    return corrupt(absl::StrCat("header length ", header_len, " exceeds the limit of ",
                                kMaxHeaderBytes, " bytes (corrupt length field)"));
  }
  if (header_len > size - 8) {
    return corrupt(absl::StrCat("header length ", header_len, " runs past the end of the file (",
                                size, " bytes; truncated?)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(base + 8);
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;

  // Repeated keys are refused: the format forbids them (and a second entry for a tensor
  // could hide the first).
  absl::StatusOr<json> parsed = ParseStrictJson(std::string_view(header_begin, header_len), "header");
  if (!parsed.ok()) return corrupt(parsed.status().message());
  const json& header = *parsed;
  if (!header.is_object()) {
    return corrupt(absl::StrCat("header is a JSON ", JsonTypeName(header), ", not an object"));
  }

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  ranges.reserve(header.size());

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (entry.is_null()) continue;
      if (!entry.is_object()) {
        return corrupt(absl::StrCat("__metadata__ is a JSON ", JsonTypeName(entry),
                                    ", not an object of strings"));
      }
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          return corrupt(absl::StrCat("__metadata__ value of ", Quote(key), " is a JSON ",
                                      JsonTypeName(value), ", not a string"));
        }
        file->metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) {
      return corrupt_tensor(
          name, absl::StrCat("entry is a JSON ", JsonTypeName(entry), ", not an object"));
    }
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
      if (!entry.contains(key)) return corrupt_tensor(name, absl::StrCat("missing \"", key, "\""));
    }
    const json& jdtype = entry["dtype"];
    const json& jshape = entry["shape"];
    const json& joffsets = entry["data_offsets"];

    if (!jdtype.is_string()) {
      return corrupt_tensor(
          name, absl::StrCat("\"dtype\" is a JSON ", JsonTypeName(jdtype), ", not a string"));
    }
    const std::string dtype_name = jdtype.get<std::string>();
    std::optional<DType> dtype = ParseDType(dtype_name);
    if (!dtype || !IsFloat(*dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensor ", Quote(name),
                                                     ": unsupported dtype ", Quote(dtype_name),
                                                     " (supported: F32, F16, BF16)"));
    }

    if (!jshape.is_array()) {
      return corrupt_tensor(name, absl::StrCat("\"shape\" is a JSON ", JsonTypeName(jshape),
                                               ", not an array of integers"));
    }
    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    view.shape.reserve(jshape.size());
    uint64_t nbytes = DTypeSize(*dtype);
    bool overflow = false;
    for (size_t i = 0; i < jshape.size(); ++i) {
      const json& jd = jshape[i];
      std::optional<uint64_t> dim = AsU64(jd);
      if (!dim) {
        if (jd.is_number_integer()) {
          return corrupt_tensor(
              name, absl::StrCat("shape dimension ", i, " is negative (", jd.dump(), ")"));
        }
        return corrupt_tensor(name, absl::StrCat("shape dimension ", i, " is ", jd.dump(),
                                                 ", not a non-negative integer"));
      }
      if (*dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return corrupt_tensor(name,
                              absl::StrCat("shape dimension ", i, " (", *dim, ") is too large"));
      }
      view.shape.push_back(static_cast<int64_t>(*dim));
      if (!overflow && __builtin_mul_overflow(nbytes, *dim, &nbytes)) overflow = true;
    }
    if (overflow) {
      return corrupt_tensor(name, absl::StrCat("shape ", ShapeString(view.shape), " of ",
                                               dtype_name, " overflows 64-bit byte size"));
    }

    if (!joffsets.is_array() || joffsets.size() != 2) {
      return corrupt_tensor(
          name, absl::StrCat("\"data_offsets\" is ", joffsets.dump(), ", not [begin, end]"));
    }
    std::optional<uint64_t> begin = AsU64(joffsets[0]);
    std::optional<uint64_t> end = AsU64(joffsets[1]);
    if (!begin || !end) {
      return corrupt_tensor(name, absl::StrCat("\"data_offsets\" ", joffsets.dump(),
                                               " are not non-negative integers"));
    }
    if (*begin > *end) {
      return corrupt_tensor(
          name, absl::StrCat("data_offsets [", *begin, ", ", *end, "] begin after they end"));
    }
    if (*end > data_size) {
      return corrupt_tensor(name, absl::StrCat("data_offsets [", *begin, ", ", *end,
                                               "] run past the end of the data section (",
                                               data_size, " bytes; truncated?)"));
    }
    if (nbytes != *end - *begin) {
      return corrupt_tensor(
          name, absl::StrCat("shape ", ShapeString(view.shape), " of ", dtype_name, " needs ",
                             nbytes, " bytes but data_offsets span ", *end - *begin));
    }
    view.data = base + data_start + *begin;
    view.nbytes = static_cast<size_t>(nbytes);
    auto [it, inserted] = file->tensors_.emplace(name, std::move(view));
    (void)inserted;  // duplicate keys were refused while parsing
    if (*end > *begin) ranges.push_back({*begin, *end, &it->first});
  }

  // Tensors must not share bytes: sort the non-empty ranges and compare neighbours.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Range& prev = ranges[i - 1];
    const Range& cur = ranges[i];
    if (cur.begin < prev.end) {
      return corrupt(absl::StrCat("tensors ", Quote(*prev.name), " (data_offsets [", prev.begin,
                                  ", ", prev.end, "]) and ", Quote(*cur.name), " (data_offsets [",
                                  cur.begin, ", ", cur.end, "]) overlap"));
    }
  }
  return file;
}

// ---------------------------------------------------------------------------------------
// Checkpoint

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(
    const std::filesystem::path& model_dir) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = model_dir;
  const std::filesystem::path index_path = model_dir / kIndexName;
  const std::filesystem::path single_path = model_dir / kSingleName;
  std::error_code ec;

  if (std::filesystem::exists(index_path, ec)) {
    const std::string where = index_path.string();
    auto text = ReadFileToString(index_path);
    if (!text.ok()) return text.status();
    absl::StatusOr<json> parsed = ParseStrictJson(*text, where);
    if (!parsed.ok()) return absl::DataLossError(parsed.status().message());
    const json& index = *parsed;
    if (!index.is_object()) {
      return absl::DataLossError(
          absl::StrCat(where, ": is a JSON ", JsonTypeName(index), ", not an object"));
    }
    auto wm = index.find("weight_map");
    if (wm == index.end())
      return absl::DataLossError(absl::StrCat(where, ": missing \"weight_map\""));
    if (!wm->is_object()) {
      return absl::DataLossError(
          absl::StrCat(where, ": \"weight_map\" is a JSON ", JsonTypeName(*wm), ", not an object"));
    }
    if (wm->empty()) return absl::DataLossError(absl::StrCat(where, ": \"weight_map\" is empty"));

    // shard file name -> tensors the index places there
    std::map<std::string, std::vector<std::string>> shards;
    for (const auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string()) {
        return absl::DataLossError(absl::StrCat(where, ": weight_map entry of tensor ",
                                                Quote(tensor), " is a JSON ", JsonTypeName(shard),
                                                ", not a shard file name"));
      }
      const std::string name = shard.get<std::string>();
      if (name.empty() || name == "." || name == ".." ||
          name.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": tensor ", Quote(tensor), " names shard ", Quote(name),
            ", which is not a plain file name in the model directory (path escape refused)"));
      }
      shards[name].push_back(tensor);
    }

    for (const auto& [shard_name, tensors] : shards) {
      auto shard = SafetensorsFile::Open(model_dir / shard_name);
      if (!shard.ok()) {
        return WithContext(
            shard.status(),
            absl::StrCat(where, ": shard ", Quote(shard_name), " (listed for ", tensors.size(),
                         " tensors, e.g. ", Quote(tensors.front()), ")"));
      }
      for (const std::string& tensor : tensors) {
        if ((*shard)->tensors().count(tensor) == 0) {
          return absl::DataLossError(absl::StrCat(
              where, ": tensor ", Quote(tensor), " is listed in shard ", Quote(shard_name), " but ",
              (*shard)->path().string(), " does not contain it"));
        }
      }
      ckpt->files_.push_back(std::move(*shard));
    }
  } else if (std::filesystem::exists(single_path, ec)) {
    auto file = SafetensorsFile::Open(single_path);
    if (!file.ok()) return file.status();
    ckpt->files_.push_back(std::move(*file));
  } else {
    const bool is_dir = std::filesystem::is_directory(model_dir, ec);
    return absl::NotFoundError(absl::StrCat("no ", kSingleName, " or ", kIndexName, " in ",
                                            model_dir.string(),
                                            is_dir ? "" : " (no such directory)"));
  }

  for (const auto& file : ckpt->files_) {
    for (const auto& [name, view] : file->tensors()) {
      auto [it, inserted] = ckpt->index_.emplace(name, &view);
      if (!inserted) {
        // Find which file holds the first copy, to name both.
        std::string first_path;
        for (const auto& other : ckpt->files_) {
          auto found = other->tensors().find(name);
          if (found != other->tensors().end() && &found->second == it->second) {
            first_path = other->path().string();
          }
        }
        return absl::DataLossError(absl::StrCat("tensor ", Quote(name), " is in two shards of ",
                                                model_dir.string(), ": ", first_path, " and ",
                                                file->path().string()));
      }
    }
  }
  return ckpt;
}

absl::StatusOr<TensorView> Checkpoint::Get(std::string_view name) const {
  const TensorView* view = Find(name);
  if (view == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tensor ", Quote(name), " not found in checkpoint ", dir_.string()));
  }
  return *view;
}

const TensorView* Checkpoint::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, view] : index_) names.push_back(name);
  return names;
}

}  // namespace grinqh
