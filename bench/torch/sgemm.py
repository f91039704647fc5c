"""Times a float32 n x n x n matrix product on PyTorch's CPU BLAS and prints one JSON line.

run.sh calls it once per OpenBLAS core type (OPENBLAS_CORETYPE set in its environment) to pick
the fastest kernel for the machine, and reports the step figures as shares of that rate.

    /usr/bin/python3 bench/torch/sgemm.py [--n 2048] [--threads 2] [--reps 5]
"""
import argparse
import ctypes
import json
import statistics
import time

import torch


def corename():
    """OpenBLAS's name for the kernel it loaded, or "" when no OpenBLAS is mapped."""
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "libopenblas" in path:
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib.openblas_get_corename().decode()
            except (OSError, AttributeError):
                continue
    return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.n, a.n, generator=g) - 0.5
    y = torch.rand(a.n, a.n, generator=g) - 0.5
    out = torch.empty(a.n, a.n)
    torch.mm(x, y, out=out)  # warm-up: the BLAS threads start, the pages are touched
    ms = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        torch.mm(x, y, out=out)
        ms.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(ms)
    print(json.dumps({"n": a.n, "threads": a.threads, "median_ms": round(med, 2),
                      "gflops": round(2 * a.n ** 3 / (med / 1000) / 1e9, 1), "core": corename()}))


if __name__ == "__main__":
    main()
