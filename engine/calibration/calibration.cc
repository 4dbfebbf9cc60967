#include "engine/calibration/calibration.h"

#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "engine/quant/awq.h"
#include "engine/base/file_util.h"
#include "engine/quant/gptq.h"
#include "engine/quant/grading.h"
#include "engine/quant/grading_schedule.h"
#include "engine/base/half.h"
#include "engine/quant/quant.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

// Runs the calibration windows through the backend, all logits only when the LM head's
// inputs are wanted (otherwise only the last row reaches it).
absl::Status RunCalibration(Backend& backend, std::span<const std::vector<int32_t>> windows, bool all_logits,
                            const ProgressFn& progress, const std::string& stage) {
  std::vector<float> logits;
  for (size_t i = 0; i < windows.size(); ++i) {
    auto cache = backend.NewCache();
    const ForwardItem item{cache.get(), windows[i], all_logits ? Logits::kAll : Logits::kLast};
    GRINQH_RETURN_IF_ERROR(backend.Forward({&item, 1}, logits));
    if (progress) progress(stage, double(i + 1) / double(windows.size()));
  }
  return absl::OkStatus();
}

// Every kAwqSampleStride-th calibration row is kept for AWQ's search: it measures output
// error on these rows, and a few thousand are plenty (as in the reference code).
constexpr int kAwqSampleStride = 8;

}  // namespace

std::vector<uint16_t> ColumnNormsF16(std::span<const float> weights, int rows, int cols) {
  std::vector<double> sums(static_cast<size_t>(cols), 0.0);
  for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {
    for (size_t c = 0; c < static_cast<size_t>(cols); ++c) {
      const double w = weights[r * static_cast<size_t>(cols) + c];
      sums[c] += w * w;
    }
  }
  std::vector<uint16_t> norms(sums.size());
  for (size_t c = 0; c < sums.size(); ++c) norms[c] = HalfBits(static_cast<float>(std::sqrt(sums[c])));
  return norms;
}

namespace {

// E_k(b), the squared error of column k read at level b against `weights`: [(max_level+1) × cols].
std::vector<double> ColumnErrors(std::span<const float> weights, const quant::QuantizedMatrix& q, int max_level) {
  const size_t rows = static_cast<size_t>(q.rows), cols = static_cast<size_t>(q.cols);
  std::vector<double> error((static_cast<size_t>(max_level) + 1) * cols, 0.0);
  for (int b = 0; b <= max_level; ++b) {
    const std::vector<float> w_b = q.DequantizeLevel(b);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) {
        const double d = double(weights[r * cols + c]) - w_b[r * cols + c];
        error[static_cast<size_t>(b) * cols + c] += d * d;
      }
    }
  }
  return error;
}

// A level above the lower convex hull of (b, E(b)) is never worth its bits on its own
// (level 1 often errs more than skipping: it reconstructs near-zero weights at ±range/4),
// so every level gets the slope of the hull segment it lies on: the gains then fall with
// depth, and a threshold takes whole segments. error[b] for b = 0..m; slopes for 1..m.
void HullSlopes(std::span<const double> error, float* slopes) {
  std::vector<float> levels(error.size());
  std::iota(levels.begin(), levels.end(), 0.f);
  const std::vector<size_t> hull = LowerHull(levels, error);
  for (size_t h = 1; h < hull.size(); ++h) {
    const size_t from = hull[h - 1], to = hull[h];
    const double slope = (error[from] - error[to]) / double(to - from);
    for (size_t b = from + 1; b <= to; ++b) slopes[b - 1] = static_cast<float>(slope);
  }
}

}  // namespace

std::vector<float> LevelGains(std::span<const float> weights, const quant::QuantizedMatrix& q, int max_level) {
  const size_t cols = static_cast<size_t>(q.cols), m = static_cast<size_t>(max_level);
  const std::vector<double> error = ColumnErrors(weights, q, max_level);
  std::vector<float> gains(cols * m);
  std::vector<double> curve(m + 1);
  for (size_t c = 0; c < cols; ++c) {
    for (size_t b = 0; b <= m; ++b) curve[b] = error[b * cols + c];
    HullSlopes(curve, &gains[c * m]);
  }
  return gains;
}

std::vector<float> LevelThresholds(std::span<const float> weights, const quant::QuantizedMatrix& q, int max_level) {
  const size_t cols = static_cast<size_t>(q.cols), m = static_cast<size_t>(max_level);
  const std::vector<double> error = ColumnErrors(weights, q, max_level);
  // The layer's error curve relative to skipping, averaged over its columns.
  std::vector<double> relative(m + 1, 0.0);
  size_t counted = 0;
  for (size_t c = 0; c < cols; ++c) {
    if (!(error[c] > 0)) continue;  // an all-zero column: nothing to learn from
    for (size_t b = 0; b <= m; ++b) relative[b] += error[b * cols + c] / error[c];
    ++counted;
  }
  std::vector<float> thresholds(m);
  if (counted == 0) {  // an all-zero matrix: plain rounding (nothing is read anyway)
    for (size_t b = 0; b < m; ++b) thresholds[b] = static_cast<float>(b) + 0.5f;
    return thresholds;
  }
  std::vector<float> slopes(m);
  HullSlopes(relative, slopes.data());
  // Level b pays off when x_k² c_k² · slope_b ≥ λ, i.e. log2 s_k − ½ log2 λ ≥ −½ log2 slope_b.
  // A level that gains nothing gets a finite but unreachable-in-practice threshold, so the
  // table stays finite and ascending (the slopes of a hull only fall).
  for (size_t b = 0; b < m; ++b) thresholds[b] = -0.5f * std::log2(std::max(slopes[b], 1e-30f));
  return thresholds;
}

std::vector<std::vector<int32_t>> MakeWindows(std::span<const int32_t> ids, int length, int max_windows) {
  std::vector<std::vector<int32_t>> windows;
  for (size_t start = 0; start + static_cast<size_t>(length) <= ids.size() &&
                         static_cast<int>(windows.size()) < max_windows;
       start += static_cast<size_t>(length)) {
    windows.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(start),
                         ids.begin() + static_cast<std::ptrdiff_t>(start) + length);
  }
  return windows;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> TextWindows(const Model& model, const std::filesystem::path& path,
                                                              int length, int max_windows) {
  if (model.tokenizer() == nullptr) return absl::FailedPreconditionError("the model has no tokenizer");
  GRINQH_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return MakeWindows(model.tokenizer()->Encode(text, /*add_special_tokens=*/false), length, max_windows);
}

std::string BaselineOptions::Name() const {
  if (method != "grinqh") return absl::StrCat(method, "-", bits);
  return absl::StrCat(method, grading == "statistic" ? "" : "-" + grading, "-", bits);
}

// The views stay valid as storage_ grows: moving a vector keeps its heap buffer.
void QuantizedVariant::Replace(LinearWeights& layer, std::vector<float> values) {
  const int rows = layer.rows(), cols = layer.cols();
  storage_.push_back(std::move(values));
  layer.stored = FloatMatrix(storage_.back(), rows, cols);
  backend_.reset();  // it prepared the layer as it was
}

absl::Status QuantizedVariant::MakeBackend() {
  if (backend_) return absl::OkStatus();
  GRINQH_ASSIGN_OR_RETURN(backend_, CpuBackend::Create(config_, weights_, num_threads_));
  if (options_.grading == "statistic") return absl::OkStatus();
  // Research grading rules read tables of their own, kept here rather than in the weights.
  backend_->SetRowGrader([this](const PlaneWeights& w, std::span<const float> x, float target, std::span<uint8_t> levels) {
    const std::vector<float>& table = grading_tables_.at(w.planes.planes);
    if (options_.grading == "gains") {
      GradeRowByGains(x, table, target, w.max_level(), levels);
    } else {
      GradeRow(x, w.channel_scale, target, w.max_level(), levels, table);
    }
  });
  return absl::OkStatus();
}

size_t QuantizedVariant::grading_table_bytes() const {
  size_t bytes = 0;
  for (const auto& [planes, table] : grading_tables_) bytes += table.size() * sizeof(float);
  return bytes;
}

absl::StatusOr<NestedStore> QuantizeNested(std::span<const float> weights, int rows, int cols, int group_size,
                                           int max_bits) {
  NestedStore store;
  store.codes = quant::QuantizeRtn(weights, rows, cols, kCodeBits, group_size);
  GRINQH_ASSIGN_OR_RETURN(store.planes, PackBitPlanes(store.codes, GrinqhTileRows(rows), max_bits));
  store.full_depth = store.codes.DequantizeLevel(max_bits);
  store.channel_scale = ColumnNormsF16(store.full_depth, rows, cols);
  return store;
}

absl::Status QuantizedVariant::MakeNested(LinearWeights& layer) {
  const std::vector<float> weights = layer.ToFloat();
  GRINQH_ASSIGN_OR_RETURN(NestedStore store,
                          QuantizeNested(weights, layer.rows(), layer.cols(), options_.group_size, options_.bits));
  planes_.push_back(std::make_unique<BitPlaneMatrix>(std::move(store.planes)));
  channel_scales_.push_back(std::move(store.channel_scale));
  PlaneWeights nested;
  nested.planes = planes_.back()->view();
  nested.channel_scale = channel_scales_.back();
  const quant::QuantizedMatrix& q = store.codes;
  if (options_.grading == "gains") grading_tables_[nested.planes.planes] = LevelGains(weights, q, options_.bits);
  if (options_.grading == "curve") grading_tables_[nested.planes.planes] = LevelThresholds(weights, q, options_.bits);
  layer.stored = nested;  // the CPU backend widens it to fp32 for ungraded rows
  backend_.reset();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<QuantizedVariant>> QuantizedVariant::Create(
    const Model& base, const BaselineOptions& options, std::span<const std::vector<int32_t>> calibration,
    const ProgressFn& progress, const QuantizedLayerSink& sink) {
  if (options.method != "rtn" && options.method != "gptq" && options.method != "awq" && options.method != "grinqh") {
    return absl::InvalidArgumentError(absl::StrCat("unknown quantization method '", options.method,
                                                   "' (rtn, gptq, awq or grinqh)"));
  }
  if (options.bits < 1 || options.bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("bits must be in [1, 8], got ", options.bits));
  }
  if (options.group_size < 1) return absl::InvalidArgumentError("group size must be positive");
  if (options.grading != "statistic" && options.grading != "gains" && options.grading != "curve") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown grading '", options.grading, "' (statistic, gains or curve)"));
  }
  if ((options.method == "gptq" || options.method == "awq") && calibration.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(options.method, " needs calibration text"));
  }
  std::unique_ptr<QuantizedVariant> v(new QuantizedVariant());
  v->options_ = options;
  v->sink_ = sink;
  v->config_ = base.config();
  v->weights_ = base.weights();
  v->num_threads_ = base.options().num_threads;
  for (int layer = 0; layer <= v->config_.num_layers; ++layer) {
    GRINQH_RETURN_IF_ERROR(v->QuantizeLayers(layer, calibration, progress));
  }
  GRINQH_RETURN_IF_ERROR(v->MakeBackend());
  return v;
}

// Quantizes the linear layers of decoder layer `layer` (num_layers: the LM head), with
// calibration statistics gathered on the model as quantized so far.
absl::Status QuantizedVariant::QuantizeLayers(int layer, std::span<const std::vector<int32_t>> calibration,
                                              const ProgressFn& progress) {
  std::vector<LinearLayerRef> targets;
  for (const LinearLayerRef& ref : LinearLayers(weights_, config_)) {
    if (ref.layer == layer) targets.push_back(ref);
  }
  const std::string stage = layer < config_.num_layers ? absl::StrCat("layer ", layer) : std::string("lm_head");

  if (options_.method == "grinqh") {
    for (const LinearLayerRef& t : targets) GRINQH_RETURN_IF_ERROR(MakeNested(*t.weights));
    if (progress) progress(stage, 1.0);
    return absl::OkStatus();
  }
  if (options_.method == "rtn") {
    for (const LinearLayerRef& t : targets) {
      const quant::QuantizedMatrix q =
          quant::QuantizeRtn(t.weights->ToFloat(), t.weights->rows(), t.weights->cols(), options_.bits, options_.group_size);
      if (sink_) GRINQH_RETURN_IF_ERROR(sink_(t, q, {}));
      Replace(*t.weights, q.Dequantize());
    }
    if (progress) progress(stage, 1.0);
    return absl::OkStatus();
  }

  // Gather, per input site of this layer, what the method needs: a Hessian (GPTQ) or a
  // subsample of input rows (AWQ).
  std::map<LinearSite, HessianAccumulator> hessians;
  std::map<LinearSite, std::vector<float>> samples;
  std::map<LinearSite, int> sample_cols;
  GRINQH_RETURN_IF_ERROR(MakeBackend());
  backend_->SetLinearInputObserver([&](int l, LinearSite site, const float* x, int rows, int cols) {
    if (l != layer) return;
    if (options_.method == "gptq") {
      hessians.try_emplace(site, cols).first->second.Add(x, rows);
    } else {
      std::vector<float>& s = samples[site];
      sample_cols[site] = cols;
      for (int r = 0; r < rows; r += kAwqSampleStride) {
        s.insert(s.end(), x + static_cast<size_t>(r) * static_cast<size_t>(cols),
                 x + static_cast<size_t>(r + 1) * static_cast<size_t>(cols));
      }
    }
  });
  backend_->SetLayerLimit(layer + 1);
  const absl::Status run = RunCalibration(*backend_, calibration, layer == config_.num_layers, progress,
                                          absl::StrCat(stage, ": calibrating"));
  backend_->SetLinearInputObserver(nullptr);
  backend_->SetLayerLimit(config_.num_layers);
  GRINQH_RETURN_IF_ERROR(run);

  if (options_.method == "gptq") {
    GptqOptions gptq;
    gptq.bits = options_.bits;
    gptq.group_size = options_.group_size;
    for (const LinearLayerRef& t : targets) {
      const std::vector<double>& h = hessians.at(t.site).hessian();
      const quant::QuantizedMatrix q = QuantizeGptq(t.weights->ToFloat(), t.weights->rows(), t.weights->cols(), h, gptq);
      if (sink_) GRINQH_RETURN_IF_ERROR(sink_(t, q, {}));
      Replace(*t.weights, q.Dequantize());
    }
  } else {
    GRINQH_RETURN_IF_ERROR(QuantizeAwqSites(targets, samples, sample_cols));
  }
  if (progress) progress(absl::StrCat(stage, ": quantized"), 1.0);
  return absl::OkStatus();
}

absl::Status QuantizedVariant::QuantizeAwqSites(const std::vector<LinearLayerRef>& targets,
                                                const std::map<LinearSite, std::vector<float>>& samples,
                                                const std::map<LinearSite, int>& sample_cols) {
  AwqOptions awq;
  awq.bits = options_.bits;
  awq.group_size = options_.group_size;
  for (const auto& [site, inputs] : samples) {
    // The layers reading this site's input share one search, as in the reference.
    std::vector<const LinearLayerRef*> group;
    std::vector<std::vector<float>> weights;
    std::vector<AwqLayer> layers;
    for (const LinearLayerRef& t : targets) {
      if (t.site != site) continue;
      group.push_back(&t);
      weights.push_back(t.weights->ToFloat());
    }
    for (size_t i = 0; i < group.size(); ++i) {
      // q and k meet in q·kᵀ, where a per-layer output error misjudges clipping.
      const bool qk = group[i]->name.find("q_proj") != std::string::npos ||
                      group[i]->name.find("k_proj") != std::string::npos;
      layers.push_back({weights[i].data(), group[i]->weights->rows(), !qk});
    }
    const int cols = sample_cols.at(site);
    const int n = static_cast<int>(inputs.size() / static_cast<size_t>(cols));
    const AwqResult result = QuantizeAwq(layers, cols, inputs, n, awq);
    if (result.layers.size() != group.size()) return absl::InternalError("AWQ quantized nothing (malformed inputs)");
    for (size_t i = 0; i < group.size(); ++i) {
      if (sink_) GRINQH_RETURN_IF_ERROR(sink_(*group[i], result.layers[i], result.input_scales));
      Replace(*group[i]->weights, AwqEffectiveWeights(result.layers[i], result.input_scales));
    }
  }
  return absl::OkStatus();
}

}  // namespace grinqh
