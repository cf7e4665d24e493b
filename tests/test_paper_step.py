"""benchmarks/paper_step.py without running a model: its table groups name existing configs, the
per-GPU batch and training size it reads from each kind of merged config, the routing of
mmcv's CUDA-only rotated ops to the kit's PyTorch versions (and back), and the guard around
benchmarks/mmcv_cuda_ops.py."""
import os
import sys
import types

import pytest

pytest.importorskip("mmdet")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import paper_step  # noqa: E402


def test_groups_name_existing_configs_once():
    groups = paper_step.table_groups()
    assert set(groups) == set(paper_step.TABLES)
    every = paper_step.all_configs()
    assert len(every) == len(set(every)) == 44
    assert all(os.path.isfile(os.path.join(ROOT, "configs", c)) for c in every)
    assert paper_step.all_configs(["2", "3"]) == groups["2"] + groups["3"]
    assert {paper_step.kind_of(c) for c in groups["2"]} == {"mmyolo"}
    assert {paper_step.kind_of(c) for c in groups["3"]} == {"mmrotate"}
    assert paper_step.table_of("table4/faster_rcnn_r50_fpn_1x_coco.py") == "4"
    with pytest.raises(ValueError, match="unknown table"):
        paper_step.all_configs(["5"])


@pytest.mark.parametrize("config, want", [
    ("fcos/fcos_r50_fpn_ugs_1x_visdrone.py", (4, (800, 1333))),
    ("tph_yolov5/tph_yolov5_x_640_visdrone.py", (4, (640, 640))),
    ("tph_yolov5/tph_yolov5_x_ugs_1536_visdrone.py", (1, (1536, 1536))),
    ("table3/oriented_reppoints_r50_fpn_1x_sodaa.py", (1, (1200, 1200))),
])
def test_full_size_defaults(config, want):
    from ugs.openmmlab.train import build_config

    cfg = build_config(os.path.join(ROOT, "configs", config), profile="paper", gpus=4)
    assert paper_step.full_batch_and_size(cfg, paper_step.kind_of(config)) == want
    if config.startswith("table3/"):
        assert paper_step._qbox(cfg) == ("reppoints" in config)


def _routes(op, name, monkeypatch):
    """Where a call of the installed ``op`` goes when its tensors are on CUDA (simulated: the
    dispatch's device test answers yes): 'ours' (the plain-PyTorch version, stubbed here) or
    'mmcv' (its kernel, which raises in this CPU build)."""
    from ugs import rotated_ops
    from ugs.rotated import cpu_ops

    reached = []
    with monkeypatch.context() as m:
        m.setattr(cpu_ops, "_on_cuda", lambda args, kwargs: True)
        m.setattr(rotated_ops, name, lambda *a, **k: reached.append("ours"))
        try:
            op(object())
        except Exception:
            reached.append("mmcv")
    return reached[0]


def test_pytorch_rotated_ops_route_every_device_and_cpu_ops_restores(monkeypatch):
    import importlib

    from ugs.rotated import cpu_ops

    try:
        done = paper_step.use_pytorch_rotated_ops()
        assert set(done) == set(cpu_ops.BINDINGS)
        for name, modules in cpu_ops.BINDINGS.items():
            for m in modules:
                op = getattr(importlib.import_module(m), name)
                assert _routes(op, name, monkeypatch) == "ours"
                assert not hasattr(getattr(op, cpu_ops._MARK), cpu_ops._MARK)      # mmcv's own kernel kept
    finally:
        cpu_ops.install()
    assert cpu_ops.installed()
    op = importlib.import_module("mmcv.ops").convex_iou
    assert _routes(op, "convex_iou", monkeypatch) == "mmcv"


def test_mmcv_cuda_ops_guard(monkeypatch):
    calls = []
    fake = types.ModuleType("mmcv_cuda_ops")
    fake.install = lambda src, build_dir=None: calls.append((src, build_dir)) or ["nms", "roi_align"]
    monkeypatch.setitem(sys.modules, "mmcv_cuda_ops", fake)
    assert paper_step.install_mmcv_cuda_ops("/src", "/build") == ["nms", "roi_align"]
    assert calls == [("/src", "/build")]
    monkeypatch.setitem(sys.modules, "mmcv_cuda_ops", types.ModuleType("mmcv_cuda_ops"))
    with pytest.raises(RuntimeError, match="has no install"):
        paper_step.install_mmcv_cuda_ops("/src", "/build")


def test_selection_options_exclude_each_other():
    with pytest.raises(SystemExit):
        paper_step.main(["--all", "--tables", "2"])
    with pytest.raises(SystemExit):
        paper_step.main(["--configs", "fcos/fcos_r50_fpn_1x_visdrone.py", "--tables", "2"])
