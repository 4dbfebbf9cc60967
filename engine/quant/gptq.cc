#include "engine/quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <thread>

#include "engine/base/thread_pool.h"

namespace grinqh {
namespace {

using quant::ChooseGroupParams;
using quant::GroupParams;
using quant::QuantizedMatrix;
using quant::QuantizeRtn;
using quant::QuantizeValue;

using quant::At;

// ---------------------------------------------------------------------------------------
// Hessian accumulation: Σ x xᵀ is a syrk. Each chunk of inputs is repacked into panels of
// kTileJ columns (rows contiguous inside a panel) so the kernel streams memory linearly,
// and a kTileI × kTileJ tile of the sum stays in registers while the chunk's rows pass:
// each loaded vector feeds kTileI FMAs.
constexpr int kTileI = 4;
#ifdef __AVX512F__
constexpr int kTileJ = 32;  // 4 × 2 zmm accumulators
#else
constexpr int kTileJ = 16;  // 4 × 2 ymm: keeps AVX2's 16 registers from spilling
#endif
// Rows summed in float before being folded into the double total: short enough that float
// round-off stays near 1e-6 relative and a packed chunk fits in L2, long enough that the
// O(cols²) fold is a few percent of the O(rows · cols²) sum.
constexpr int kChunkRows = 128;

// sum[i0 + a, j0 + b] = Σ_t x[t, i0 + a] · x[t, j0 + b], from the packed panels.
void SyrkTile(const float* panels, int rows, int i0, int j0, float* sum, int stride) {
  const size_t panel_size = static_cast<size_t>(rows) * kTileJ;
  const float* xi = panels + static_cast<size_t>(i0 / kTileJ) * panel_size + i0 % kTileJ;
  const float* xj = panels + static_cast<size_t>(j0 / kTileJ) * panel_size;
  float acc[kTileI][kTileJ] = {};
  for (int t = 0; t < rows; ++t) {
    const float* ri = xi + At(t, 0, kTileJ);
    const float* rj = xj + At(t, 0, kTileJ);
    for (int a = 0; a < kTileI; ++a) {
#pragma omp simd
      for (int b = 0; b < kTileJ; ++b) acc[a][b] += ri[a] * rj[b];
    }
  }
  for (int a = 0; a < kTileI; ++a) std::copy(acc[a], acc[a] + kTileJ, sum + At(i0 + a, j0, stride));
}

}  // namespace

HessianAccumulator::HessianAccumulator(int cols, int threads)
    : cols_(std::max(cols, 0)),
      padded_((cols_ + kTileJ - 1) / kTileJ * kTileJ),
      threads_(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      hessian_(static_cast<size_t>(cols_) * static_cast<size_t>(cols_), 0.0) {}

void HessianAccumulator::Add(const float* x, int rows) {
  if (rows <= 0 || cols_ == 0) return;
  // Threads only pay off for a few million FMAs or more (single decode-size rows do not).
  const int64_t work = static_cast<int64_t>(rows) * padded_ * padded_ / 2;
  std::optional<ThreadPool> pool;
  if (threads_ > 1 && work > (int64_t{1} << 22)) pool.emplace(threads_);
  for (int start = 0; start < rows; start += kChunkRows) {
    AddChunk(x + At(start, 0, cols_), std::min(kChunkRows, rows - start), pool ? &*pool : nullptr);
  }
  // Only the upper triangle was updated; mirror it so callers see a full matrix.
  for (int i = 0; i < cols_; ++i) {
    for (int j = 0; j < i; ++j) hessian_[At(i, j, cols_)] = hessian_[At(j, i, cols_)];
  }
}

void HessianAccumulator::AddChunk(const float* x, int rows, ThreadPool* pool) {
  const int p = padded_;
  const size_t panel_size = static_cast<size_t>(rows) * kTileJ;
  x_padded_.assign(panel_size * static_cast<size_t>(p / kTileJ), 0.f);
  for (int t = 0; t < rows; ++t) {
    for (int c = 0; c < cols_; ++c) x_padded_[(c / kTileJ) * panel_size + At(t, c % kTileJ, kTileJ)] = x[At(t, c, cols_)];
  }
  chunk_sum_.resize(static_cast<size_t>(p) * static_cast<size_t>(p));
  // One work item per panel of output columns (its tiles on or above the diagonal), the
  // widest first so the dynamic split ends evenly. The column panel stays in L1 meanwhile.
  const int panels = p / kTileJ;
  auto column_panels = [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int j0 = (panels - 1 - static_cast<int>(k)) * kTileJ;
      for (int i0 = 0; i0 < j0 + kTileJ; i0 += kTileI) SyrkTile(x_padded_.data(), rows, i0, j0, chunk_sum_.data(), p);
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(panels, column_panels);
  } else {
    column_panels(0, panels);
  }
  // Running average as the reference keeps it: H ← H · n_old/n_new + 2/n_new · Σ x xᵀ.
  const int64_t total = samples_ + rows;
  const double keep = static_cast<double>(samples_) / static_cast<double>(total);
  const double add = 2.0 / static_cast<double>(total);
  for (int i = 0; i < cols_; ++i) {
    for (int j = i; j < cols_; ++j) {
      double& h = hessian_[At(i, j, cols_)];
      h = h * keep + add * static_cast<double>(chunk_sum_[At(i, j, p)]);
    }
  }
  samples_ = total;
}

namespace {

// ---------------------------------------------------------------------------------------
// Dense linear algebra in double, row-major n × n, lower triangles. Row-oriented loops so
// every inner loop runs over contiguous memory and vectorizes.

double Dot(const double* a, const double* b, int n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

// a = L Lᵀ in place (Cholesky–Banachiewicz); the upper triangle is zeroed. False when a
// pivot is not positive and finite, i.e. a is not numerically positive definite.
bool CholeskyLower(std::vector<double>& a, int n) {
  for (int i = 0; i < n; ++i) {
    double* ri = &a[At(i, 0, n)];
    for (int j = 0; j <= i; ++j) {
      const double* rj = &a[At(j, 0, n)];
      const double s = ri[j] - Dot(ri, rj, j);
      if (j < i) {
        ri[j] = s / rj[j];
      } else if (s > 0 && std::isfinite(s)) {
        ri[i] = std::sqrt(s);
      } else {
        return false;
      }
    }
    std::fill(ri + i + 1, ri + n, 0.0);
  }
  return true;
}

// L⁻¹, row by row: row i = (e_i − Σ_{k<i} L_ik · row k of L⁻¹) / L_ii.
std::vector<double> InvertLower(const std::vector<double>& l, int n) {
  std::vector<double> inv(l.size(), 0.0);
  for (int i = 0; i < n; ++i) {
    double* ri = &inv[At(i, 0, n)];
    ri[i] = 1.0;
    for (int k = 0; k < i; ++k) {
      const double lik = l[At(i, k, n)];
      const double* rk = &inv[At(k, 0, n)];
#pragma omp simd
      for (int c = 0; c <= k; ++c) ri[c] -= lik * rk[c];
    }
    const double d = l[At(i, i, n)];
    for (int c = 0; c <= i; ++c) ri[c] /= d;
  }
  return inv;
}

// Lower triangle of Mᵀ M for lower-triangular M: (Mᵀ M)_ij = Σ_{k ≥ i} M_ki M_kj (j ≤ i),
// a dot product of rows i and j of Mᵀ over k ≥ i, both contiguous once M is transposed.
std::vector<double> LowerGramOfLower(const std::vector<double>& m, int n) {
  std::vector<double> mt(m.size(), 0.0);
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i <= k; ++i) mt[At(i, k, n)] = m[At(k, i, n)];
  }
  std::vector<double> g(m.size(), 0.0);
  for (int i = 0; i < n; ++i) {
    const double* ti = &mt[At(i, i, n)];
    for (int j = 0; j <= i; ++j) g[At(i, j, n)] = Dot(ti, &mt[At(j, i, n)], n - i);
  }
  return g;
}

// The reference's three steps: L = chol(H); H⁻¹ = L⁻ᵀ L⁻¹ (cholesky_inverse); U = the upper
// Cholesky factor of H⁻¹, i.e. the transpose of its lower factor. Empty on failure.
std::optional<std::vector<float>> UpperFactorOfInverse(std::vector<double> h, int n) {
  if (!CholeskyLower(h, n)) return std::nullopt;
  std::vector<double> hinv = LowerGramOfLower(InvertLower(h, n), n);
  if (!CholeskyLower(hinv, n)) return std::nullopt;
  std::vector<float> u(hinv.size(), 0.f);
  for (int i = 0; i < n; ++i) {
    for (int j = i; j < n; ++j) u[At(i, j, n)] = static_cast<float>(hinv[At(j, i, n)]);
  }
  return u;
}

// ---------------------------------------------------------------------------------------
// The column loop.

constexpr int kMaxDampRetries = 4;
constexpr int kTileRows = 16;  // rows quantized together, sharing each block of U in cache

struct Plan {
  int cols = 0;
  int bits = 4;
  int group_size = 128;
  int block_size = 128;
  std::vector<int> perm;         // processing position → original column
  std::vector<int> position;     // original column → processing position
  std::vector<char> dead;        // per original column
  std::vector<int> group_event;  // per position: group whose params are chosen there, or −1
  std::vector<float> u;          // upper Cholesky factor of H⁻¹, processing order

  // Blocks also end before each group event, so when a group's params are chosen all
  // earlier errors have reached every later column (the lazy update is flushed). With
  // group_size a multiple of block_size (the default 128/128) this is the reference's
  // blocking; otherwise the reference reads stale W at mid-block group starts, we do not.
  int BlockEnd(int i1) const {
    const int i2 = std::min(cols, i1 + block_size);
    for (int p = i1 + 1; p < i2; ++p) {
      if (group_event[p] >= 0) return p;
    }
    return i2;
  }
};

// A group's params from the tile's current weights of that group's columns, row by row.
void ChooseTileGroup(const Plan& plan, int group, const std::vector<float>& w, int tile_rows, int groups,
                     std::vector<GroupParams>& params) {
  const int c0 = group * plan.group_size;
  const int c1 = std::min(plan.cols, c0 + plan.group_size);
  for (int r = 0; r < tile_rows; ++r) {
    float lo = w[At(r, plan.position[c0], plan.cols)];
    float hi = lo;
    for (int c = c0 + 1; c < c1; ++c) {
      const float v = w[At(r, plan.position[c], plan.cols)];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    params[At(r, group, groups)] = ChooseGroupParams(lo, hi, plan.bits);
  }
}

// w[i2:] −= Σ_{j in block} err_j · U[j, i2:]; four rows of U per pass so w is loaded and
// stored a quarter as often.
void LazyUpdate(const Plan& plan, const float* err, int i1, int i2, float* w) {
  const int n = plan.cols;
  const int len = n - i2;
  int j = i1;
  for (; j + 4 <= i2; j += 4) {
    const float e0 = err[j - i1], e1 = err[j + 1 - i1], e2 = err[j + 2 - i1], e3 = err[j + 3 - i1];
    const float *u0 = &plan.u[At(j, i2, n)], *u1 = u0 + n, *u2 = u1 + n, *u3 = u2 + n;
    float* out = w + i2;
#pragma omp simd
    for (int c = 0; c < len; ++c) out[c] -= e0 * u0[c] + e1 * u1[c] + e2 * u2[c] + e3 * u3[c];
  }
  for (; j < i2; ++j) {
    const float e = err[j - i1];
    const float* uj = &plan.u[At(j, i2, n)];
#pragma omp simd
    for (int c = 0; c < len; ++c) w[i2 + c] -= e * uj[c];
  }
}

// Quantizes rows [r0, r1) into q; returns their share of the loss.
double QuantizeTile(const Plan& plan, const float* weights, int r0, int r1, bool static_groups, QuantizedMatrix& q,
                    float* targets) {
  const int n = plan.cols, t = r1 - r0, groups = q.groups(), block = plan.block_size;
  std::vector<float> w(static_cast<size_t>(t) * static_cast<size_t>(n));
  for (int r = 0; r < t; ++r) {
    for (int p = 0; p < n; ++p) {
      const int c = plan.perm[p];
      w[At(r, p, n)] = plan.dead[c] ? 0.f : weights[At(r0 + r, c, n)];
    }
  }
  std::vector<GroupParams> params(static_cast<size_t>(t) * static_cast<size_t>(groups));
  if (static_groups) {
    for (int g = 0; g < groups; ++g) ChooseTileGroup(plan, g, w, t, groups, params);
  }
  std::vector<float> err(static_cast<size_t>(t) * static_cast<size_t>(block));
  double loss = 0;
  for (int i1 = 0; i1 < n;) {
    const int i2 = plan.BlockEnd(i1);
    if (plan.group_event[i1] >= 0) ChooseTileGroup(plan, plan.group_event[i1], w, t, groups, params);
    for (int p = i1; p < i2; ++p) {
      const float* up = &plan.u[At(p, 0, n)];
      const int c = plan.perm[p];
      for (int r = 0; r < t; ++r) {
        float* wr = &w[At(r, 0, n)];
        const GroupParams gp = params[At(r, c / plan.group_size, groups)];
        const float x = wr[p];
        const uint8_t code = QuantizeValue(x, gp, plan.bits);
        const float e = (x - gp.scale * (static_cast<float>(code) - gp.zero)) / up[p];
        q.codes[At(r0 + r, c, n)] = code;
        if (targets != nullptr) targets[At(r0 + r, c, n)] = x;
        loss += 0.5 * static_cast<double>(e) * static_cast<double>(e);
        err[At(r, p - i1, block)] = e;
#pragma omp simd
        for (int k = p + 1; k < i2; ++k) wr[k] -= e * up[k];
      }
    }
    for (int r = 0; r < t; ++r) LazyUpdate(plan, &err[At(r, 0, block)], i1, i2, &w[At(r, 0, n)]);
    i1 = i2;
  }
  for (int r = 0; r < t; ++r) {
    for (int g = 0; g < groups; ++g) {
      q.scales[q.param_index(r0 + r, g * q.group_size)] = params[At(r, g, groups)].scale;
      q.zeros[q.param_index(r0 + r, g * q.group_size)] = params[At(r, g, groups)].zero;
    }
  }
  return loss;
}

// Everything shared by all rows: dead columns, the order, the factor of H⁻¹ (with retries).
// False when no damp up to options.damp · 10^kMaxDampRetries gives a factorization.
bool MakePlan(std::span<const double> hessian, int cols, const GptqOptions& options, Plan& plan, GptqReport& report) {
  plan.cols = cols;
  plan.bits = options.bits;
  plan.group_size = options.group_size > 0 ? options.group_size : cols;
  plan.block_size = options.block_size > 0 ? options.block_size : 128;
  std::vector<double> h(hessian.begin(), hessian.end());
  plan.dead.assign(static_cast<size_t>(cols), 0);
  for (int k = 0; k < cols; ++k) {
    if (h[At(k, k, cols)] != 0) continue;
    // Data gives a dead input an all-zero row and column already; zeroing them guards a
    // malformed H and guarantees no error flows into the (zeroed) column.
    plan.dead[k] = 1;
    for (int j = 0; j < cols; ++j) h[At(k, j, cols)] = h[At(j, k, cols)] = 0;
    h[At(k, k, cols)] = 1;
  }
  plan.perm.resize(static_cast<size_t>(cols));
  std::iota(plan.perm.begin(), plan.perm.end(), 0);
  if (options.act_order) {
    std::stable_sort(plan.perm.begin(), plan.perm.end(),
                     [&](int a, int b) { return h[At(a, a, cols)] > h[At(b, b, cols)]; });
  }
  plan.position.resize(static_cast<size_t>(cols));
  for (int p = 0; p < cols; ++p) plan.position[plan.perm[p]] = p;
  // A group's params are chosen where the column order first reaches one of its columns.
  // Without act_order that is its first column, as in the reference. With act_order the
  // reference forms groups of consecutive *permuted* columns (g_idx), which this format
  // (groups of consecutive input channels) cannot store; we keep input-channel groups and
  // choose each from its current weights when first touched.
  plan.group_event.assign(static_cast<size_t>(cols), -1);
  std::vector<char> seen(static_cast<size_t>((cols + plan.group_size - 1) / plan.group_size), 0);
  for (int p = 0; p < cols && !options.static_groups; ++p) {
    const int g = plan.perm[p] / plan.group_size;
    if (!seen[g]) plan.group_event[p] = g;
    seen[g] = 1;
  }
  std::vector<double> hp(h.size());
  double mean_diag = 0;
  for (int i = 0; i < cols; ++i) {
    for (int j = 0; j < cols; ++j) hp[At(i, j, cols)] = h[At(plan.perm[i], plan.perm[j], cols)];
    mean_diag += hp[At(i, i, cols)] / cols;
  }
  double damp = options.damp;
  for (int attempt = 0; attempt <= kMaxDampRetries; ++attempt) {
    if (attempt > 0) damp = damp > 0 ? damp * 10 : 0.01;
    std::vector<double> damped = hp;
    for (int i = 0; i < cols; ++i) damped[At(i, i, cols)] += damp * mean_diag;
    report.damp = damp;
    report.damp_retries = attempt;
    if (auto u = UpperFactorOfInverse(std::move(damped), cols)) {
      plan.u = *std::move(u);
      return true;
    }
  }
  return false;
}

}  // namespace

QuantizedMatrix QuantizeGptq(std::span<const float> weights, int rows, int cols, std::span<const double> hessian,
                             const GptqOptions& options, GptqReport* report) {
  GptqReport local;
  GptqReport& rep = report != nullptr ? *report : local;
  rep = GptqReport{};
  const size_t size = static_cast<size_t>(std::max(rows, 0)) * static_cast<size_t>(std::max(cols, 0));
  if (rows <= 0 || cols <= 0 || weights.size() != size) {
    rep.fell_back_to_rtn = true;
    return {};
  }
  const int group_size = options.group_size > 0 ? options.group_size : cols;
  const bool hessian_fits = hessian.size() == static_cast<size_t>(cols) * static_cast<size_t>(cols);
  Plan plan;
  if (!hessian_fits || !MakePlan(hessian, cols, options, plan, rep)) {
    rep.fell_back_to_rtn = true;
    std::vector<float> zeroed(weights.begin(), weights.end());
    for (int k = 0; k < cols && hessian_fits; ++k) {
      if (hessian[At(k, k, cols)] != 0) continue;
      for (int r = 0; r < rows; ++r) zeroed[At(r, k, cols)] = 0;
    }
    if (report != nullptr) rep.targets = zeroed;
    return QuantizeRtn(zeroed, rows, cols, options.bits, group_size);
  }
  QuantizedMatrix q{rows, cols, options.bits, group_size, {}, {}, {}};
  q.codes.resize(size);
  q.scales.resize(static_cast<size_t>(rows) * static_cast<size_t>(q.groups()));
  q.zeros.resize(q.scales.size());
  if (report != nullptr) rep.targets.assign(size, 0.f);
  float* targets = report != nullptr ? rep.targets.data() : nullptr;
  const int tiles = (rows + kTileRows - 1) / kTileRows;
  std::vector<double> losses(static_cast<size_t>(tiles), 0.0);
  ThreadPool pool(options.threads);
  pool.ParallelFor(tiles, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int r0 = static_cast<int>(i) * kTileRows;
      losses[i] = QuantizeTile(plan, weights.data(), r0, std::min(rows, r0 + kTileRows), options.static_groups, q, targets);
    }
  });
  rep.loss = std::accumulate(losses.begin(), losses.end(), 0.0);
  return q;
}

}  // namespace grinqh
