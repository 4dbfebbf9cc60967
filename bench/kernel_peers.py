"""Peers of grinqh_kernel_bench, timed the same way in the same device session: PyTorch's
int4 weight-only kernel (torch._weight_int4pack_mm, tinygemm, group 128) and torch's bf16
matmul, batch 1, at the Llama-3-8B shapes; weights rotated through several copies (> 4×
the L2), median of CUDA-event timings of back-to-back calls.

    python3 bench/kernel_peers.py
"""
import torch

SHAPES = [("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 28672, 4096), ("down", 4096, 14336),
          ("lm_head", 128256, 4096)]
ROTATE_BYTES = 4 * 60 * 2**20


def median_us(fn, calls, reps=15):
    for i in range(calls):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(calls):
            fn(i)
        stop.record()
        stop.synchronize()
        times.append(1000.0 * start.elapsed_time(stop) / calls)
    times.sort()
    return times[len(times) // 2]


def int4_weights(n, k, group=128):
    """Random 4-bit codes packed for tinygemm, with bf16 scales and zeros."""
    codes = torch.randint(0, 16, (n, k), dtype=torch.int32, device="cuda")
    packed_u8 = (codes[:, ::2] << 4 | codes[:, 1::2]).to(torch.uint8)
    w = torch._convert_weight_to_int4pack(packed_u8, 8)
    sz = torch.empty(k // group, n, 2, dtype=torch.bfloat16, device="cuda")
    sz[..., 0].uniform_(0.001, 0.01)
    sz[..., 1].uniform_(-0.05, 0.05)
    return w, sz


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print("| shape | torch bf16 F.linear µs | torch int4 tinygemm (g128) µs |")
    print("|---|---|---|")
    for name, n, k in SHAPES:
        x = torch.randn(1, k, dtype=torch.bfloat16, device="cuda")
        copies = max(2, -(-ROTATE_BYTES // (2 * n * k)))
        dense = [torch.randn(n, k, dtype=torch.bfloat16, device="cuda") * 0.01 for _ in range(copies)]
        bf16 = median_us(lambda i: torch.nn.functional.linear(x, dense[i % copies]), 2 * copies)
        del dense
        try:
            copies4 = max(2, -(-ROTATE_BYTES // (n * k // 2)))
            packs = [int4_weights(n, k) for _ in range(copies4)]
            int4 = median_us(lambda i: torch._weight_int4pack_mm(x, packs[i % copies4][0], 128, packs[i % copies4][1]),
                             2 * copies4)
            int4_text = f"{int4:.1f}"
            del packs
        except Exception as e:  # noqa: BLE001 - report, don't hide, an API change
            int4_text = f"failed: {type(e).__name__}: {str(e)[:120]}"
        print(f"| {name} {n}x{k} | {bf16:.1f} | {int4_text} |", flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
