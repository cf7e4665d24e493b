"""DINO w/ UGS's loss weight: the rule's pieces (``ugs.openmmlab.loss_balance``) checked on
hand-computable cases, the tool run end to end on a tiny set, and the config's value tied to
the committed measurement it was chosen from."""
import json
import math
import os

import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402

from ugs.openmmlab.loss_balance import grad_norm, main, round_sig, select_terms  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "configs/dino/dino_5scale_r50_24e_visdrone.py")
UGS = os.path.join(ROOT, "configs/dino/dino_5scale_r50_ugs_24e_visdrone.py")


def test_select_terms_takes_every_layer_encoder_and_denoising_copy_of_a_term():
    t = {k: torch.tensor(float(i + 1)) for i, k in enumerate(
        ["loss_cls", "loss_bbox", "loss_iou", "d0.loss_bbox", "enc_loss_bbox", "dn_loss_bbox",
         "d0.dn_loss_bbox", "d0.loss_iou"])}
    total, keys = select_terms(t, ("loss_bbox",))
    assert keys == sorted(["loss_bbox", "d0.loss_bbox", "enc_loss_bbox", "dn_loss_bbox", "d0.dn_loss_bbox"])
    assert float(total) == 2 + 4 + 5 + 6 + 7
    with pytest.raises(KeyError, match="loss_ce"):
        select_terms(t, ("loss_ce",))


def test_grad_norm_and_rounding_by_hand():
    a = torch.tensor([3.0, 0.0], requires_grad=True)
    b = torch.tensor([4.0], requires_grad=True)
    unused = torch.tensor([1.0], requires_grad=True)
    # d/da (a . [1, 2]) = [1, 2], d/db (b^2) = 2b = 8: norm sqrt(1 + 4 + 64) = sqrt(69)
    loss = (a * torch.tensor([1.0, 2.0])).sum() + (b ** 2).sum()
    assert grad_norm(loss, [a, b, unused]) == pytest.approx(math.sqrt(69))
    assert round_sig(1.1095) == 1.1 and round_sig(0.87306) == 0.87 and round_sig(12.49) == 12.0


def test_dino_ugs_loss_weight_is_the_committed_measurement():
    rec = json.load(open(os.path.join(ROOT, "benchmarks/results/loss_balance/dino_paper_h200.json"), encoding="utf-8"))
    ratios = sorted(r["base_loc_grad_norm"] / r["ugs_loc_grad_norm"] for r in rec["per_batch"])
    median = (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2 if len(ratios) % 2 == 0 \
        else ratios[len(ratios) // 2]                                        # the median, by hand
    assert rec["profile"] == "paper" and rec["image_scale"] == 1.0 and len(ratios) == rec["batches"] >= 6
    weight = float(f"{median:.2g}")                                          # two significant digits
    assert Config.fromfile(UGS).model.bbox_head.ugs.loss_weight == weight == 1.1


def test_the_tool_measures_a_quick_dino_on_a_tiny_set(tmp_path):
    from ugs.data import make_synthetic_set

    root = tmp_path / "synth"
    make_synthetic_set(root, num_train=4, num_val=2, image_size=96, seed=5)
    out = tmp_path / "balance.json"
    assert main([BASE, UGS, "--profile", "quick", "--image-size", "96", "--data-root", str(root),
                 "--batches", "2", "--batch-size", "2", "--work-dir", str(tmp_path / "w"), "--out", str(out)]) == 0
    rec = json.loads(out.read_text(encoding="utf-8"))
    assert len(rec["per_batch"]) == 2
    for row in rec["per_batch"]:
        # quick DINO: 2 decoder layers + the encoder proposals + 2 denoising layers = 5 L1 terms;
        # UGS replaces each by CE and UM: 10 terms
        assert row["base_loc_keys"] == 5 and row["ugs_loc_keys"] == 10
        assert min(row[k] for k in ("base_loc_grad_norm", "base_total_grad_norm", "ugs_loc_grad_norm",
                                    "ugs_total_grad_norm")) > 0
    assert rec["ugs_options_measured"]["loss_weight"] == 1.0 and rec["ugs_options_measured"]["gamma"] == 0.0


def test_the_tool_measures_a_quick_tph_yolov5_on_a_tiny_set(tmp_path):
    # mmyolo's scope, fast collate, anchors fitted to the set; each model gets its own copy of
    # the batch (mmyolo's YOLOv5 head rewrites the boxes in place: without the copy the second
    # model reads normalised xywh as xyxy and its targets are not finite)
    from ugs.data import make_synthetic_set

    root = tmp_path / "synth"
    make_synthetic_set(root, num_train=4, num_val=2, image_size=96, seed=5)
    out = tmp_path / "balance.json"
    assert main([os.path.join(ROOT, "configs/tph_yolov5/tph_yolov5_x_640_visdrone.py"),
                 os.path.join(ROOT, "configs/tph_yolov5/tph_yolov5_x_ugs_640_visdrone.py"), "--profile", "quick",
                 "--image-size", "96", "--data-root", str(root), "--batches", "2", "--batch-size", "2",
                 "--work-dir", str(tmp_path / "w"), "--out", str(out)]) == 0
    rec = json.loads(out.read_text(encoding="utf-8"))
    for row in rec["per_batch"]:
        assert row["base_loc_keys"] == 1 and row["ugs_loc_keys"] == 2      # CIoU -> CE + UM
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("base_loc_grad_norm", "ugs_loc_grad_norm"))
    assert rec["ugs_options_measured"]["loss_weight"] == 1.0 and rec["ugs_options_measured"]["gamma"] == 0.0


@pytest.mark.parametrize("size, record", [(640, "tph_yolov5_640_paper_cpu.json"),
                                          (1536, "tph_yolov5_1536_paper_half_cpu.json")])
def test_tph_yolov5_ugs_loss_weight_is_the_committed_measurement(size, record):
    rec = json.load(open(os.path.join(ROOT, "benchmarks/results/loss_balance", record), encoding="utf-8"))
    ratios = sorted(r["base_loc_grad_norm"] / r["ugs_loc_grad_norm"] for r in rec["per_batch"])
    k = len(ratios) // 2
    median = (ratios[k - 1] + ratios[k]) / 2 if len(ratios) % 2 == 0 else ratios[k]       # by hand
    assert rec["profile"] == "paper" and len(ratios) == rec["batches"] >= 6
    assert rec["base_config"].endswith(f"tph_yolov5_x_{size}_visdrone.py")
    assert rec["ugs_config"].endswith(f"tph_yolov5_x_ugs_{size}_visdrone.py")
    cfg = Config.fromfile(os.path.join(ROOT, f"configs/tph_yolov5/tph_yolov5_x_ugs_{size}_visdrone.py"))
    assert cfg.model.bbox_head.ugs.loss_weight == float(f"{median:.2g}")                   # two digits
