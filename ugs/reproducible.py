"""Settings that make the kit's CPU runs repeat bit for bit across x86-64 machines.

A CPU training run of the same code, data and seed gives the same numbers on one machine, but
not across machines: the kernels PyTorch picks depend on the processor. Measured on the kit's
AMD EPYC machine (AVX-512) with torch 2.0.1, one conv2d, one matrix product and one sum
(``python -m ugs.reproducible`` prints the same fingerprints):

* oneDNN (convolutions) uses AVX-512 kernels where the processor has them; capping it at AVX2
  (``ONEDNN_MAX_CPU_ISA``) changes the convolution's bits,
* ATen's own vectorised kernels (``ATEN_CPU_CAPABILITY``: ``default`` vs ``avx2``) change the
  bits of a reduction,
* MKL picks its GEMM code path by processor vendor and ISA (``MKL_CBWR`` fixes it),
* the number of threads changes the order of every parallel reduction.

:data:`CPU_REPRODUCIBLE_ENV` pins each of these to what every x86-64 machine of the last decade
has (AVX2, 2 threads: the CI machines' core count). ``ci/run_notebooks.py`` and the test
command set it for every notebook kernel and the trainings they start, and the training tool
applies it in the quick profile (:func:`apply`), so a command copied from
``papers_tables/measured/commands.csv`` runs under the same settings. Standard library only.
"""
from __future__ import annotations

import os

CPU_REPRODUCIBLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",   # ATen's vectorised kernels: AVX2, not AVX-512 where present
    "ONEDNN_MAX_CPU_ISA": "AVX2",    # oneDNN convolutions: AVX2 kernels at most
    "MKL_CBWR": "AVX2",              # MKL: the AVX2 code path on Intel and AMD alike
    "OMP_NUM_THREADS": "2",          # reduction order: two threads, as on the 2-core CI machines
    "MKL_NUM_THREADS": "2",
}


def set_environment(override: bool = False) -> dict:
    """Put :data:`CPU_REPRODUCIBLE_ENV` into ``os.environ`` (variables the user set are kept
    unless ``override``), for this process and the ones it starts; returns the values in force.
    Imports nothing: the notebook runner and the test session call it before any kernel starts."""
    for k, v in CPU_REPRODUCIBLE_ENV.items():
        if override or k not in os.environ:
            os.environ[k] = v
    return {k: os.environ[k] for k in CPU_REPRODUCIBLE_ENV}


def apply(override: bool = False) -> dict:
    """:func:`set_environment`, and torch's thread count to match; returns the values in force.

    oneDNN, ATen and MKL read their variables at their first use, so this works after
    ``import torch`` as long as no computation has run yet."""
    set_environment(override)
    try:
        import torch
    except ImportError:  # the core needs torch, but this module does not
        pass
    else:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return {k: os.environ[k] for k in CPU_REPRODUCIBLE_ENV}


def fingerprint() -> dict:
    """md5 prefixes of a seeded conv2d, matrix product and sum: equal fingerprints on two
    machines mean the kernels that differ most between processors agree bit for bit."""
    import hashlib

    import torch

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(4, 64, 64, 64, generator=g), torch.randn(64, 64, 3, 3, generator=g)
    a, b = torch.randn(512, 300, generator=g), torch.randn(300, 700, generator=g)
    s = torch.randn(1_000_000, generator=g).exp()
    out = {"conv2d": torch.nn.functional.conv2d(x, w, padding=1), "matmul": a @ b,
           "sum": s.sum().reshape(1)}
    return {k: hashlib.md5(v.numpy().tobytes()).hexdigest()[:12] for k, v in out.items()}


if __name__ == "__main__":
    print("in force:", apply())
    print("fingerprint:", fingerprint())
