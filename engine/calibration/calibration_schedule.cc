#include "engine/calibration/calibration_schedule.h"

#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/backends/cpu/bit_plane_matvec.h"
#include "engine/backends/cpu/cpu_backend.h"
#include "engine/backends/cpu/cpu_ops.h"
#include "engine/calibration/evaluation.h"
#include "engine/quant/grading.h"
#include "engine/quant/grading_schedule.h"
#include "engine/quant/quant.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

size_t Index(int row, int width) { return static_cast<size_t>(row) * static_cast<size_t>(width); }

double SquaredDistance(const float* a, const float* b, int n) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return sum;
}

// Every linear layer reading the input of (layer, site), as indices into LinearLayers.
std::map<std::pair<int, LinearSite>, std::vector<size_t>> LayersBySite(const std::vector<LinearLayerRef>& linears) {
  std::map<std::pair<int, LinearSite>, std::vector<size_t>> by_site;
  for (size_t i = 0; i < linears.size(); ++i) by_site[{linears[i].layer, linears[i].site}].push_back(i);
  return by_site;
}

// Pass 1: E_l(b) on rows sampled from every window, graded and multiplied as decode does.
class ErrorCurves {
 public:
  ErrorCurves(const std::vector<LinearLayerRef>& linears, std::span<const PlaneWeights* const> nested,
              const std::vector<float>& grid, int stride, ThreadPool& pool)
      : linears_(linears), nested_(nested), grid_(grid), stride_(stride), pool_(pool),
        by_site_(LayersBySite(linears)), sums_(linears.size(), std::vector<double>(grid.size(), 0.0)),
        rows_(linears.size(), 0) {}

  void SetWindow(int window) { phase_ = (window * 37) % stride_; }  // vary the sampled positions

  void Observe(int layer, LinearSite site, const float* x, int rows, int cols) {
    const auto it = by_site_.find({layer, site});
    if (it == by_site_.end()) return;
    sampled_.clear();
    for (int r = phase_ % std::max(rows, 1); r < rows; r += stride_) {
      sampled_.insert(sampled_.end(), x + Index(r, cols), x + Index(r + 1, cols));
    }
    const int n = static_cast<int>(sampled_.size() / static_cast<size_t>(cols));
    if (n == 0) return;
    for (size_t i : it->second) Measure(i, n, cols);
  }

  std::vector<double> Curve(size_t i) const {
    std::vector<double> curve = sums_[i];
    for (double& e : curve) e /= double(std::max<int64_t>(rows_[i], 1));
    return curve;
  }
  int64_t rows(size_t i) const { return rows_[i]; }

 private:
  void Measure(size_t i, int n, int cols) {
    const Matrix& w = *linears_[i].weights->dense();
    const PlaneWeights& nested = *nested_[i];
    const int out = w.rows;
    reference_.resize(Index(n, out));
    cpu::MatMul(pool_, sampled_.data(), n, w, reference_.data());
    const int levels = static_cast<int>(grid_.size());
    errors_.assign(Index(n, levels), 0.0);
    pool_.ParallelFor(int64_t{n} * levels, [&](int64_t begin, int64_t end) {
      thread_local std::vector<uint8_t> graded;
      thread_local std::vector<float> y;
      graded.resize(static_cast<size_t>(cols));
      y.resize(static_cast<size_t>(out));
      for (int64_t task = begin; task < end; ++task) {
        const int row = static_cast<int>(task / levels), level = static_cast<int>(task % levels);
        const std::span<const float> x(sampled_.data() + Index(row, cols), static_cast<size_t>(cols));
        GradeRow(x, nested.channel_scale, grid_[static_cast<size_t>(level)], nested.max_level(), graded);
        cpu::BitPlaneMatVec(nested.planes, x.data(), graded.data(), y.data());
        errors_[static_cast<size_t>(task)] = SquaredDistance(y.data(), reference_.data() + Index(row, out), out);
      }
    });
    for (int row = 0; row < n; ++row) {
      for (size_t level = 0; level < grid_.size(); ++level) sums_[i][level] += errors_[Index(row, levels) + level];
    }
    rows_[i] += n;
  }

  const std::vector<LinearLayerRef>& linears_;
  std::span<const PlaneWeights* const> nested_;
  const std::vector<float>& grid_;
  const int stride_;
  ThreadPool& pool_;
  const std::map<std::pair<int, LinearSite>, std::vector<size_t>> by_site_;
  std::vector<std::vector<double>> sums_;
  std::vector<int64_t> rows_;
  int phase_ = 0;
  std::vector<float> sampled_, reference_;
  std::vector<double> errors_;
};

std::vector<float> Grid(float from, float to, float step) {
  std::vector<float> grid;
  for (int i = 0;; ++i) {
    const float v = from + static_cast<float>(i) * step;
    if (v > to + 1e-6f) break;
    grid.push_back(v);
  }
  return grid;
}

// Pass 2: per layer, KL(reference ‖ model with only that layer's weights replaced by the
// probe) and the probe's output error ‖(W − W_probe) x‖² on the same rows.
absl::Status MeasureSensitivity(CpuBackend& backend, const std::vector<LinearLayerRef>& linears,
                                std::span<const PlaneWeights* const> nested,
                                std::span<const std::vector<int32_t>> windows, int probe_bits, ThreadPool& pool,
                                std::vector<LayerFit>& fits, const ProgressFn& progress) {
  const ModelConfig& config = backend.config();
  const auto forward = [&](std::span<const int32_t> tokens, std::vector<float>& logits) {
    auto cache = backend.NewCache();
    const ForwardItem item{cache.get(), tokens, Logits::kAll};
    return backend.Forward({&item, 1}, logits);
  };
  std::vector<float> reference, logits, delta, delta_y;
  std::vector<EvalStats> stats(linears.size());
  std::vector<int64_t> rows_seen(linears.size(), 0);
  for (size_t w = 0; w < windows.size(); ++w) {
    backend.SetLinearInputObserver(nullptr);
    GRINQH_RETURN_IF_ERROR(forward(windows[w], reference));
    for (size_t i = 0; i < linears.size(); ++i) {
      Matrix& m = std::get<Matrix>(linears[i].weights->stored);  // the reference is dense
      const Matrix original = m;
      delta = WidenToFloat(original);  // the exact weights, until the probe is subtracted
      const std::vector<float> probe =
          quant::QuantizeRtn(delta, m.rows, m.cols, probe_bits, nested[i]->planes.shape.group_size).Dequantize();
      for (size_t j = 0; j < delta.size(); ++j) delta[j] -= probe[j];
      const Matrix delta_matrix = FloatMatrix(delta, m.rows, m.cols);
      // Layers before this one are exact, so its input here is the reference model's.
      backend.SetLinearInputObserver([&](int layer, LinearSite site, const float* x, int rows, int) {
        if (layer != linears[i].layer || site != linears[i].site) return;
        delta_y.resize(Index(rows, delta_matrix.rows));
        cpu::MatMul(pool, x, rows, delta_matrix, delta_y.data());
        for (float v : delta_y) fits[i].probe_error += double(v) * v;
        rows_seen[i] += rows;
      });
      m = FloatMatrix(probe, m.rows, m.cols);
      const absl::Status status = forward(windows[w], logits);
      m = original;
      GRINQH_RETURN_IF_ERROR(status);
      ScoreWindow(reference, logits, windows[w], config.vocab_size, stats[i]);
      if (progress) {
        const double done = double(w * linears.size() + i + 1) / double(windows.size() * linears.size());
        progress("schedules: sensitivity", done);
      }
    }
  }
  backend.SetLinearInputObserver(nullptr);
  for (size_t i = 0; i < linears.size(); ++i) {
    LayerFit& l = fits[i];
    l.probe_error /= double(std::max<int64_t>(rows_seen[i], 1));
    l.probe_kld = stats[i].kld();
    l.sensitivity = l.probe_error > 0 ? l.probe_kld / l.probe_error : 0.0;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ScheduleFit> FitSchedules(const Model& reference, std::span<const PlaneWeights* const> nested,
                                         std::span<const std::vector<int32_t>> windows,
                                         const ScheduleFitOptions& options, const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& config = reference.config();
  ModelWeights weights = reference.weights();  // views; the probes replace one matrix at a time
  const std::vector<LinearLayerRef> linears = LinearLayers(weights, config);
  if (nested.size() != linears.size()) {
    return absl::InvalidArgumentError(absl::StrCat("FitSchedules: ", nested.size(), " nested stores for ",
                                                   linears.size(), " linear layers"));
  }
  if (windows.empty()) return absl::InvalidArgumentError("schedules need calibration text (no full window in it)");
  for (const LinearLayerRef& l : linears) {
    if (l.weights->dense() == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("FitSchedules: the reference's layer \"", l.name,
                                                     "\" is quantized; fit schedules on the unquantized model"));
    }
  }
  if (!(options.budget_step > 0) || !(options.target_step > 0) || options.sample_stride < 1) {
    return absl::InvalidArgumentError("FitSchedules: steps and stride must be positive");
  }
  int max_level = 8;
  for (const PlaneWeights* n : nested) max_level = std::min(max_level, n->max_level());
  ScheduleFit fit;
  fit.grid = Grid(options.budget_step, static_cast<float>(max_level), options.budget_step);
  fit.model_targets = Grid(options.min_target, static_cast<float>(max_level), options.target_step);
  if (fit.model_targets.empty()) fit.model_targets = {static_cast<float>(max_level)};
  fit.windows = static_cast<int>(windows.size());

  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend,
                          CpuBackend::Create(config, weights, options.num_threads));
  ThreadPool pool(options.num_threads);
  std::vector<float> logits;

  // Pass 1: error curves (all logits, so the LM head sees every row too).
  ErrorCurves curves(linears, nested, fit.grid, options.sample_stride, pool);
  backend->SetLinearInputObserver([&](int layer, LinearSite site, const float* x, int rows, int cols) {
    curves.Observe(layer, site, x, rows, cols);
  });
  for (size_t w = 0; w < windows.size(); ++w) {
    curves.SetWindow(static_cast<int>(w));
    auto cache = backend->NewCache();
    const ForwardItem item{cache.get(), windows[w], Logits::kAll};
    GRINQH_RETURN_IF_ERROR(backend->Forward({&item, 1}, logits));
    if (progress) progress("schedules: error curves", double(w + 1) / double(windows.size()));
  }
  fit.layers.resize(linears.size());
  for (size_t i = 0; i < linears.size(); ++i) {
    fit.layers[i].name = linears[i].name;
    fit.layers[i].weights = int64_t{linears[i].weights->rows()} * linears[i].weights->cols();
    fit.layers[i].error = curves.Curve(i);
  }
  fit.rows_sampled = curves.rows(0);

  // Pass 2: sensitivity probes, one layer at a time against the unperturbed model.
  if (options.use_sensitivity) {
    fit.sensitivity_windows = std::min<int>(options.sensitivity_windows, static_cast<int>(windows.size()));
    GRINQH_RETURN_IF_ERROR(MeasureSensitivity(*backend, linears, nested, windows.first(size_t(fit.sensitivity_windows)),
                                              options.probe_bits, pool, fit.layers, progress));
  }
  backend->SetLinearInputObserver(nullptr);

  std::vector<LayerCost> costs;
  for (const LayerFit& l : fit.layers) {
    LayerCost& c = costs.emplace_back();
    c.weights = l.weights;
    for (double e : l.error) c.cost.push_back(l.sensitivity * e);
  }
  GRINQH_ASSIGN_OR_RETURN(const auto budgets, AllocateBudgets(costs, fit.grid, fit.model_targets));
  for (size_t i = 0; i < fit.layers.size(); ++i) {
    for (const std::vector<float>& per_target : budgets) fit.layers[i].budgets.push_back(per_target[i]);
  }
  fit.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return fit;
}

}  // namespace grinqh
