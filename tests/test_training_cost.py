"""benchmarks/training_cost.py (Table 5): parameter and FLOP overheads against hand counts,
and one end-to-end run of the quick setting. No timing is asserted."""
import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("mmdet")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import training_cost as tc  # noqa: E402

# the quick profile's head: 64 feature channels, the UGS config's n = 16 (17 bins per side)
C, N = 64, 16
EXTRA_OUT = 4 * (N + 1) - 4          # conv_reg: 4 -> 68 outputs


@pytest.fixture(scope="module")
def quick_models():
    base, _ = tc.build_detector("quick", "baseline")
    ugs, cfg = tc.build_detector("quick", "ugs")
    assert cfg.model.bbox_head.feat_channels == C and cfg.model.bbox_head.ugs["n"] == N
    return base, ugs


def test_parameter_overhead_is_the_wider_conv_reg_minus_the_scales(quick_models):
    base, ugs = quick_models
    # 64 more output channels of a 3x3 conv on 64 channels, each with a bias:
    # 64 * (64 * 9 + 1) = 36,928; FCOS's five per-level Scale parameters are gone: 36,923
    assert tc.count_params(ugs) - tc.count_params(base) == EXTRA_OUT * (C * 9 + 1) - 5 == 36923


def test_flop_counter_sees_the_wider_conv_reg(quick_models):
    base, ugs = quick_models
    fb, mb = tc.count_flops(base, "quick")
    fu, mu = tc.count_flops(ugs, "quick")
    # 256 x 256 input, levels at strides 8 ... 128: 32^2 + 16^2 + 8^2 + 4^2 + 2^2 = 1364
    # locations; the counter counts one multiply-add per output element and kernel tap
    # (no bias): 64 extra outputs * 64 channels * 9 taps * 1364 = 50,282,496
    locations = 32 ** 2 + 16 ** 2 + 8 ** 2 + 4 ** 2 + 2 ** 2
    assert sum(h * w for h, w in tc.pyramid_sizes("quick")) == locations
    assert mu["bbox_head.conv_reg"] == (4 * (N + 1)) * C * 9 * locations
    assert mb["bbox_head.conv_reg"] == 4 * C * 9 * locations
    # and nothing else differs: the backbone, neck and the rest of the head count the same
    assert fu - fb == EXTRA_OUT * C * 9 * locations == 50282496


def test_paper_setting_pads_to_32_and_has_the_fcos_pyramid():
    assert tc.padded_shape("paper") == (800, 1344)
    assert tc.pyramid_sizes("paper") == [(100, 168), (50, 84), (25, 42), (13, 21), (7, 11)]


def test_quick_setting_runs_end_to_end_and_writes_json(tmp_path):
    out = tmp_path / "tc.json"
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "training_cost.py"),
                          "--setting", "quick", "--repeats", "1", "--warmup", "0",
                          "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert "goal checks (measured):" in run.stdout
    res = json.loads(out.read_text())
    assert list(res["results"]) == ["baseline", "ce_in", "ce_in_um", "ugs"]
    for name, r in res["results"].items():
        assert r["time"] > 0 and len(r["times"]) == 1, name
        assert r["memory_mb"] > 0, name
    assert res["results"]["ce_in"]["ugs"]["gamma"] == 0.0
    assert res["results"]["ugs"]["ugs"]["gamma"] == 0.5
    assert len(res["goal_checks"]) == 4
    assert res["focal_loss"] == "as installed (mmcv's sigmoid_focal_loss)"   # no replacement asked for
    # the paper's ratios come from papers_tables, not from the script
    from ugs.papers import load_table
    t5 = load_table(5)
    assert res["paper_table5"]["time"]["ratio"] == pytest.approx(
        t5.value("fcos_ugs", "time_s_per_batch") / t5.value("fcos", "time_s_per_batch"))


def test_the_focal_loss_has_one_source():
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        tc.parse_args(["--pytorch-focal-loss", "--mmcv-cuda-ops", "mmcv-2.0.1.tar.gz"])
    assert "--pytorch-focal-loss and --mmcv-cuda-ops: give one" in err.getvalue()


# ---- the cheaper refinement pass (ugs/openmmlab/dense_ugs.py) and its approximation option

def _head(stock, head_type, at_points, route, **ugs):
    from test_openmmlab_heads import _build

    head = _build(stock, head_type, gamma=0.5, rho=0.5, lam=0.5, **ugs).train()
    head._ugs_predict_at_points = at_points
    if route == "rerun":           # hide the clean pass's positives: the mixin re-runs it all
        clean = head.loss_by_feat
        head.loss_by_feat = lambda *a, **k: {key: v for key, v in clean(*a, **k).items()
                                             if key != "ugs_positives"}
    return head


def _loss_and_grads(head, seed=5):
    import torch
    from test_openmmlab_heads import _inputs

    feats, samples = _inputs(size=128, seed=seed)
    losses = head.loss(feats, samples)
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items()
                if k.startswith("loss"))
    total.backward()
    return losses, [p.grad for p in head.parameters()] + [f.grad for f in feats]


@pytest.mark.parametrize("head_type", ["UGSFCOSHead", "UGSGFLHead"])
def test_positives_route_gives_the_rerun_routes_loss_ur_and_gradients(head_type):
    import torch
    from test_openmmlab_heads import FCOS, GFL

    stock = FCOS if head_type == "UGSFCOSHead" else GFL
    ref, g_ref = _loss_and_grads(_head(stock, head_type, False, "rerun"))
    # predictor on the full map, then the positives picked: the same operations -> the same loss
    # bit for bit; the gradients too on the AMD EPYC machines, while on an Intel Xeon (session 12)
    # the sum into GFL's scalar FPN-level scale came out 2.3e-10 off (of 2.5e-3: the last bits)
    out, g = _loss_and_grads(_head(stock, head_type, False, "positives"))
    assert torch.equal(out["loss_ur"], ref["loss_ur"]) and ref["loss_ur"] > 0
    assert [a is None for a in g] == [b is None for b in g_ref]
    for a, b in zip(g, g_ref):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=0)
    # predictor evaluated at the positives only (the default): float rounding apart
    out, g = _loss_and_grads(_head(stock, head_type, True, "positives"))
    torch.testing.assert_close(out["loss_ur"], ref["loss_ur"], rtol=1e-6, atol=0)
    for a, b in zip(g, g_ref):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)


def test_refine_every_k_runs_the_step_on_every_kth_call_weighted_by_k():
    import torch
    from test_openmmlab_heads import FCOS, _inputs

    every = _head(FCOS, "UGSFCOSHead", True, "positives", refine_every=2)
    exact = _head(FCOS, "UGSFCOSHead", True, "positives")
    feats, samples = _inputs(size=128, seed=6)
    for call in range(4):
        a, b = every.loss(feats, samples), exact.loss(feats, samples)
        if call % 2 == 0:       # calls 1 and 3: the step, L^ur weighted 2 gamma
            torch.testing.assert_close(a["loss_ur"], 2 * b["loss_ur"])
        else:
            assert "loss_ur" not in a and "loss_ur" in b
    from mmdet.registry import MODELS
    from test_openmmlab_heads import _head_cfg
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="refine_every"):
            MODELS.build(_head_cfg(FCOS, "UGSFCOSHead", refine_every=bad))


# ---- the measured Table 5 of notebook 08 (papers_tables/measured/table5_*.csv)

MEASURED_T5 = os.path.join(ROOT, "papers_tables", "measured", "table5_quick_cpu.csv")


def test_measured_table5_quick_is_in_the_schema_and_counts_the_wider_conv_reg():
    from ugs.measured import load_measured   # sources are run ids; this reads the commands back

    rec = {(r["row"], r["column"]): r for r in load_measured(os.path.basename(MEASURED_T5)).records}
    rows = {row for row, _ in rec}
    assert rows == {"fcos", "fcos_ce_in", "fcos_ce_in_um", "fcos_ugs"}
    for (row, col), r in rec.items():
        assert r["status"] == "measured" and "benchmarks/training_cost.py" in r["source"]
        assert "--setting quick" in r["source"] and r["value"] > 0
        assert col in ("time_s_per_batch", "GFLOPs", "params_M", "peak_memory_MB")
    # the parameter difference is the hand count of test_parameter_overhead_... (36,923)
    diff = rec[("fcos_ugs", "params_M")]["value"] - rec[("fcos", "params_M")]["value"]
    assert diff == pytest.approx(36923 / 1e6, abs=2e-6)
    # and the FLOP difference the hand count of test_flop_counter_sees_the_wider_conv_reg
    dflops = rec[("fcos_ugs", "GFLOPs")]["value"] - rec[("fcos", "GFLOPs")]["value"]
    assert dflops == pytest.approx(50282496 / 1e9, abs=2e-6)
