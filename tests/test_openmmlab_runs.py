"""Real (tiny) training runs through mmengine: exact resume, two-process distributed training.

Each run is the quick profile on a synthetic set of 8 + 4 images at 96 px (seconds per run).
"""
import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("mmdet")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UGS_FCOS = os.path.join(ROOT, "configs", "fcos", "fcos_r50_fpn_ugs_1x_visdrone.py")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from ugs.data import make_synthetic_set

    root = tmp_path_factory.mktemp("tiny_synth")
    make_synthetic_set(root, num_train=8, num_val=4, image_size=96, seed=3)
    return root


def _train(args, env=None, launcher=None):
    cmd = [sys.executable, "-m", "ugs.openmmlab.train", UGS_FCOS, "--profile", "quick",
           "--image-size", "96", *args]
    if launcher:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", "29531", "-m", "ugs.openmmlab.train", UGS_FCOS, "--profile",
               "quick", "--image-size", "96", "--launcher", "pytorch", "--gpus", "2", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900,
                         env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out


def _weights(path):
    return torch.load(path, map_location="cpu")["state_dict"]


def test_resume_continues_exactly(tiny_set, tmp_path):
    # 2 epochs straight vs 1 epoch, then --resume to 2: the same weights, bit for bit up to
    # float round-off (same data order, same flips: the loader worker is re-seeded per epoch)
    common = ["--data-root", str(tiny_set), "--seed", "7"]
    _train(common + ["--work-dir", str(tmp_path / "straight"), "--epochs", "2"])
    _train(common + ["--work-dir", str(tmp_path / "resumed"), "--epochs", "2",
                     "--cfg-options", "train_cfg.max_epochs=1"])
    assert not (tmp_path / "resumed" / "epoch_2.pth").exists()
    _train(common + ["--work-dir", str(tmp_path / "resumed"), "--epochs", "2", "--resume"])
    a = _weights(tmp_path / "straight" / "epoch_2.pth")
    b = _weights(tmp_path / "resumed" / "epoch_2.pth")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)
    # the same weights evaluated twice: the resumed run's evaluation is the straight run's
    resumed = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    for key in ("AP", "AP50", "AP_s", "AR@500"):
        assert resumed[key] == pytest.approx(straight[key], abs=1e-6), key


def test_same_seed_reproduces_a_ugs_run_bit_for_bit(tiny_set, tmp_path):
    # the UGS head (CE, UM and the refinement pass with its second gradient) adds no
    # nondeterminism on the CPU: the same command twice gives the same weights, bit for bit
    common = ["--data-root", str(tiny_set), "--seed", "11", "--epochs", "2"]
    _train(common + ["--work-dir", str(tmp_path / "first")])
    _train(common + ["--work-dir", str(tmp_path / "second")])
    a = _weights(tmp_path / "first" / "epoch_2.pth")
    b = _weights(tmp_path / "second" / "epoch_2.pth")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    first = json.loads((tmp_path / "first" / "metrics.json").read_text())
    second = json.loads((tmp_path / "second" / "metrics.json").read_text())
    assert first["AP"] == second["AP"] and first["AR@500"] == second["AR@500"]


def test_two_process_distributed_training_on_cpu(tiny_set, tmp_path):
    out = _train(["--data-root", str(tiny_set), "--work-dir", str(tmp_path / "ddp"),
                  "--epochs", "1"], launcher="pytorch")
    log = out.stdout + out.stderr
    assert "Distributed training: True" in log and "GPU number: 2" in log, log[-3000:]
    # 8 training images, 4 per process and step: one step per epoch on each of the two ranks
    # (a single process would log [1][2/2]); 4 val images, 2 per rank
    assert "Epoch(train) [1][1/1]" in log and "Epoch(val) [1][2/2]" in log, log[-3000:]
    assert (tmp_path / "ddp" / "epoch_1.pth").exists()
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["num_images_predicted"] == 4   # both ranks' results were gathered
