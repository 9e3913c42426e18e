#!/usr/bin/env python3
"""PyTorch CPU twin of the MLP rows of `cargo bench --bench selector`.

Same model (1024-512-512-1, ReLU), same pairwise hinge loss (margin 1, mean over the
batch), Adam, random inputs, same batch sizes and step counts, so the printed rates can be
compared with the Rust table run on the same machine:

    python3 benches/selector_torch.py            # uses all cores, like burn's NdArray
    python3 benches/selector_torch.py --threads 2
    python3 benches/selector_torch.py --device cuda --mlp-only   # beside SELECTOR_BENCH_BACKEND=cuda

On a GPU the clock stops after the device has finished (torch.cuda.synchronize), as the Rust
rows read their last result back.
"""
import argparse
import time

import torch
from torch import nn

DEVICE = "cpu"


def sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def mlp(d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 1))


def train_pairs_per_s(d: int, batch: int, steps: int) -> tuple[int, float]:
    model = mlp(d).to(DEVICE)
    optim = torch.optim.Adam(model.parameters(), lr=1e-5)
    inputs = [torch.rand(2 * batch, d, device=DEVICE) - 0.5 for _ in range(4)]
    warm_up = 3
    start = time.perf_counter()
    for step in range(warm_up + steps):
        if step == warm_up:
            sync()
            start = time.perf_counter()
        scores = model(inputs[step % len(inputs)]).squeeze(1)
        diff = scores[:batch] - scores[batch:]
        loss = torch.relu(1.0 - diff).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
    sync()
    return steps * batch, time.perf_counter() - start


def score_rows_per_s(d: int, rows: int, chunk: int) -> tuple[int, float]:
    model = mlp(d).to(DEVICE).eval()
    x = torch.rand(chunk, d, device=DEVICE) - 0.5
    with torch.inference_mode():
        model(x).cpu()
        start = time.perf_counter()
        for _ in range(rows // chunk):
            model(x).cpu()  # read back, as the Rust rows do
    return rows // chunk * chunk, time.perf_counter() - start


def matmul_products(m: int, k: int, n: int, reps: int) -> tuple[int, float]:
    a = torch.rand(m, k) - 0.5
    b = torch.rand(k, n) - 0.5
    with torch.inference_mode():
        a @ b
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
    return reps, time.perf_counter() - start


def row(name: str, count: int, seconds: float, unit: str, note: str = "") -> None:
    print(f"{name:<44} {count:>9} {seconds:>9.2f}s {count / seconds:>12.0f} {unit:<10} {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--mlp-only", action="store_true", help="skip the bare matrix products")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    where = torch.cuda.get_device_name() if DEVICE.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads ({where})\n")
    n, t = train_pairs_per_s(1024, 64, 60)
    row("train MLP 1024-512-512-1 hinge (batch 64)", n, t, "pairs/s")
    n, t = train_pairs_per_s(1024, 256, 20)
    row("train MLP 1024-512-512-1 hinge (batch 256)", n, t, "pairs/s")
    n, t = score_rows_per_s(1024, 65_536, 8192)
    row("score MLP 1024-512-512-1", n, t, "rows/s", f"1.7M -> {1.7e6 * t / n:.1f}s")
    if DEVICE.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    if args.mlp_only:
        return
    for m, k, n_, reps in [(512, 1024, 512, 200), (1280, 384, 1536, 100)]:
        n, t = matmul_products(m, k, n_, reps)
        row(f"matmul {m}x{k} · {k}x{n_}", n, t, "products/s", f"{2 * m * k * n_ * n / t / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
