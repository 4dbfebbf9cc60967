// grinqh_kernel_bench: the GRINQH GPU kernels at Llama-3-8B shapes, in one table.
//
//   build/bench/grinqh_kernel_bench [--quick] [--shape qkv|o|gate_up|down|lm_head]
//
// Per shape and target: the graded matvec's median time (CUDA events, warmed up, weights
// rotated through several copies so that more than the 60 MB L2 is swept), the bytes it
// needs (planes at each channel's level, scales and zeros of the groups it touches), the
// % of the device copy bandwidth measured in the same run (cudaMemcpy device to device,
// read + write counted), and the speedup over cuBLAS bf16 GEMV at the same shape. Levels
// come from the GPU grader on heavy-tailed activations (Student-t, 3 degrees of freedom)
// times random per-channel statistics. Then grading time per call, small batches with
// mixed targets against the full-depth path, and the prefill dequantization.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/grade.h"
#include "kernels/graded_matvec.h"

namespace {

using grinqh::cuda::GpuPlaneMatrix;
using grinqh::cuda::GpuPlaneShape;

void Check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}
void Check(const char* err, const char* what) {
  if (err != nullptr) {
    std::fprintf(stderr, "%s: %s\n", what, err);
    std::exit(1);
  }
}
void Check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s: cuBLAS status %d\n", what, int(status));
    std::exit(1);
  }
}

template <typename T>
T* Alloc(size_t n) {
  void* p = nullptr;
  Check(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc");
  return static_cast<T*>(p);
}

// Random bytes (splitmix64 of the index), valid fp16 scales in [2^-9, 2^-6], bf16 weights.
__global__ void FillRandomBytes(uint8_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n / 8; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + seed) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    reinterpret_cast<uint64_t*>(p)[i] = z ^ (z >> 31);
  }
}
__global__ void FillScales(uint16_t* p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    p[i] = __half_as_ushort(__float2half(exp2f(-9.f + 3.f * float((i * 2654435761u) % 1000u) / 1000.f)));
  }
}
__global__ void EmptyKernel() {}

__global__ void FillBf16(__nv_bfloat16* p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    p[i] = __float2bfloat16(float(int((i * 2654435761u) % 2001u) - 1000) * 1e-5f);
  }
}

struct Events {
  cudaEvent_t start, stop;
  Events() { cudaEventCreate(&start), cudaEventCreate(&stop); }
  ~Events() { cudaEventDestroy(start), cudaEventDestroy(stop); }
  // Median over `reps` of (time of `calls` back-to-back calls) / calls, in µs.
  template <typename F>
  double MedianMicros(int reps, int calls, F&& call) {
    for (int i = 0; i < calls; ++i) call(i);  // warm-up
    Check(cudaDeviceSynchronize(), "warm-up");
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
      cudaEventRecord(start);
      for (int i = 0; i < calls; ++i) call(i);
      cudaEventRecord(stop);
      Check(cudaEventSynchronize(stop), "timed calls");
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      times.push_back(1000.0 * ms / calls);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
  }
};

// Several copies of one matrix in the GPU layout, so consecutive calls miss the L2.
struct Copies {
  std::vector<GpuPlaneMatrix> m;
  std::vector<void*> owned;
  Copies(const GpuPlaneShape& s, size_t min_total_bytes) {
    const size_t one = s.planes_size() + 3 * s.params_size();
    const int n = int(std::max<size_t>(2, (min_total_bytes + one - 1) / one));
    for (int i = 0; i < n; ++i) {
      uint8_t* planes = Alloc<uint8_t>(s.planes_size() + 8);
      uint16_t* scales = Alloc<uint16_t>(s.params_size());
      uint8_t* zeros = Alloc<uint8_t>(s.params_size() + 8);
      FillRandomBytes<<<1024, 256>>>(planes, s.planes_size() + 8, 1000003ull * i);
      FillScales<<<1024, 256>>>(scales, s.params_size());
      FillRandomBytes<<<1024, 256>>>(zeros, s.params_size() + 8, 7777ull * i + 1);
      m.push_back({s, planes, scales, zeros});
      owned.insert(owned.end(), {planes, scales, zeros});
    }
  }
  ~Copies() {
    for (void* p : owned) cudaFree(p);
  }
};

// Bytes a graded call needs: each channel's planes in every tile, the scales and zeros of
// every group with a channel read (what the kernel reads, padding excluded).
double NeededBytes(const GpuPlaneShape& s, const std::vector<uint8_t>& levels) {
  double plane_bytes = 0, groups = 0;
  size_t tile_bytes = 0;
  for (int t = 0; t < s.tiles(); ++t) tile_bytes += size_t(s.TilePlaneBytes(t));
  for (int g = 0; g < s.groups(); ++g) {
    bool any = false;
    for (int k = g * s.group_size; k < std::min(s.cols, (g + 1) * s.group_size); ++k) {
      plane_bytes += double(levels[size_t(k)]) * double(tile_bytes);
      any = any || levels[size_t(k)] > 0;
    }
    groups += any;
  }
  return plane_bytes + groups * 3.0 * s.rows;
}

struct Shape {
  const char* name;
  int rows, cols;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const char* only = nullptr;  // --shape NAME: one shape's rows only
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--shape") == 0 && i + 1 < argc) only = argv[++i];
  }
  const int reps = quick ? 5 : 15;
  cudaDeviceProp prop{};
  Check(cudaGetDeviceProperties(&prop, 0), "device");
  const size_t rotate_bytes = size_t(4) * size_t(prop.l2CacheSize);  // > 60 MB L2, several times over
  std::printf("device: %s, %d SMs, L2 %d MB; weights rotated through >= %zu MB\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20, rotate_bytes >> 20);

  // Device copy bandwidth: cudaMemcpy device to device, 2 GB, read + write counted.
  Events ev;
  double copy_bw = 0;
  {
    const size_t n = size_t(2) << 30;
    uint8_t *a = Alloc<uint8_t>(n), *b = Alloc<uint8_t>(n);
    cudaMemset(a, 1, n);
    const double us = ev.MedianMicros(reps, 3, [&](int) { cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice); });
    copy_bw = 2.0 * double(n) / (us * 1e-6);
    cudaFree(a), cudaFree(b);
  }
  std::printf("device copy bandwidth: %.0f GB/s (cudaMemcpy D2D of 2 GiB, read + write)\n", copy_bw / 1e9);
  // The launch floor: back-to-back launches of an empty kernel, and of two (a matvec is a
  // read plan and the product), which a small matrix cannot go below.
  const double empty_us = ev.MedianMicros(reps, 200, [&](int) { EmptyKernel<<<132, 128>>>(); });
  const double two_us = ev.MedianMicros(reps, 200, [&](int) { EmptyKernel<<<8, 256>>>(), EmptyKernel<<<132, 128>>>(); });
  std::printf("launch floor: %.2f µs per empty kernel, %.2f µs per pair, back to back on one stream\n\n", empty_us, two_us);

  cublasHandle_t blas;
  Check(cublasCreate(&blas), "cublasCreate");
  std::mt19937_64 rng(42);
  std::student_t_distribution<float> student(3.f);
  std::uniform_real_distribution<float> unit(-1.f, 1.f);

  const Shape shapes[] = {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336},
                          {"lm_head", 128256, 4096}};
  const float targets[] = {2.f, 3.f, 4.f, 6.f, 8.f};
  constexpr int kMaxBatch = 16;

  const auto table_header = [] {
    std::printf("| shape | target | bits read/weight | µs | needed MB | %% of copy BW | cuBLAS bf16 µs | speedup |"
                " plan µs | matvec alone µs | matvec alone %% BW |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  };
  table_header();
  for (const Shape& sh : shapes) {
    if (only != nullptr && std::strcmp(only, sh.name) != 0) continue;
    const GpuPlaneShape s{sh.rows, sh.cols, 8, 8, 128};
    Copies w(s, rotate_bytes);
    const int copies = int(w.m.size());
    // Activations and channel statistics (a batch of rows, for the batch table below).
    std::vector<float> x(size_t(kMaxBatch) * sh.cols);
    for (float& v : x) v = student(rng);
    std::vector<uint16_t> stat(static_cast<size_t>(sh.cols));
    for (uint16_t& v : stat) v = __half_as_ushort(__float2half(std::exp2(unit(rng))));
    float* d_x = Alloc<float>(x.size());
    uint16_t* d_stat = Alloc<uint16_t>(stat.size());
    cudaMemcpy(d_x, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(d_stat, stat.data(), stat.size() * 2, cudaMemcpyHostToDevice);
    uint8_t* d_levels = Alloc<uint8_t>(size_t(kMaxBatch) * sh.cols);
    float* d_targets = Alloc<float>(kMaxBatch);
    float* d_y = Alloc<float>(size_t(kMaxBatch) * sh.rows);
    const size_t ws_bytes = grinqh::cuda::GradedMatVecWorkspaceBytes(s, kMaxBatch);
    void* ws = Alloc<uint8_t>(std::max(ws_bytes, grinqh::cuda::GradedMatVecWorkspaceBytes(s, 1)));
    cudaMemset(ws, 0, std::max(ws_bytes, grinqh::cuda::GradedMatVecWorkspaceBytes(s, 1)));

    // cuBLAS bf16 GEMV: y = W x with W [rows][cols] row-major (column-major cols × rows, transposed).
    const size_t wn = size_t(sh.rows) * sh.cols;
    const int blas_copies = int(std::max<size_t>(2, (rotate_bytes + 2 * wn - 1) / (2 * wn)));
    std::vector<__nv_bfloat16*> wb;
    for (int i = 0; i < blas_copies; ++i) {
      wb.push_back(Alloc<__nv_bfloat16>(wn));
      FillBf16<<<1024, 256>>>(wb.back(), wn);
    }
    __nv_bfloat16* xb = Alloc<__nv_bfloat16>(size_t(kMaxBatch) * sh.cols);
    __nv_bfloat16* yb = Alloc<__nv_bfloat16>(size_t(kMaxBatch) * sh.rows);
    FillBf16<<<256, 256>>>(xb, size_t(kMaxBatch) * sh.cols);
    const float one = 1.f, zero = 0.f;
    const auto gemm = [&](int i, int n) {
      Check(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, sh.rows, n, sh.cols, &one, wb[size_t(i) % wb.size()],
                         CUDA_R_16BF, sh.cols, xb, CUDA_R_16BF, sh.cols, &zero, yb, CUDA_R_16BF, sh.rows,
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    };
    const double blas_us = ev.MedianMicros(reps, 2 * blas_copies, [&](int i) { gemm(i, 1); });

    for (float target : targets) {
      std::vector<float> row_targets(kMaxBatch, target);
      cudaMemcpy(d_targets, row_targets.data(), kMaxBatch * 4, cudaMemcpyHostToDevice);
      Check(grinqh::cuda::GradeRows(d_x, d_stat, 1, sh.cols, d_targets, 8, nullptr, d_levels, nullptr), "grade");
      std::vector<uint8_t> levels(size_t(sh.cols));
      cudaMemcpy(levels.data(), d_levels, levels.size(), cudaMemcpyDeviceToHost);
      const double bytes = NeededBytes(s, levels);
      const double us = ev.MedianMicros(reps, 2 * copies, [&](int i) {
        Check(grinqh::cuda::GradedMatVec(w.m[size_t(i) % w.m.size()], d_x, d_levels, 0, d_y, ws, nullptr), "matvec");
      });
      // Its two halves apart: the read plan (once per layer input) and the matvec from it.
      const double plan_us = ev.MedianMicros(reps, 2 * copies, [&](int) {
        Check(grinqh::cuda::PlanGradedReads(s, 1, d_x, d_levels, 0, ws, nullptr), "plan");
      });
      const double mv_us = ev.MedianMicros(reps, 2 * copies, [&](int i) {
        Check(grinqh::cuda::GradedMatVecFromPlan(w.m[size_t(i) % w.m.size()], 1, d_y, ws, nullptr), "matvec");
      });
      std::printf("| %s %dx%d | %.0f | %.3f | %.1f | %.2f | %.1f | %.1f | %.2fx | %.1f | %.1f | %.1f |\n", sh.name, sh.rows,
                  sh.cols, target, 8.0 * bytes / (double(sh.rows) * sh.cols), us, bytes / 1e6,
                  100.0 * bytes / (us * 1e-6) / copy_bw, blas_us, blas_us / us, plan_us, mv_us,
                  100.0 * bytes / (mv_us * 1e-6) / copy_bw);
    }
    {  // Full depth without a levels array: the `quality` tier's path.
      std::vector<uint8_t> full(size_t(sh.cols), 8);
      const double bytes = NeededBytes(s, full);
      const double us = ev.MedianMicros(reps, 2 * copies, [&](int i) {
        Check(grinqh::cuda::GradedMatVec(w.m[size_t(i) % w.m.size()], d_x, nullptr, 8, d_y, ws, nullptr), "matvec");
      });
      std::printf("| %s %dx%d | 8 (uniform) | %.3f | %.1f | %.2f | %.1f | %.1f | %.2fx |\n", sh.name, sh.rows, sh.cols,
                  8.0 * bytes / (double(sh.rows) * sh.cols), us, bytes / 1e6, 100.0 * bytes / (us * 1e-6) / copy_bw,
                  blas_us, blas_us / us);
    }
    {  // A baseline's 4-bit store (RTN/GPTQ/AWQ) decoded at its width by the same kernel.
      const GpuPlaneShape s4{sh.rows, sh.cols, 4, 4, 128};
      Copies w4(s4, rotate_bytes);
      std::vector<uint8_t> full(size_t(sh.cols), 4);
      const double bytes = NeededBytes(s4, full);
      const double us = ev.MedianMicros(reps, 2 * int(w4.m.size()), [&](int i) {
        Check(grinqh::cuda::GradedMatVec(w4.m[size_t(i) % w4.m.size()], d_x, nullptr, 4, d_y, ws, nullptr), "matvec");
      });
      std::printf("| %s %dx%d | 4-bit store | %.3f | %.1f | %.2f | %.1f | %.1f | %.2fx |\n", sh.name, sh.rows, sh.cols,
                  8.0 * bytes / (double(sh.rows) * sh.cols), us, bytes / 1e6, 100.0 * bytes / (us * 1e-6) / copy_bw,
                  blas_us, blas_us / us);
    }
    std::fflush(stdout);

    // Small batches with mixed targets (2, 3, 4, 6, 8 cycling), against the same batch at
    // full depth and cuBLAS at n = batch. Only for gate_up (the crossover is per shape;
    // this one is the largest per-layer decode cost).
    if (std::strcmp(sh.name, "gate_up") == 0 || std::strcmp(sh.name, "qkv") == 0) {
      std::printf("\n| %s batch | µs graded (mixed 2,3,4,6,8) | union bits/weight | µs full depth (8) | cuBLAS bf16 µs |\n",
                  sh.name);
      std::printf("|---|---|---|---|---|\n");
      std::vector<float> mixed(kMaxBatch);
      for (int b = 0; b < kMaxBatch; ++b) mixed[size_t(b)] = targets[b % 5];
      cudaMemcpy(d_targets, mixed.data(), kMaxBatch * 4, cudaMemcpyHostToDevice);
      Check(grinqh::cuda::GradeRows(d_x, d_stat, kMaxBatch, sh.cols, d_targets, 8, nullptr, d_levels, nullptr), "grade");
      std::vector<uint8_t> all(size_t(kMaxBatch) * sh.cols);
      cudaMemcpy(all.data(), d_levels, all.size(), cudaMemcpyDeviceToHost);
      uint8_t* d_full = Alloc<uint8_t>(all.size());
      cudaMemset(d_full, 8, all.size());
      for (int batch : {1, 2, 4, 8, 16}) {
        std::vector<uint8_t> deepest(size_t(sh.cols), 0);
        for (int b = 0; b < batch; ++b) {
          for (int k = 0; k < sh.cols; ++k) deepest[size_t(k)] = std::max(deepest[size_t(k)], all[size_t(b) * sh.cols + k]);
        }
        const double union_bits = 8.0 * NeededBytes(s, deepest) / (double(sh.rows) * sh.cols);
        const double graded = ev.MedianMicros(reps, 2 * copies, [&](int i) {
          Check(grinqh::cuda::GradedMatVecBatch(w.m[size_t(i) % w.m.size()], batch, d_x, d_levels, d_y, ws, nullptr),
                "batch");
        });
        const double full = ev.MedianMicros(reps, 2 * copies, [&](int i) {
          Check(grinqh::cuda::GradedMatVecBatch(w.m[size_t(i) % w.m.size()], batch, d_x, d_full, d_y, ws, nullptr),
                "batch");
        });
        const double blas = ev.MedianMicros(reps, 2 * blas_copies, [&](int i) { gemm(i, batch); });
        std::printf("| %d | %.1f | %.2f | %.1f | %.1f |\n", batch, graded, union_bits, full, blas);
      }
      cudaFree(d_full);
      // Prefill: dequantize the whole matrix to bf16 (reads 8 bits, writes 16 per weight).
      __nv_bfloat16* out = wb[0];
      const double dq = ev.MedianMicros(reps, copies, [&](int i) {
        Check(grinqh::cuda::DequantizeToBf16(w.m[size_t(i) % w.m.size()], reinterpret_cast<uint16_t*>(out), nullptr),
              "dequantize");
      });
      const double dq_bytes = double(s.planes_size()) + 3.0 * s.params_size() + 2.0 * wn;
      std::printf("\ndequantize %s to bf16: %.1f µs, %.0f%% of copy bandwidth (reads 8 + writes 16 bits/weight)\n\n",
                  sh.name, dq, 100.0 * dq_bytes / (dq * 1e-6) / copy_bw);
      table_header();
    }

    for (auto* p : wb) cudaFree(p);
    cudaFree(xb), cudaFree(yb), cudaFree(d_x), cudaFree(d_stat), cudaFree(d_levels), cudaFree(d_targets), cudaFree(d_y);
    cudaFree(ws);
  }

  // Grading: one call per row, K = 4096 and 14336, batch 1 and 16, mixed targets.
  std::printf("\n| grading | K | rows | µs per call |\n|---|---|---|---|\n");
  for (int cols : {4096, 14336}) {
    std::vector<float> x(size_t(kMaxBatch) * cols), t(kMaxBatch);
    for (float& v : x) v = student(rng);
    for (int b = 0; b < kMaxBatch; ++b) t[size_t(b)] = targets[b % 5];
    std::vector<uint16_t> stat(static_cast<size_t>(cols));
    for (uint16_t& v : stat) v = __half_as_ushort(__float2half(std::exp2(unit(rng))));
    float *d_x = Alloc<float>(x.size()), *d_t = Alloc<float>(kMaxBatch);
    uint16_t* d_stat = Alloc<uint16_t>(stat.size());
    uint8_t* d_levels = Alloc<uint8_t>(x.size());
    cudaMemcpy(d_x, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(d_t, t.data(), t.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(d_stat, stat.data(), stat.size() * 2, cudaMemcpyHostToDevice);
    for (int rows : {1, 16}) {
      for (int target_index = 0; target_index < (rows == 1 ? 5 : 1); ++target_index) {
        const double us = ev.MedianMicros(reps, 20, [&](int) {
          Check(grinqh::cuda::GradeRows(d_x, d_stat, rows, cols, d_t + target_index, 8, nullptr, d_levels, nullptr),
                "grade");
        });
        std::printf("| target %s | %d | %d | %.2f |\n", rows == 1 ? std::to_string(int(targets[target_index])).c_str() : "mixed",
                    cols, rows, us);
      }
    }
    cudaFree(d_x), cudaFree(d_t), cudaFree(d_stat), cudaFree(d_levels);
  }
  cublasDestroy(blas);
  return 0;
}
