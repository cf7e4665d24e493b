"""Training cost of FCOS with UGS against FCOS (the kit's Table 5), measured in one process.

Builds the FCOS baseline and the UGS variants of one head (``UGSFCOSHead`` with different
``ugs`` options, never copies of code) from the kit's two configs, feeds them the same seeded
random images and VisDrone-like ground truth (many small boxes), and measures per variant:

* **time**: seconds per training iteration = forward + losses + backward + SGD step (the
  optimizer of the config, at the learning rate of its first warm-up iteration so the random
  weights stay finite). ``--warmup`` iterations first, then ``--repeats`` timed ones; the
  variants are interleaved round-robin (the order rotates every round), so load from other
  processes hits all of them alike; the median is reported (the mean for a variant with
  ``refine_every = k > 1``, whose iterations alternate; use a multiple of k repeats). On
  the CPU torch runs ``--threads`` threads (default 1: on a shared 2-core machine two
  threads stall each other whenever one is preempted); on CUDA the clock is read after
  ``torch.cuda.synchronize()``.
* **GFLOPs**: inference, one image of the setting's size (padded to the detector's size
  divisor of 32, as its data preprocessor does), the detector's tensor mode (``_forward``:
  backbone, neck, head; no post-processing), counted by ``mmengine.analysis.FlopAnalyzer``
  (fvcore's counter: one multiply-add = one FLOP; convolution biases, activations and other
  elementwise operations are not counted), as mmdet's own ``get_flops`` tool reports.
* **params (M)**: every parameter of the detector (frozen ones included).
* **memory**: on CUDA, ``torch.cuda.max_memory_allocated`` during the iterations minus the
  memory allocated before them. On the CPU, in a fresh subprocess per variant (so nothing
  that ran before, another variant or the allocator's cache, is in it): the kernel's
  high-water mark of the process's resident set (``VmHWM``, reset to the current RSS through
  ``/proc/self/clear_refs`` right before the first iteration, Linux >= 4.0) after
  ``1 + --memory-iters`` iterations minus the resident set before them (``VmRSS``). It
  covers activations, gradients and the optimizer state made on the first step; the model
  and the inputs are already there before. The subprocess runs with glibc's
  ``MALLOC_MMAP_THRESHOLD_=65536``, so freed tensors leave the resident set at once and
  the number repeats to the MB (with the adaptive default it swings by ~5-8 %).
  ``--no-memory`` skips it.

Variants (``ugs`` options of ``UGSFCOSHead``; unlisted options are the config's):

=============  =====================================  ======================================
name           what                                   ugs options
=============  =====================================  ======================================
baseline       FCOS, mmdet's ``FCOSHead``             (FCOS config)
ce_in          + CE on the IN grid (Eq. 8-11)         ``lam=0, gamma=0``
ce_in_um       + UM (Eq. 12)                          ``gamma=0``
ugs            + UR (Eq. 14-16), full UGS             (the UGS config)
=============  =====================================  ======================================

``--extra-variant NAME='{"refine_every": 2}'`` adds a variant with more ugs options (merged
over the UGS config's), e.g. to measure an approximation of the refinement step. The report
also gives the cost of ``refine_every = k`` amortised from the ``ce_in_um`` and ``ugs`` rows.

Settings: ``paper`` is the configs as written (FCOS R-50 caffe FPN, GN head of 256 channels
and 4 convs), 1333x800, batch 2: the paper's Table 5 setting (Sec. 4.5); ``quick`` is the
kit's quick profile (ResNet-18, 64 channels, 2 convs, 256 px, batch 4). On a CPU the absolute
times mean little; the ratios UGS / baseline are the result. The backbone is randomly
initialised (no download); that does not change the cost.

Examples::

    python benchmarks/training_cost.py --setting quick --repeats 5 --warmup 1
    python benchmarks/training_cost.py --setting paper --repeats 3 --warmup 1
    python benchmarks/training_cost.py --setting paper --device cuda --repeats 20 --warmup 5

Writes ``--out`` (default ``outputs/benchmarks/training_cost_<setting>.json``).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import os.path as osp
import platform
import re
import statistics
import subprocess
import sys
import time
from typing import Dict, Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

FCOS_CFG = osp.join(ROOT, "configs", "fcos", "fcos_r50_fpn_1x_visdrone.py")
UGS_CFG = osp.join(ROOT, "configs", "fcos", "fcos_r50_fpn_ugs_1x_visdrone.py")

#: name -> (config, ugs options merged over the config's, what it is)
VARIANTS = {
    "baseline": (FCOS_CFG, None, "FCOS"),
    "ce_in": (UGS_CFG, dict(lam=0.0, gamma=0.0), "w/ UGS: CE + IN"),
    "ce_in_um": (UGS_CFG, dict(gamma=0.0), "w/ UGS: CE + IN + UM"),
    "ugs": (UGS_CFG, {}, "w/ UGS: CE + IN + UM + UR (full)"),
}
#: the setting's image (width, height) before padding, images per iteration, and the ground
#: truth drawn per image: count, median sqrt(area) in pixels, clip range
SETTINGS = {
    "paper": dict(profile="paper", image=(1333, 800), batch=2, boxes=60, median=20.0,
                  clip=(4.0, 128.0)),
    "quick": dict(profile="quick", image=(256, 256), batch=4, boxes=16, median=15.0,
                  clip=(4.0, 96.0)),
}
SIZE_DIVISOR = 32       # the detectors' data preprocessor pads to this
#: the issue's goals: (label, measured key, variant, limit in %, strict '<')
GOALS = (
    ("full UGS training time overhead <= +15% (aim +10%)", "time", "ugs", 15.0, False),
    ("without the refinement step (CE + IN + UM) time overhead < +3%", "time", "ce_in_um",
     3.0, True),
    ("inference FLOPs overhead <= +0.6%", "gflops", "ugs", 0.6, False),
    ("parameter overhead < +1%", "params_m", "ugs", 1.0, True),
)


# ------------------------------------------------------------------------------ building

def _register():
    from mmdet.utils import register_all_modules

    import ugs.openmmlab.runtime  # noqa: F401  (the UGS heads)

    register_all_modules(init_default_scope=True)


def variant_config(setting: str, config: str, ugs: Optional[dict]):
    """The merged model config of one variant (a ``mmengine.Config``)."""
    from ugs.openmmlab.train import build_config

    s = SETTINGS[setting]
    cfg = build_config(config, profile=s["profile"], image_size=max(s["image"]),
                       work_dir=osp.join(ROOT, "work_dirs", "training_cost"))
    cfg.model.backbone.init_cfg = None        # no pretrained download: cost is the same
    if ugs is not None:
        cfg.model.bbox_head.ugs = dict(cfg.model.bbox_head.get("ugs", {}), **ugs)
    return cfg


def build_detector(setting: str, variant: str, extra: Optional[dict] = None, seed: int = 0):
    """(detector in train mode, its config) for ``variant`` (a key of VARIANTS or ``extra``)."""
    from mmdet.registry import MODELS
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance().setLevel(logging.WARNING)   # init_weights' report
    _register()
    config, ugs, _ = (extra or {}).get(variant) or VARIANTS[variant]
    cfg = variant_config(setting, config, ugs)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    return model, cfg


def padded_shape(setting: str):
    """(H, W) of the network input: the image padded to a multiple of 32."""
    w, h = SETTINGS[setting]["image"]
    return (math.ceil(h / SIZE_DIVISOR) * SIZE_DIVISOR, math.ceil(w / SIZE_DIVISOR) * SIZE_DIVISOR)


def make_batch(setting: str, device: str = "cpu", seed: int = 0):
    """Seeded random images ``(B, 3, H, W)`` (already normalised) and data samples with
    VisDrone-like ground truth: ``boxes`` per image, sqrt(area) log-normal around ``median``
    px (sigma 0.6, clipped), aspect ratio log-normal (sigma 0.4), anywhere in the image,
    10 classes."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    s = SETTINGS[setting]
    w, h = s["image"]
    ph, pw = padded_shape(setting)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(s["batch"], 3, ph, pw, generator=g)
    images[..., h:, :] = 0                     # the padding, as the preprocessor leaves it
    images[..., :, w:] = 0
    samples = []
    for _ in range(s["batch"]):
        n = s["boxes"]
        side = (math.log(s["median"]) + 0.6 * torch.randn(n, generator=g)).exp()
        side = side.clamp(*s["clip"])
        aspect = (0.4 * torch.randn(n, generator=g)).exp()
        bw = (side * aspect.sqrt()).clamp(max=w - 1)
        bh = (side / aspect.sqrt()).clamp(max=h - 1)
        x0 = torch.rand(n, generator=g) * (w - bw)
        y0 = torch.rand(n, generator=g) * (h - bh)
        d = DetDataSample()
        d.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(ph, pw),
                            batch_input_shape=(ph, pw), scale_factor=(1.0, 1.0)))
        d.gt_instances = InstanceData(
            bboxes=torch.stack([x0, y0, x0 + bw, y0 + bh], 1).to(device),
            labels=torch.randint(0, 10, (n,), generator=g).to(device))
        d.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4, device=device),
                                           labels=torch.zeros(0, dtype=torch.long, device=device))
        samples.append(d)
    return images.to(device), samples


def make_optimizer(model, cfg):
    """The config's SGD (momentum, weight decay) at its first warm-up iteration's lr (the
    warm-up's start factor, linear or constant, times the base lr)."""
    opt = cfg.optim_wrapper.optimizer
    start = 1.0
    for sched in cfg.get("param_scheduler", []) or []:
        kind = str(sched.get("type", ""))
        if kind.endswith("LinearLR"):                # LinearLR, the quick profile's EpochFractionLinearLR
            start = sched.get("start_factor", 1.0)
        elif kind.endswith("ConstantLR"):            # FCOS's constant warm-up
            start = sched.get("factor", 1.0)
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=opt.lr * start, momentum=opt.get("momentum", 0.9),
                           weight_decay=opt.get("weight_decay", 0.0))


def train_step(model, optimizer, images, samples) -> float:
    """One iteration: forward + losses + backward + SGD step; returns the total loss."""
    losses = model.loss(images, samples)
    loss, _ = model.parse_losses(losses)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


# ------------------------------------------------------------------------------ measuring

def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model, setting: str, device: str = "cpu"):
    """(total, per-module dict) of inference FLOPs (multiply-adds) for one image, tensor
    mode, counted by mmengine's FlopAnalyzer (see the module docstring)."""
    from mmengine.analysis import FlopAnalyzer

    h, w = padded_shape(setting)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, h, w, device=device)
    analyzer = FlopAnalyzer(model, (x,))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analyzer.total()
        by_module = dict(analyzer.by_module())
    model.train(was_training)
    return total, by_module


def pyramid_sizes(setting: str, strides=(8, 16, 32, 64, 128)):
    """(H_i, W_i) of the head's levels for the setting's padded input (FPN with P6/P7 from
    stride-2 convs: ceil halving from the stride-32 map)."""
    h, w = padded_shape(setting)
    sizes = []
    for s in strides:
        if s <= SIZE_DIVISOR:
            sizes.append((h // s, w // s))
        else:
            ph, pw = sizes[-1]
            sizes.append(((ph + 1) // 2, (pw + 1) // 2))
    return sizes


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def measure_memory_here(model, optimizer, images, samples, device: str, iters: int) -> dict:
    """Peak memory of ``1 + iters`` iterations in this process (see the module docstring)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(1 + iters):
            train_step(model, optimizer, images, samples)
        torch.cuda.synchronize()
        return dict(peak_mb=(torch.cuda.max_memory_allocated() - before) / 2 ** 20,
                    method="torch.cuda.max_memory_allocated - memory_allocated before")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")             # Linux: reset the peak RSS (VmHWM) to the current RSS
    before = _rss_kb("VmRSS")
    if _rss_kb("VmHWM") > before + 1024:
        raise RuntimeError("could not reset the peak RSS (/proc/self/clear_refs)")
    for _ in range(1 + iters):
        train_step(model, optimizer, images, samples)
    peak = _rss_kb("VmHWM")
    return dict(peak_mb=(peak - before) / 1024, rss_before_mb=before / 1024,
                peak_rss_mb=peak / 1024,
                malloc_mmap_threshold=os.environ.get("MALLOC_MMAP_THRESHOLD_"),
                method="VmHWM after the iterations - VmRSS before them (peak reset through "
                       "/proc/self/clear_refs), fresh subprocess")


def _memory_worker(args) -> int:
    """Subprocess entry: build one variant, measure its memory, print one JSON line."""
    extra = _parse_extra(args.extra_variant)
    model, cfg = build_detector(args.setting, args.memory_worker, extra, seed=args.seed)
    model.to(args.device)
    images, samples = make_batch(args.setting, args.device, seed=args.seed)
    optimizer = make_optimizer(model, cfg)
    mem = measure_memory_here(model, optimizer, images, samples, args.device,
                              args.memory_iters)
    print("MEMORY_JSON " + json.dumps(mem))
    return 0


def measure_memory_subprocess(args, variant: str) -> dict:
    cmd = [sys.executable, osp.abspath(__file__), "--setting", args.setting, "--device",
           args.device, "--seed", str(args.seed), "--threads", str(args.threads),
           "--memory-iters", str(args.memory_iters),
           "--memory-worker", variant]
    for e in args.extra_variant or []:
        cmd += ["--extra-variant", e]
    # glibc: a fixed mmap threshold returns every freed block of 64 KiB or more to the kernel
    # at once, so the resident set follows the live tensors (with the default, adaptive
    # threshold, freed blocks stay cached and the peak swings by several percent run to run)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(64 * 1024))
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("MEMORY_JSON "):
            return json.loads(line[len("MEMORY_JSON "):])
    raise RuntimeError(f"memory subprocess for {variant} failed:\n{out.stderr[-3000:]}")


def time_variants(models: Dict[str, tuple], images, samples, device: str, warmup: int,
                  repeats: int, log=print):
    """Round-robin timing: every round runs each variant once, the order rotating.
    Returns ``({name: timed seconds}, {name: loss of every iteration})``."""
    names = list(models)
    times = {n: [] for n in names}
    losses = {n: [] for n in names}
    for r in range(warmup + repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            model, optimizer = models[name]
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = train_step(model, optimizer, images, samples)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            losses[name].append(loss)
            if r >= warmup:
                times[name].append(dt)
            log(f"  round {r + 1}/{warmup + repeats}{' (warm-up)' if r < warmup else ''}: "
                f"{name:<12s} {dt:8.3f} s  loss {loss:.4f}")
    return times, losses


# ------------------------------------------------------------------------------ reporting

def paper_ratios() -> dict:
    """Table 5's UGS / baseline ratios, read from papers_tables (never retyped)."""
    from ugs.papers import load_table

    t = load_table(5)
    out = {}
    for col, key in (("time_s_per_batch", "time"), ("GFLOPs", "gflops"), ("params_M", "params_m")):
        base, ugs = t.value("fcos", col), t.value("fcos_ugs", col)
        out[key] = dict(baseline=base, ugs=ugs, ratio=ugs / base)
    out["AP"] = dict(baseline=t.value("fcos", "AP"), ugs=t.value("fcos_ugs", "AP"))
    return out


def goal_checks(results: dict) -> list:
    base = results["baseline"]
    checks = []
    for label, key, variant, limit, strict in GOALS:
        if variant not in results or results[variant].get(key) is None:
            continue
        pct = 100.0 * (results[variant][key] / base[key] - 1.0)
        ok = pct < limit if strict else pct <= limit
        checks.append(dict(goal=label, variant=variant, measure=key, overhead_pct=pct,
                           limit_pct=limit, passed=bool(ok)))
        if key == "time":
            checks[-1]["overhead_pct_min"] = 100.0 * (results[variant]["time_min"]
                                                      / base["time_min"] - 1.0)
    return checks


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def print_report(res: dict) -> None:
    results, names = res["results"], list(res["results"])
    base = results["baseline"]
    print()
    print(f"Training cost, setting {res['setting']!r}: {res['image']} px, batch {res['batch']}, "
          f"device {res['device']}, {res['threads']} thread(s), median of {res['repeats']} "
          f"iterations after {res['warmup']} warm-up (interleaved)")
    if res.get("focal_loss"):
        print(f"focal loss: {res['focal_loss']}")
    print(f"{'variant':<12s} {'s/iter':>9s} {'min':>8s} {'max':>8s} {'GFLOPs':>9s} "
          f"{'params M':>9s} {'mem MB':>8s}   what")
    for n in names:
        r = results[n]
        print(f"{n:<12s} {_fmt(r['time'], '9.3f')} {_fmt(r['time_min'], '8.3f')} "
              f"{_fmt(r['time_max'], '8.3f')} {_fmt(r['gflops'], '9.2f')} "
              f"{_fmt(r['params_m'], '9.3f')} {_fmt(r.get('memory_mb'), '8.0f')}   {r['what']}")
    print()
    print("ratios UGS / baseline (overhead); 'time min' compares the fastest iterations "
          "(load from other processes only adds time)")
    print(f"{'variant':<12s} {'time':>16s} {'time min':>16s} {'GFLOPs':>16s} {'params':>16s} "
          f"{'memory':>16s}")
    for n in names[1:]:
        cells = []
        for key in ("time", "time_min", "gflops", "params_m", "memory_mb"):
            a, b = results[n].get(key), base.get(key)
            cells.append("-" if a is None or not b else f"{a / b:.4f} ({100 * (a / b - 1):+.2f}%)")
        print(f"{n:<12s} " + " ".join(f"{c:>16s}" for c in cells))
    if "ugs" in results and "ce_in_um" in results:
        t0, t1 = results["ce_in_um"]["time"], results["ugs"]["time"]
        print("refine_every = k (option, off by default), amortised from the ce_in_um and ugs "
              "rows, ((k - 1) * t(ce_in_um) + t(ugs)) / k:")
        print("  " + ", ".join(f"k={k}: {((k - 1) * t0 + t1) / k / base['time']:.4f} "
                               f"({100 * (((k - 1) * t0 + t1) / k / base['time'] - 1):+.2f}%)"
                               for k in (2, 3, 4)))
    p = res["paper_table5"]
    print()
    print("paper, Table 5 (FCOS R-50, RTX 3090, 1333x800, batch 2), read from papers_tables:")
    for key, label in (("time", "time s/batch"), ("gflops", "GFLOPs"), ("params_m", "params M")):
        q = p[key]
        print(f"  {label:<13s} {q['baseline']:>8g} -> {q['ugs']:>8g}   ratio {q['ratio']:.4f} "
              f"({100 * (q['ratio'] - 1):+.2f}%)")
    print()
    print("goal checks (measured):")
    for c in res["goal_checks"]:
        extra = (f" (fastest iterations: {c['overhead_pct_min']:+.2f}%)"
                 if "overhead_pct_min" in c else "")
        print(f"  [{'PASS' if c['passed'] else 'FAIL'}] {c['goal']}: {c['variant']} "
              f"{c['measure']} {c['overhead_pct']:+.2f}%{extra}")


# ------------------------------------------------------------------------------ main

def _parse_extra(items) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--extra-variant: expected NAME=JSON, got {item!r}")
        name, opts = item.split("=", 1)
        if name in VARIANTS:
            raise SystemExit(f"--extra-variant: {name!r} is a built-in variant")
        out[name] = (UGS_CFG, json.loads(opts), f"w/ UGS + {opts}")
    return out


def run(args) -> dict:
    device = args.device
    extra = _parse_extra(args.extra_variant)
    names = list(args.variants or VARIANTS) + list(extra)
    if names[0] != "baseline":
        names = ["baseline"] + [n for n in names if n != "baseline"]
    catalogue = dict(VARIANTS, **extra)
    s = SETTINGS[args.setting]
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, {platform.machine()}, device {device}")
    images, samples = make_batch(args.setting, device, seed=args.seed)
    models, results = {}, {}
    for n in names:
        model, cfg = build_detector(args.setting, n, extra, seed=args.seed)
        flops, by_module = count_flops(model, args.setting)
        model.to(device)
        models[n] = (model, make_optimizer(model, cfg))
        head = cfg.model.bbox_head
        results[n] = dict(what=catalogue[n][2], head=head.type, ugs=head.get("ugs"),
                          params=count_params(model), params_m=count_params(model) / 1e6,
                          flops=flops, gflops=flops / 1e9,
                          flops_conv_reg=by_module.get("bbox_head.conv_reg"))
        print(f"built {n:<12s} ({head.type}, ugs={head.get('ugs')}): "
              f"{results[n]['params_m']:.3f} M params, {results[n]['gflops']:.2f} GFLOPs")
    print(f"timing: {args.warmup} warm-up + {args.repeats} timed rounds over {len(names)} variants")
    times, losses = time_variants(models, images, samples, device, args.warmup, args.repeats)
    for n in names:
        t = times[n]
        every = (results[n]["ugs"] or {}).get("refine_every", 1)
        # refine_every = k > 1 alternates iterations with and without the refinement step:
        # its cost is the mean (exact over a multiple of k timed iterations), not the median
        central = statistics.mean if every > 1 else statistics.median
        results[n].update(time=central(t), time_stat=central.__name__,
                          time_min=min(t), time_max=max(t), times=t, losses=losses[n])
        if every > 1 and len(t) % every:
            print(f"note: {n} has refine_every={every}; --repeats {len(t)} is not a multiple, "
                  f"so its mean time is biased")
    del models
    if not args.no_memory:
        for n in names:
            if device.startswith("cuda"):
                model, cfg = build_detector(args.setting, n, extra, seed=args.seed)
                model.to(device)
                mem = measure_memory_here(model, make_optimizer(model, cfg), images, samples,
                                          device, args.memory_iters)
                del model
                torch.cuda.empty_cache()
            else:
                mem = measure_memory_subprocess(args, n)
            results[n]["memory_mb"] = mem["peak_mb"]
            results[n]["memory"] = mem
            print(f"memory {n:<12s} {mem['peak_mb']:.0f} MB")
    res = dict(setting=args.setting, device=device, image=f"{s['image'][0]}x{s['image'][1]}",
               padded_input=list(padded_shape(args.setting)), batch=s["batch"],
               boxes_per_image=s["boxes"], repeats=args.repeats, warmup=args.warmup,
               seed=args.seed, threads=torch.get_num_threads(), torch=torch.__version__,
               focal_loss=getattr(args, "focal_loss", None),
               flop_counter="mmengine.analysis.FlopAnalyzer (fvcore rules: 1 multiply-add = 1 "
                            "FLOP; no biases or elementwise ops)",
               memory_method=("torch.cuda.max_memory_allocated delta" if device.startswith("cuda")
                              else "VmHWM - VmRSS before, peak reset, fresh subprocess per "
                                   "variant, MALLOC_MMAP_THRESHOLD_=65536"),
               results=results, paper_table5=paper_ratios())
    res["goal_checks"] = goal_checks(results)
    return res


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="quick")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=3, help="timed iterations per variant")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations per variant first")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                    help="built-in variants to run (baseline is always included)")
    ap.add_argument("--extra-variant", action="append", metavar="NAME=JSON",
                    help="an extra UGS variant: ugs options as JSON over the UGS config's")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    ap.add_argument("--memory-iters", type=int, default=1,
                    help="iterations after the first in the memory measurement")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads for torch (default 1: with 2 threads on a shared 2-core "
                         "machine, one preempted thread stalls the other and times swing "
                         "several-fold); 0 keeps torch's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out",
                    help="JSON path (default outputs/benchmarks/training_cost_<setting>.json)")
    ap.add_argument("--memory-worker", help=argparse.SUPPRESS)
    ap.add_argument("--pytorch-focal-loss", action="store_true",
                    help="mmcv without CUDA ops: FCOS's focal loss in PyTorch for both arms "
                         "(benchmarks/torch_fallbacks.py); recorded in the output")
    ap.add_argument("--mmcv-cuda-ops", metavar="SRC",
                    help="mmcv without CUDA ops: build mmcv's own CUDA focal-loss kernel from its source "
                         "release SRC and use it for both arms (benchmarks/mmcv_cuda_ops.py); recorded "
                         "in the output")
    ap.add_argument("--mmcv-cuda-build-dir", default=None,
                    help="build folder for --mmcv-cuda-ops (default: mmcv_cuda_ops.py's)")
    args = ap.parse_args(argv)
    if args.pytorch_focal_loss and args.mmcv_cuda_ops:
        ap.error("--pytorch-focal-loss and --mmcv-cuda-ops: give one")
    args.focal_loss = "as installed (mmcv's sigmoid_focal_loss)"
    if args.pytorch_focal_loss:
        from torch_fallbacks import use_pytorch_focal_loss
        use_pytorch_focal_loss()
        args.focal_loss = "PyTorch (benchmarks/torch_fallbacks.py sigmoid_focal_loss)"
    elif args.mmcv_cuda_ops:
        from paper_step import install_mmcv_cuda_ops
        installed = install_mmcv_cuda_ops(args.mmcv_cuda_ops, args.mmcv_cuda_build_dir)
        if "sigmoid_focal_loss" not in installed:
            ap.error(f"--mmcv-cuda-ops {args.mmcv_cuda_ops}: mmcv's CUDA sigmoid_focal_loss was not built "
                     f"(built: {installed or 'none'}); see the build folder's logs")
        args.focal_loss = "mmcv's CUDA kernel, built from " + os.path.basename(args.mmcv_cuda_ops)
    if args.repeats < 1 or args.warmup < 0:
        ap.error("--repeats must be >= 1 and --warmup >= 0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.memory_worker:
        return _memory_worker(args)
    res = run(args)
    print_report(res)
    out = args.out or osp.join(ROOT, "outputs", "benchmarks", f"training_cost_{args.setting}.json")
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
