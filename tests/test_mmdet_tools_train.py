"""The README's "UGS in your own OpenMMLab project" recipe, run as a user would run it: the
config block of the README (marked ``<!-- user-config -->``), plus only what a user with data
sets anyway, trained by mmdet's own ``tools/train.py`` (shipped inside the mmdet wheel) in a
subprocess, with no kit entry point: ``ugs`` is found through ``custom_imports`` alone
(the kit is pip-installed editable). Two iterations of R-50 FCOS w/ UGS at 256 px on the CPU.
"""
import glob
import json
import math
import os
import re
import subprocess
import sys
import time

import pytest

mmdet = pytest.importorskip("mmdet")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
KIT_FCOS_UGS = os.path.join(ROOT, "configs", "fcos", "fcos_r50_fpn_ugs_1x_visdrone.py")
MARKER = "<!-- user-config -->"
TRAIN_PY = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "tools", "train.py")
UGS_TERMS = ("loss_ce", "loss_um", "loss_ur")


def readme_user_config() -> str:
    """The fenced python block directly after the README's ``<!-- user-config -->`` marker."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    if MARKER not in text:
        pytest.fail(f"README.md has no {MARKER!r} marker (the 'UGS in your own OpenMMLab "
                    "project' section's user config)")
    m = re.match(r"\s*```python[ \t]*\n(.*?)\n```", text.split(MARKER, 1)[1], re.S)
    if m is None:
        pytest.fail(f"README.md: {MARKER!r} is not directly followed by a ```python block")
    return m.group(1) + "\n"


def env_settings(data_root: str, classes) -> str:
    """What the test environment needs that a user with data would set themselves: their data
    (the tiny synthetic set), its classes, the run's size (2 images at 256 px, batch 1, one
    epoch = 2 iterations, no validation), no pretrained weights (no download here), log every
    iteration."""
    return f"""
# ---- appended by tests/test_mmdet_tools_train.py: the user's data and run size ----
model['bbox_head'].update(num_classes={len(classes)})
model.update(backbone=dict(init_cfg=None))
train_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={data_root!r}, ann_file='annotations/train.json',
                 data_prefix=dict(img='train/images/'), metainfo=dict(classes={tuple(classes)!r}),
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='LoadAnnotations', with_bbox=True),
                           dict(type='Resize', scale=(256, 256), keep_ratio=True),
                           dict(type='RandomFlip', prob=0.5),
                           dict(type='PackDetInputs')]))
train_cfg = dict(max_epochs=1)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
"""


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    """2 training images (and 1 validation image, unused) of the kit's synthetic set at 256 px,
    converted to COCO JSON (``annotations/train.json``, images in ``train/images/``)."""
    from ugs.data import CATEGORY_NAMES, make_synthetic_set

    root = tmp_path_factory.mktemp("tiny_coco")
    make_synthetic_set(root, num_train=2, num_val=1, image_size=256, seed=5)
    with open(root / "annotations" / "train.json", encoding="utf-8") as f:
        coco = json.load(f)
    assert len(coco["images"]) == 2 and coco["annotations"]
    return str(root), CATEGORY_NAMES


def write_config(tmp_path, tiny_coco, *, drop_custom_imports=False) -> str:
    user = readme_user_config()
    if drop_custom_imports:
        lines = user.splitlines(keepends=True)
        kept = [ln for ln in lines if not ln.lstrip().startswith("custom_imports")]
        assert len(kept) == len(lines) - 1, "the README config has no one-line custom_imports"
        user = "".join(kept)
    path = tmp_path / "my_fcos_ugs.py"
    path.write_text(user + env_settings(*tiny_coco), encoding="utf-8")
    return str(path)


def tools_train(config: str, work_dir: str, cwd: str):
    """mmdet's tools/train.py in a subprocess, from a folder outside the kit."""
    assert os.path.isfile(TRAIN_PY), f"mmdet {mmdet.__version__} ships no {TRAIN_PY}"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, TRAIN_PY, config, "--work-dir", work_dir],
                         capture_output=True, text=True, cwd=cwd, timeout=900,
                         env=dict(os.environ))
    return out, time.perf_counter() - t0


def tail(out, n=6000) -> str:
    return f"exit {out.returncode}\n--- stdout ---\n{out.stdout[-n:]}\n--- stderr ---\n{out.stderr[-n:]}"


def test_readme_config_is_the_kits_fcos_ugs_head(tmp_path):
    # the README's three lines give the head of the kit's FCOS w/ UGS config (Table 1), up to
    # the user's num_classes: same type, same ugs options, no IoU loss, FCOS's other settings
    from mmengine.config import Config

    user_path = tmp_path / "my_fcos_ugs.py"
    user_path.write_text(readme_user_config(), encoding="utf-8")
    user = Config.fromfile(str(user_path), import_custom_modules=False)
    kit = Config.fromfile(KIT_FCOS_UGS, import_custom_modules=False)
    assert user.custom_imports == kit.custom_imports
    head_u, head_k = user.model.bbox_head.to_dict(), kit.model.bbox_head.to_dict()
    assert head_u.pop("loss_bbox") is None and "loss_bbox" not in head_k
    head_u.pop("num_classes"), head_k.pop("num_classes")
    assert head_u == head_k
    assert user.model.backbone == kit.model.backbone and user.model.neck == kit.model.neck


def test_mmdet_tools_train_runs_the_readme_config(tiny_coco, tmp_path):
    config = write_config(tmp_path, tiny_coco)
    work = tmp_path / "work"
    out, seconds = tools_train(config, str(work), cwd=str(tmp_path))
    print(f"mmdet tools/train.py, 2 iterations of FCOS w/ UGS (R-50, 256 px): {seconds:.1f} s")
    assert out.returncode == 0, tail(out)
    log = out.stdout + out.stderr

    # exactly two training iterations, both logged
    scalars = glob.glob(str(work / "*" / "vis_data" / "scalars.json"))
    assert len(scalars) == 1, (scalars, tail(out))
    with open(scalars[0], encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["iter"] for r in train_rows] == [1, 2], rows
    assert re.search(r"Epoch\(train\)\s+\[1\]\[2/2\]", log), tail(out)
    assert not re.search(r"Epoch\(train\)\s+\[\d+\]\[3/", log)

    # UGS's terms are logged and finite; FCOS's IoU loss is gone
    for row in train_rows:
        for key in UGS_TERMS + ("loss_cls", "loss_centerness", "loss"):
            assert key in row, (key, row)
            assert math.isfinite(row[key]), (key, row)
        assert "loss_bbox" not in row, row
        assert row["loss_ur"] > 0 and row["loss_ce"] > 0, row

    # a checkpoint after the epoch, saved at iteration 2
    ckpt = work / "epoch_1.pth"
    assert ckpt.is_file(), sorted(os.listdir(work))
    import torch

    meta = torch.load(ckpt, map_location="cpu")["meta"]
    assert meta["epoch"] == 1 and meta["iter"] == 2, meta


def test_without_custom_imports_the_head_is_unknown(tiny_coco, tmp_path):
    # the same run without the custom_imports line: nothing registers UGSFCOSHead, so the
    # plugin import is what makes the head known to mmdet
    config = write_config(tmp_path, tiny_coco, drop_custom_imports=True)
    out, _ = tools_train(config, str(tmp_path / "work"), cwd=str(tmp_path))
    assert out.returncode != 0, tail(out)
    assert re.search(r"KeyError: .*UGSFCOSHead is not in the mmdet::model registry",
                     out.stderr), tail(out)
