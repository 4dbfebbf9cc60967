// A plain reference implementation of the layout: the CPU path and the tests read it a byte
// (8 rows) at a time; GPU kernels read the same bytes a word at a time.
#include "engine/quant/bit_planes.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace grinqh {
namespace {

absl::Status CheckSize(const char* what, size_t got, size_t want) {
  if (got == want) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("bit planes: ", what, " holds ", got, " entries, the shape needs ", want));
}

// Levels must name every channel and stay within what the store holds: a level deeper
// than stored_planes would read the next channel's planes.
absl::Status CheckLevels(const BitPlaneShape& shape, std::span<const int> levels) {
  if (levels.size() != static_cast<size_t>(shape.cols)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bit planes: ", levels.size(), " levels given for ", shape.cols, " channels"));
  }
  for (size_t k = 0; k < levels.size(); ++k) {
    if (levels[k] < 0 || levels[k] > shape.stored_planes) {
      return absl::InvalidArgumentError(
          absl::StrCat("bit planes: level ", levels[k], " of channel ", k, " is outside 0..",
                       shape.stored_planes, " (the planes this store keeps)"));
    }
  }
  return absl::OkStatus();
}

// Scales become fp16 bits and zeros bytes; a value either format cannot hold exactly would
// make the store disagree with the matrix it came from, so it is refused, not rounded.
absl::Status Unstorable(const char* what, float value, size_t p, int groups, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("bit planes: ", what, " ", value, " of row ",
                                                 p / static_cast<size_t>(groups), ", group ",
                                                 p % static_cast<size_t>(groups), " is not ", why));
}

absl::Status ToHalfBits(const std::vector<float>& values, int groups, std::vector<uint16_t>& out) {
  out.resize(values.size());
  for (size_t p = 0; p < values.size(); ++p) {
    out[p] = HalfBits(values[p]);
    if (HalfToFloat(out[p]) != values[p]) return Unstorable("scale", values[p], p, groups, "an fp16 value");
  }
  return absl::OkStatus();
}

absl::Status ToCodes(const std::vector<float>& values, int code_bits, int groups, std::vector<uint8_t>& out) {
  out.resize(values.size());
  const float max_code = static_cast<float>((1 << code_bits) - 1);
  for (size_t p = 0; p < values.size(); ++p) {
    if (!(values[p] >= 0.f && values[p] <= max_code) || values[p] != std::round(values[p])) {
      return Unstorable("zero", values[p], p, groups, absl::StrCat("a ", code_bits, "-bit code"));
    }
    out[p] = static_cast<uint8_t>(values[p]);
  }
  return absl::OkStatus();
}

// Rebuilds the top `level` bits of each row's code in one tile from the channel's run of
// `level` planes (most significant first). Works a byte (8 rows) at a time.
void GatherTops(std::span<const uint8_t> run, size_t plane_bytes, int level, uint8_t* tops) {
  std::fill(tops, tops + plane_bytes * 8, uint8_t{0});
  for (int j = 0; j < level; ++j) {
    const uint8_t* plane = run.data() + static_cast<size_t>(j) * plane_bytes;
    for (size_t y = 0; y < plane_bytes; ++y) {
      const unsigned byte = plane[y];
      uint8_t* out = tops + y * 8;
      for (unsigned i = 0; i < 8; ++i) {
        out[i] = static_cast<uint8_t>((out[i] << 1) | ((byte >> i) & 1u));
      }
    }
  }
}

// Calls visit(row, col, level, truncated_code) for every weight of a channel whose level
// is above 0. The only plane bytes read are view.ChannelLevel(t, k, levels[k]): a channel
// at level b costs b planes per tile, a channel at level 0 costs nothing.
template <typename Visit>
void VisitTruncatedCodes(const BitPlaneView& view, std::span<const int> levels, Visit visit) {
  const BitPlaneShape& s = view.shape;
  std::vector<uint8_t> tops(static_cast<size_t>(s.tile_rows));
  for (int t = 0; t < s.tiles(); ++t) {
    const int row0 = t * s.tile_rows;
    const int rows_here = std::min(s.tile_rows, s.rows - row0);  // the last tile is padded
    for (int k = 0; k < s.cols; ++k) {
      const int level = levels[static_cast<size_t>(k)];
      if (level == 0) continue;  // skipped channel: its planes are never touched
      GatherTops(view.ChannelLevel(t, k, level), s.plane_bytes(), level, tops.data());
      for (int i = 0; i < rows_here; ++i) {
        visit(row0 + i, k, level,
              static_cast<uint8_t>(tops[static_cast<size_t>(i)] << (s.code_bits - level)));
      }
    }
  }
}

}  // namespace


absl::Status BitPlaneShape::Validate() const {
  if (rows <= 0 || cols <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bit planes: shape ", rows, " x ", cols, " is not positive"));
  }
  if (tile_rows <= 0 || tile_rows % 8 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bit planes: tile_rows ", tile_rows, " is not a positive multiple of 8"));
  }
  if (code_bits < 1 || code_bits > kCodeBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("bit planes: code_bits ", code_bits, " is outside 1..", kCodeBits));
  }
  if (stored_planes < 1 || stored_planes > code_bits) {
    return absl::InvalidArgumentError(
        absl::StrCat("bit planes: stored_planes ", stored_planes, " is outside 1..", code_bits));
  }
  if (group_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bit planes: group_size ", group_size, " is not positive"));
  }
  return absl::OkStatus();
}

absl::StatusOr<BitPlaneView> MakeBitPlaneView(const BitPlaneShape& shape,
                                              std::span<const uint8_t> planes,
                                              std::span<const uint16_t> scales,
                                              std::span<const uint8_t> zeros) {
  if (absl::Status s = shape.Validate(); !s.ok()) return s;
  if (absl::Status s = CheckSize("planes", planes.size(), shape.planes_size()); !s.ok()) return s;
  if (absl::Status s = CheckSize("scales", scales.size(), shape.params_size()); !s.ok()) return s;
  if (absl::Status s = CheckSize("zeros", zeros.size(), shape.params_size()); !s.ok()) return s;
  return BitPlaneView{shape, planes.data(), scales.data(), zeros.data()};
}

absl::StatusOr<BitPlaneMatrix> PackBitPlanes(const quant::QuantizedMatrix& q, int tile_rows,
                                             int max_bits) {
  if (q.bits < 1 || q.bits > kCodeBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("bit planes: ", q.bits, "-bit codes: a store holds codes of 1..", kCodeBits, " bits"));
  }
  BitPlaneMatrix m;
  m.shape = {q.rows, q.cols, tile_rows, max_bits == 0 ? q.bits : max_bits, q.group_size, q.bits};
  const BitPlaneShape& s = m.shape;
  if (absl::Status st = s.Validate(); !st.ok()) return st;
  const size_t n = static_cast<size_t>(q.rows) * static_cast<size_t>(q.cols);
  if (absl::Status st = CheckSize("codes", q.codes.size(), n); !st.ok()) return st;
  if (absl::Status st = CheckSize("scales", q.scales.size(), s.params_size()); !st.ok()) return st;
  if (absl::Status st = CheckSize("zeros", q.zeros.size(), s.params_size()); !st.ok()) return st;

  if (absl::Status st = ToHalfBits(q.scales, s.groups(), m.scales); !st.ok()) return st;
  if (absl::Status st = ToCodes(q.zeros, q.bits, s.groups(), m.zeros); !st.ok()) return st;

  m.planes.assign(s.planes_size(), 0);  // padding rows stay zero codes
  for (int r = 0; r < q.rows; ++r) {
    const int t = r / tile_rows;
    const int i = r % tile_rows;  // row within the tile: byte i/8, bit i%8 of each plane
    for (int k = 0; k < q.cols; ++k) {
      const unsigned code = q.codes[static_cast<size_t>(r) * static_cast<size_t>(q.cols) + k];
      uint8_t* run = m.planes.data() + s.ChannelOffset(t, k);
      for (int j = 0; j < s.stored_planes; ++j) {
        const unsigned bit = (code >> (q.bits - 1 - j)) & 1u;
        run[static_cast<size_t>(j) * s.plane_bytes() + static_cast<size_t>(i / 8)] |=
            static_cast<uint8_t>(bit << (i % 8));
      }
    }
  }
  return m;
}

absl::StatusOr<std::vector<uint8_t>> UnpackCodes(const BitPlaneView& view, int level) {
  const std::vector<int> levels(static_cast<size_t>(std::max(view.shape.cols, 0)), level);
  if (absl::Status s = CheckLevels(view.shape, levels); !s.ok()) return s;
  std::vector<uint8_t> codes(
      static_cast<size_t>(view.shape.rows) * static_cast<size_t>(view.shape.cols), 0);
  const size_t cols = static_cast<size_t>(view.shape.cols);
  VisitTruncatedCodes(view, levels, [&](int r, int k, int, uint8_t code) {
    codes[static_cast<size_t>(r) * cols + static_cast<size_t>(k)] = code;
  });
  return codes;
}

absl::StatusOr<std::vector<float>> DequantizeLevels(const BitPlaneView& view,
                                                    std::span<const int> levels) {
  if (absl::Status s = CheckLevels(view.shape, levels); !s.ok()) return s;
  const BitPlaneShape& s = view.shape;
  const size_t cols = static_cast<size_t>(s.cols);
  const size_t groups = static_cast<size_t>(s.groups());
  std::vector<float> out(static_cast<size_t>(s.rows) * cols, 0.f);
  VisitTruncatedCodes(view, levels, [&](int r, int k, int level, uint8_t code) {
    const size_t p = static_cast<size_t>(r) * groups + static_cast<size_t>(k / s.group_size);
    // TruncatedCode re-centres the kept prefix: the same arithmetic as the reference.
    out[static_cast<size_t>(r) * cols + static_cast<size_t>(k)] =
        HalfToFloat(view.scales[p]) *
        (quant::TruncatedCode(code, s.code_bits, level) - static_cast<float>(view.zeros[p]));
  });
  return out;
}

absl::StatusOr<std::vector<float>> DequantizeLevel(const BitPlaneView& view, int level) {
  const std::vector<int> levels(static_cast<size_t>(std::max(view.shape.cols, 0)), level);
  return DequantizeLevels(view, levels);
}

}  // namespace grinqh
