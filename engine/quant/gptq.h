// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"), a baseline for GRINQH.
//
// Each row of W is quantized one input channel at a time; the rounding error of channel k
// is spread over the channels not yet quantized, weighted by the inverse Hessian of the
// layer's output error, H = 2/n Σ x xᵀ over calibration inputs x. Rows never interact: the
// only shared state is the upper Cholesky factor U of H⁻¹, whose row k says how channel k's
// error moves the rest (U[k,k] is the d_kk of the paper).
//
// Steps, as in the reference implementation (gptq.py, fasterquant):
//   1. dead inputs (H_kk == 0) get H_kk = 1 and W[:, k] = 0;
//   2. act_order: columns permuted by descending diag(H);
//   3. H += λ I with λ = damp · mean(diag H); U = upper Cholesky factor of (Cholesky-based) H⁻¹;
//   4. columns in blocks of block_size: inside a block each error updates the block's later
//      columns at once; the columns after the block get the block's errors in one batched
//      ("lazy") update when the block is done;
//   5. a group's (scale, zero) comes from ChooseGroupParams on the group's *current*
//      (error-updated) weights when the algorithm reaches the group (static_groups = false).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/quant/quant.h"

namespace grinqh {

class ThreadPool;

// H = 2/n Σ x xᵀ over every input row seen so far, kept as a running average in double
// (the reference's add_batch). Cheap to call with batches of hundreds of rows.
class HessianAccumulator {
 public:
  // threads: 0 means one per hardware thread; large batches are split over them.
  explicit HessianAccumulator(int cols, int threads = 0);

  // x is [rows × cols], row-major: `rows` input vectors (samples) of the layer.
  void Add(const float* x, int rows);

  // [cols × cols], row-major, symmetric. Zeros until the first Add.
  const std::vector<double>& hessian() const { return hessian_; }
  int64_t samples() const { return samples_; }
  int cols() const { return cols_; }

 private:
  void AddChunk(const float* x, int rows, ThreadPool* pool);

  int cols_;
  int padded_;  // cols rounded up to the micro-kernel's tile width
  int threads_;
  int64_t samples_ = 0;
  std::vector<double> hessian_;
  std::vector<float> x_padded_;   // scratch: one chunk of inputs, packed in column panels
  std::vector<float> chunk_sum_;  // scratch: Σ x xᵀ of one chunk, upper triangle
};

struct GptqOptions {
  int bits = 4;
  int group_size = 128;
  double damp = 0.01;  // λ as a fraction of mean(diag H)
  int block_size = 128;
  bool act_order = false;
  // Reference option: every group's params from the original (not error-updated) weights,
  // chosen up front. Mainly meaningful with act_order; see the .cc for the difference.
  bool static_groups = false;
  int threads = 0;  // 0: one per hardware thread
};

// What happened inside QuantizeGptq. Pass one to see it; the result does not depend on it.
struct GptqReport {
  double damp = 0;                // the damp fraction finally used
  int damp_retries = 0;           // how many times damp was raised ×10 after a failed Cholesky
  bool fell_back_to_rtn = false;  // no usable factorization (or a malformed input): plain RTN
  double loss = 0;                // Σ (w − q)² / d_kk² / 2, what the reference prints as "error"
  // The error-updated weight each code was rounded from, [rows × cols], original column
  // order: code == QuantizeValue(target, its group's params) for every weight.
  std::vector<float> targets;
};

// Quantizes W ([rows × cols], row-major, y = W x) given H = 2/n Σ x xᵀ ([cols × cols]).
// Never crashes: if H cannot be factorized even with damp raised 10× four times, or its
// size is not cols², the result is plain RTN of W (dead columns zeroed) and the report says
// so; if weights.size() != rows · cols the result is an empty matrix (rows = 0).
quant::QuantizedMatrix QuantizeGptq(std::span<const float> weights, int rows, int cols,
                                    std::span<const double> hessian, const GptqOptions& options,
                                    GptqReport* report = nullptr);

}  // namespace grinqh
