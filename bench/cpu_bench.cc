// The CPU decode roofline and how close the matrix products get to it.
//
//   build/bench/cpu_bench --benchmark_counters_tabular=true
//
// Memory read bandwidth is measured on a buffer far larger than the last-level cache
// (DRAM) and on one that fits in it (the tiny fixture models fit in L3 entirely).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "engine/backends/cpu/cpu_ops.h"
#include "engine/quant/gptq.h"

namespace grinqh {
namespace {

// Sums a buffer with all threads of the pool: the read bandwidth decode can hope for.
void BM_MemoryRead(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) << 20;
  std::vector<float> buffer(bytes / sizeof(float), 1.f);
  ThreadPool pool;
  std::vector<float> partial(static_cast<size_t>(pool.size()) * 16);
  for (auto _ : state) {
    const int64_t chunks = pool.size() * 16;
    const size_t per_chunk = buffer.size() / static_cast<size_t>(chunks);
    pool.ParallelFor(chunks, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const float* p = buffer.data() + static_cast<size_t>(c) * per_chunk;
        float acc = 0.f;
#pragma omp simd reduction(+ : acc)
        for (size_t i = 0; i < per_chunk; ++i) acc += p[i];
        partial[static_cast<size_t>(c)] = acc;
      }
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_MemoryRead)->Arg(16)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);

// One decode-step matrix-vector product on bf16 weights, shape (rows, cols).
void BM_MatVecBf16(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
  std::mt19937 rng(0);
  std::vector<uint16_t> weights(static_cast<size_t>(rows) * static_cast<size_t>(cols));
  for (auto& w : weights) w = static_cast<uint16_t>(0x3c00 + rng() % 256);  // small positive bf16
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  const Matrix m{DType::kBF16, reinterpret_cast<const std::byte*>(weights.data()), rows, cols};
  ThreadPool pool;
  for (auto _ : state) {
    cpu::MatMul(pool, x.data(), 1, m, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(weights.size() * 2));
}
// tiny-llama3 (hidden 256, mlp 768, vocab 8192) and a Llama-3-8B-sized layer (4096, 14336).
BENCHMARK(BM_MatVecBf16)
    ->Args({256, 256})->Args({768, 256})->Args({256, 768})->Args({8192, 256})
    ->Args({512, 512})->Args({1536, 512})->Args({512, 1536})->Args({8192, 512})
    ->Args({4096, 4096})->Args({14336, 4096})
    ->UseRealTime();

// GPTQ's calibration cost: accumulating H from a 512-row batch, and quantizing a matrix.
std::vector<float> RandomMatrix(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

void BM_HessianAdd(benchmark::State& state) {
  const int cols = static_cast<int>(state.range(0));
  const std::vector<float> x = RandomMatrix(512 * static_cast<size_t>(cols), 1);
  HessianAccumulator h(cols);
  for (auto _ : state) h.Add(x.data(), 512);
}
BENCHMARK(BM_HessianAdd)->Arg(512)->Arg(1536)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Gptq(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
  const std::vector<float> x = RandomMatrix(2048 * static_cast<size_t>(cols), 2);
  HessianAccumulator h(cols);
  h.Add(x.data(), 2048);
  const std::vector<float> w = RandomMatrix(static_cast<size_t>(rows) * static_cast<size_t>(cols), 3);
  for (auto _ : state) benchmark::DoNotOptimize(QuantizeGptq(w, rows, cols, h.hessian(), GptqOptions{}));
}
BENCHMARK(BM_Gptq)->Args({1536, 512})->Args({8192, 512})->Args({512, 1536})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace grinqh
