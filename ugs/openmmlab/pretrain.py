"""The CPU study's backbone pretraining: ResNet-18 trained to classify object crops of a synthetic
set of its own, the stand-in for the paper's ImageNet weights (issue 16).

    python -m ugs.openmmlab.pretrain                    # -> work_dirs/study/pretrained/resnet18_synthetic.pth
    python -m ugs.openmmlab.pretrain --images 800 --epochs 3 --out work_dirs/study/pretrained

Why: the paper fine-tunes ImageNet-pretrained backbones for 12 (24) epochs. The quick profile
trains ResNet-18 from scratch (nothing can be downloaded), and the study's pilot showed that its
FCOS has not plateaued after 48 epochs (``benchmarks/results/study_pilot``): a study of 12 arms x 5
seeds trained to a plateau from scratch does not fit in a night on 2 cores. So the study starts
every arm's backbone from the same weights, learnt on a task no arm is compared on:

* data: a synthetic set generated with **seed 1** (the study trains and validates on seed 0's
  set: no image is shared), ``--images`` training and a fifth as many validation images;
* task: 11-way classification of 32x32 crops: each annotated object (VisDrone classes 1-10) as a
  square crop centred on its box, side twice its longer side (16 to 128 px, some context), and
  half as many background crops (class 0) of the same sizes whose square overlaps no annotation
  line of the image (objects, "others" and ignored regions);
* model: mmdet's ``ResNet(depth=18)`` exactly as the quick profile builds it, global average
  pooling, one linear layer; SGD (momentum 0.9, weight decay 1e-4), batch 128, a cosine rate from
  0.1, horizontal flips; seeded;
* output: ``resnet18_synthetic.pth`` holds ``{"state_dict": <the backbone's>, "meta": ...}``
  (what mmengine's ``Pretrained`` initialisation reads), ``pretrain.json`` the command, the
  accuracy after each epoch and the time.

Every study arm loads it with ``model.backbone.init_cfg = dict(type='Pretrained', checkpoint=...)``
(``ugs.openmmlab.study``), so all arms start from identical weights and a comparison still
changes one thing.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import json
import math
import pathlib
import shlex
import sys
import time
from typing import Tuple

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
CROP = 32           #: input side of a crop
SEED = 1            #: the pretraining set's generator seed (the study's data: seed 0)


def _square(cx: float, cy: float, side: float, W: int, H: int) -> Tuple[int, int, int]:
    """A square of ``side`` centred on (cx, cy), shifted to lie inside the image."""
    s = int(round(min(side, W, H)))
    x0 = int(round(min(max(cx - s / 2, 0), W - s)))
    y0 = int(round(min(max(cy - s / 2, 0), H - s)))
    return x0, y0, s


def crops(split_dir: pathlib.Path, rng: np.random.Generator, background_ratio: float = 0.5):
    """``(images uint8 N x 3 x CROP x CROP, labels int64 N)`` of one split (see the module
    docstring)."""
    import cv2

    from ugs.data.visdrone import read_visdrone_annotation

    xs, ys = [], []
    for ann in sorted((split_dir / "annotations").glob("*.txt")):
        img = cv2.imread(str(split_dir / "images" / (ann.stem + ".jpg")))
        if img is None:
            raise FileNotFoundError(f"{split_dir / 'images' / (ann.stem + '.jpg')}: missing or unreadable")
        img = img[..., ::-1]
        H, W = img.shape[:2]
        lines = read_visdrone_annotation(ann)
        sides = []
        for r in lines:
            if not 1 <= r.category <= 10 or r.width <= 0 or r.height <= 0:
                continue
            side = min(max(2 * max(r.width, r.height), 16), 128)
            x0, y0, s = _square(r.left + r.width / 2, r.top + r.height / 2, side, W, H)
            xs.append(cv2.resize(img[y0:y0 + s, x0:x0 + s], (CROP, CROP), interpolation=cv2.INTER_AREA))
            ys.append(r.category)
            sides.append(side)
        boxes = np.array([(r.left, r.top, r.left + r.width, r.top + r.height) for r in lines],
                         dtype=np.float64).reshape(-1, 4)
        want, tries = int(round(background_ratio * len(sides))), 0
        while want > 0 and sides and tries < 50 * len(sides):
            tries += 1
            side = float(rng.choice(sides))
            x0, y0, s = _square(rng.uniform(0, W), rng.uniform(0, H), side, W, H)
            if len(boxes) and ((boxes[:, 0] < x0 + s) & (boxes[:, 2] > x0) &
                               (boxes[:, 1] < y0 + s) & (boxes[:, 3] > y0)).any():
                continue
            xs.append(cv2.resize(img[y0:y0 + s, x0:x0 + s], (CROP, CROP), interpolation=cv2.INTER_AREA))
            ys.append(0)
            want -= 1
    if not xs:
        raise ValueError(f"{split_dir}: no annotated object to crop")
    return np.stack(xs).transpose(0, 3, 1, 2).copy(), np.array(ys, dtype=np.int64)


class Classifier:
    """mmdet's ResNet-18 as the quick profile builds it, average pooling, a linear layer."""

    def __init__(self, num_classes: int = 11):
        import torch.nn as nn
        from mmdet.models.backbones import ResNet
        from mmengine.logging import MMLogger

        from .train import _quick_backbone

        spec = {k: v for k, v in _quick_backbone().items() if k not in ("type", "init_cfg")}
        spec["out_indices"] = (3,)
        self.backbone = ResNet(**spec)
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)     # mmengine logs every parameter it initialised
        try:
            self.backbone.init_weights()
        finally:
            logger.setLevel(level)
        self.fc = nn.Linear(512, num_classes)
        self.modules = nn.ModuleList([self.backbone, self.fc])

    def __call__(self, x):
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


def _normalise(x):
    import torch
    from .train import QUICK_MEAN, QUICK_STD    # the quick profile's preprocessor
    mean = torch.tensor(QUICK_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(QUICK_STD).view(1, 3, 1, 1)
    return (x.float() - mean) / std


def accuracy(model: Classifier, x, y, batch: int = 512) -> float:
    import torch
    model.modules.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            right += int((model(_normalise(x[i:i + batch])).argmax(1) == y[i:i + batch]).sum())
    return right / len(x)


def pretrain(out: pathlib.Path, *, images: int = 800, epochs: int = 3, data_root: pathlib.Path = None,
             seed: int = 0, lr: float = 0.1, batch: int = 128) -> dict:
    import torch

    from ugs.data.synthetic import generate_synthetic

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data_root = data_root or out / "data"
    meta_file = data_root / "meta.json"
    params = dict(num_train=images, num_val=max(images // 5, 1), seed=SEED)
    if not meta_file.is_file() or any(json.loads(meta_file.read_text())["parameters"].get(k) != v
                                       for k, v in params.items()):
        print(f"generating the pretraining set (seed {SEED}, {images} + {params['num_val']} images) "
              f"in {data_root}", flush=True)
        generate_synthetic(data_root, image_size=256, **params)
    xtr, ytr = crops(data_root / "train", rng)
    xva, yva = crops(data_root / "val", rng)
    print(f"crops: {len(xtr)} training, {len(xva)} validation (32x32; class counts "
          f"{np.bincount(ytr, minlength=11).tolist()})", flush=True)
    xtr, ytr, xva, yva = map(torch.from_numpy, (xtr, ytr, xva, yva))
    model = Classifier()
    opt = torch.optim.SGD(model.modules.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    steps = epochs * math.ceil(len(xtr) / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
    history = []
    for epoch in range(1, epochs + 1):
        model.modules.train()
        order = torch.randperm(len(xtr))
        total, n = 0.0, 0
        for i in range(0, len(xtr), batch):
            idx = order[i:i + batch]
            x = xtr[idx]
            flip = torch.rand(len(idx)) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = torch.nn.functional.cross_entropy(model(_normalise(x)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + float(loss) * len(idx), n + len(idx)
        acc = accuracy(model, xva, yva)
        history.append(dict(epoch=epoch, train_loss=round(total / n, 4), val_accuracy=round(acc, 4)))
        print(f"epoch {epoch}/{epochs}: training loss {total / n:.3f}, validation accuracy {acc:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    record = dict(command=shlex.join(["python", "-m", "ugs.openmmlab.pretrain", *sys.argv[1:]]),
                  images=images, epochs=epochs, seed=seed, data_seed=SEED, crop=CROP, lr=lr, batch=batch,
                  train_crops=len(xtr), val_crops=len(xva),
                  chance_accuracy=round(float(torch.bincount(yva).max()) / len(yva), 4),
                  history=history, seconds=round(time.perf_counter() - t0, 1))
    # the file holds what makes the weights, not how this sitting ran (its command, its time): on
    # one machine the same settings give the same bytes. Another machine's floating point gives
    # other weights (session 12's were not session 10's: 0.976 against 0.980 validation accuracy),
    # which is why the study's own weights are committed (ugs.openmmlab.study.SETTINGS)
    weights = out / "resnet18_synthetic.pth"
    torch.save(dict(state_dict=model.backbone.state_dict(),
                    meta={k: v for k, v in record.items() if k not in ("command", "seconds")}), weights)
    record["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (out / "pretrain.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ugs.openmmlab.pretrain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="work_dirs/study/pretrained")
    ap.add_argument("--images", type=int, default=800, help="training images of the pretraining set")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=None, help="where the pretraining set is generated (default OUT/data)")
    args = ap.parse_args(argv)
    if args.images < 1 or args.epochs < 1:
        ap.error("--images and --epochs must be >= 1")
    out = pathlib.Path(args.out)
    if not out.is_absolute():
        out = ROOT / out
    data = None if args.data_root is None else ROOT / args.data_root
    r = pretrain(out, images=args.images, epochs=args.epochs, seed=args.seed, data_root=data)
    print(f"validation accuracy {r['history'][-1]['val_accuracy']:.3f} (chance {r['chance_accuracy']:.3f}) "
          f"in {r['seconds'] / 60:.1f} min; weights: {out / 'resnet18_synthetic.pth'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
