"""Measure the weight that gives a UGS head's localization terms the gradient norm of the
baseline's localization terms at the start of training.

    python -m ugs.openmmlab.loss_balance configs/dino/dino_5scale_r50_24e_visdrone.py \
        configs/dino/dino_5scale_r50_ugs_24e_visdrone.py --data-root data/synthetic \
        --batches 6 --image-scale 0.4 --out benchmarks/results/loss_balance/dino_paper_cpu.json

**The rule** (used for DINO w/ UGS, whose UGS terms sum over 4 coordinates, 6 decoder layers,
the encoder proposals and the denoising queries and so start far larger than the L1 terms
they replace, under DINO's gradient clipping at norm 0.1; and for TPH-YOLOv5 w/ UGS, whose
terms replace YOLOv5's CIoU at its box gain): on the same batches, both models freshly
initialised with the same seed, measure

* ``g_base``: the gradient norm, over all parameters, of the baseline's replaced terms (every
  ``*loss_bbox`` key: DINO's L1, weight 5, in every layer, the encoder and the denoising part;
  TPH-YOLOv5's CIoU);
* ``g_ugs``: the gradient norm of the UGS terms that replace them (every ``*loss_ce`` and
  ``*loss_um`` key, UGS ``loss_weight`` 1, refinement off: ``loss_ur`` is ``gamma`` times the
  same terms on perturbed features and scales with the weight by construction),

and take ``loss_weight = median over batches of g_base / g_ugs``, rounded to two significant
digits. With it, the replacement starts with the same pull on the network as the term it
replaces, so what DINO's clipping keeps of the classification and GIoU gradients is what it
keeps for the baseline. Also reported: each term's share of the total gradient norm.

Both models are built as the chosen profile merges them (``ugs.openmmlab.train.build_config``)
with the backbone's pretrained weights not loaded (no download): the paper starts from an
ImageNet R-50, which a user with the weights can measure with ``--load-pretrained``.
``--image-scale`` multiplies the pipeline's image sizes (the architecture is unchanged; a
TPH-YOLOv5 size is rounded to a multiple of 32), so the paper profile can be measured on a CPU.
TPH-YOLOv5's paper configs carry no anchors until a user fits them: missing anchors are fitted
to the measured training set at the size the model sees, as its quick profile does. The JSON
written with ``--out`` keeps every batch's numbers, the command and the environment.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Dict, List, Sequence

#: the baseline's localization terms that UGS replaces, and the UGS terms replacing them
#: (loss-dict key suffixes, every layer / encoder / denoising prefix included)
BASE_KEYS = ("loss_bbox",)
UGS_KEYS = ("loss_ce", "loss_um")


def select_terms(losses: Dict, suffixes: Sequence[str]):
    """The sum of the loss-dict entries whose key ends with one of ``suffixes``, and the keys."""
    keys = sorted(k for k in losses if k.endswith(tuple(suffixes)))
    if not keys:
        raise KeyError(f"no loss key ends with {list(suffixes)}; keys: {sorted(losses)}")
    total = 0
    for k in keys:
        v = losses[k]
        total = total + (sum(v) if isinstance(v, (list, tuple)) else v)
    return total, keys


def grad_norm(loss, params: List, retain_graph: bool = False) -> float:
    """The 2-norm, over ``params``, of the gradient of ``loss`` (parameters it does not reach
    count as zero)."""
    import torch

    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))


def round_sig(x: float, digits: int = 2) -> float:
    """``x`` rounded to ``digits`` significant digits."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, -int(math.floor(math.log10(abs(x)))) + digits - 1)


def _build(config: str, args, ugs: bool):
    import torch
    from mmdet.registry import MODELS

    from .train import build_config, scale_pipelines

    options = {}
    cfg = build_config(config, profile=args.profile, data_root=args.data_root,
                       work_dir=os.path.join(args.work_dir, "ugs" if ugs else "base"), seed=args.seed,
                       image_size=args.image_size)
    if ugs:
        head = cfg.model.bbox_head
        head.ugs = dict(head.get("ugs") or {}, loss_weight=1.0, gamma=0.0)
        options = dict(head.ugs)
    if cfg.model.type == "YOLODetector":          # TPH-YOLOv5 (mmyolo): its own sizing steps
        from ugs.yolo.profile import fit_missing_anchors, paper_size, set_image_size

        size = paper_size(cfg)
        if args.image_scale != 1.0:
            size = max(32, 32 * round(size * args.image_scale / 32))    # a multiple of the largest stride
            set_image_size(cfg, size)
        # the paper configs carry no anchors until a user fits them to VisDrone: fit them here to
        # the measured set at the size the model sees, as the quick profile and TPH-YOLOv5 do
        fit_missing_anchors(cfg, size, seed=args.seed)
    elif args.image_scale != 1.0:
        scale_pipelines(cfg, args.image_scale)
    if not args.load_pretrained:
        cfg.model.backbone.init_cfg = None
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model.to(args.device).train(), options


def measure(args) -> dict:
    """Run the measurement described in the module docstring; return the record."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.utils import register_all_modules

    import ugs.openmmlab.runtime  # noqa: F401  (registers the UGS modules)

    register_all_modules()          # mmdet's datasets and transforms, mmdet the default scope
    # mmyolo's detector, collate and transforms for TPH-YOLOv5, only while measuring (a caller in
    # the same process, e.g. the tests, keeps its own default scope afterwards)
    with DefaultScope.overwrite_default_scope(Config.fromfile(args.base_config).get("default_scope", "mmdet")):
        return _measure(args)


def _measure(args) -> dict:
    import torch
    from mmengine.runner import Runner

    cfg_b, base, _ = _build(args.base_config, args, ugs=False)
    _, ugs_model, ugs_opts = _build(args.ugs_config, args, ugs=True)
    models = [(name, model, keys, [p for p in model.parameters() if p.requires_grad])
              for name, model, keys in (("base", base, BASE_KEYS), ("ugs", ugs_model, UGS_KEYS))]
    torch.manual_seed(args.seed)
    loader = Runner.build_dataloader(cfg_b.train_dataloader, seed=args.seed)
    rows, t0 = [], time.perf_counter()
    for i, batch in enumerate(loader):
        if i == args.batches:
            break
        row = {"batch": i}
        for name, model, keys, params in models:
            # a copy per model: mmyolo's YOLOv5 head rewrites the batch's boxes in place
            data = model.data_preprocessor(copy.deepcopy(batch), True)
            torch.manual_seed(args.seed + i)          # the same denoising noise for both models
            losses = model.loss(data["inputs"], data["data_samples"])
            loc, loc_keys = select_terms(losses, keys)
            total, _ = model.parse_losses(losses)          # every term, as training sums them
            row[f"{name}_loc_value"] = float(loc)
            row[f"{name}_total_value"] = float(total)
            row[f"{name}_loc_grad_norm"] = grad_norm(loc, params, retain_graph=True)
            row[f"{name}_total_grad_norm"] = grad_norm(total, params)
            row[f"{name}_loc_keys"] = len(loc_keys)
            del data, losses, loc, total                  # free this batch's graph before the next
            if str(args.device).startswith("cuda"):
                torch.cuda.empty_cache()
        row["ratio"] = row["base_loc_grad_norm"] / row["ugs_loc_grad_norm"]
        rows.append(row)
        print(f"batch {i + 1}/{args.batches}: |grad baseline box terms| {row['base_loc_grad_norm']:.4g} "
              f"(share {row['base_loc_grad_norm'] / row['base_total_grad_norm']:.2f}), "
              f"|grad UGS terms| {row['ugs_loc_grad_norm']:.4g} "
              f"(share {row['ugs_loc_grad_norm'] / row['ugs_total_grad_norm']:.2f}), "
              f"ratio {row['ratio']:.4g}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    if len(rows) < args.batches:
        raise SystemExit(f"loss_balance: the training set gave {len(rows)} batches, {args.batches} asked")
    ratio = statistics.median(r["ratio"] for r in rows)
    import mmdet
    import mmengine

    return dict(
        rule="loss_weight = median over batches of |grad L_base_loc| / |grad L_ugs_loc| at initialisation",
        base_config=args.base_config, ugs_config=args.ugs_config, profile=args.profile,
        base_keys=list(BASE_KEYS), ugs_keys=list(UGS_KEYS), ugs_options_measured=ugs_opts,
        image_scale=args.image_scale, batch_size=args.batch_size, batches=args.batches, seed=args.seed,
        pretrained_backbone=bool(args.load_pretrained), device=str(args.device),
        median_ratio=ratio, loss_weight=round_sig(ratio, 2), per_batch=rows,
        command="python -m ugs.openmmlab.loss_balance " + " ".join(args.argv),
        environment=dict(python=platform.python_version(), torch=torch.__version__,
                         mmdet=mmdet.__version__, mmengine=mmengine.__version__,
                         machine=platform.machine(), processor=platform.processor() or None),
        seconds=round(time.perf_counter() - t0, 1))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m ugs.openmmlab.loss_balance",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("base_config", help="the baseline config (its *loss_bbox terms are replaced)")
    ap.add_argument("ugs_config", help="the w/ UGS config (its *loss_ce / *loss_um terms replace them)")
    ap.add_argument("--profile", choices=("paper", "quick"), default="paper")
    ap.add_argument("--data-root", default="data/synthetic")
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--image-scale", type=float, default=1.0,
                    help="multiply the pipeline's image sizes (architecture unchanged)")
    ap.add_argument("--image-size", type=int, default=256, help="quick profile only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--load-pretrained", action="store_true",
                    help="load the config's pretrained backbone (a download, unless cached)")
    ap.add_argument("--pytorch-ops", action="store_true",
                    help="mmcv built without CUDA ops: PyTorch stand-ins (benchmarks/torch_fallbacks.py)")
    ap.add_argument("--work-dir", default="work_dirs/loss_balance")
    ap.add_argument("--out", help="write the record as JSON here")
    args = ap.parse_args(argv)
    args.argv = argv
    for name in ("batches", "batch_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if not args.image_scale > 0:
        ap.error("--image-scale must be > 0")
    for path in (args.base_config, args.ugs_config):
        if not os.path.isfile(path):
            ap.error(f"config {path!r} does not exist")
    if args.pytorch_ops:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "benchmarks"))
        from torch_fallbacks import use_pytorch_ops
        use_pytorch_ops()
    record = measure(args)
    print(f"median ratio {record['median_ratio']:.4g} over {args.batches} batches -> "
          f"loss_weight={record['loss_weight']}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
