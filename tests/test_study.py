"""The CPU study's bookkeeping (ugs.openmmlab.study): which runs are finished, resumed or new,
the resumed run's command, the curve over sittings, and the paired comparison of the arms."""
import sys

import pytest

from ugs.openmmlab import study

# stands in for the training tool: logs one validation per epoch (the resumed sitting starts
# at the epoch after its last checkpoint, as mmengine's --resume does) and writes metrics.json
_FAKE_TOOL = r'''
import json, os, sys, time
args = sys.argv[1:]
wd = args[args.index("--work-dir") + 1]
epochs, seed = int(args[args.index("--epochs") + 1]), int(args[args.index("--seed") + 1])
first = int(open(os.path.join(wd, "last_checkpoint")).read()) + 1 if "--resume" in args else 1
stop = int(os.environ.get("FAKE_STOP_AFTER", epochs))
print(f"sitting from epoch {first}", flush=True)
folder = os.path.join(wd, "2026010%d_000000" % first, "vis_data")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "scalars.json"), "w") as f:
    for e in range(first, min(stop, epochs) + 1):
        f.write(json.dumps({"visdrone/AP": 10.0 * e + seed, "step": e}) + "\n")
        open(os.path.join(wd, "last_checkpoint"), "w").write(str(e))
if stop < epochs:
    sys.exit(3)
ap = 10.0 * epochs + seed + (1.0 if "ugs" in args[0] else 0.0)     # in AP points; metrics.json holds fractions
json.dump({"AP": ap / 100, "AP_s": ap / 200}, open(os.path.join(wd, "metrics.json"), "w"))
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    tool = tmp_path / "fake_tool.py"
    tool.write_text(_FAKE_TOOL)

    def fake_train_command(config, *, work_dir, epochs, seed, **kw):
        return [sys.executable, str(tool), config, "--work-dir", str(work_dir), "--epochs", str(epochs),
                "--seed", str(seed)]
    monkeypatch.setattr(study.runs, "train_command", fake_train_command)
    return tmp_path


def test_a_run_is_new_then_partial_then_resumed_then_skipped(fake, monkeypatch, capsys):
    wd = study.run_dir(fake / "w", "fcos", 1, fake)
    cmd = study.command("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    assert study.state(wd, cmd) == "new"
    monkeypatch.setenv("FAKE_STOP_AFTER", "2")              # the first sitting stops after epoch 2
    with pytest.raises(RuntimeError, match="exit 3"):
        study.run_one("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    assert study.state(wd, cmd) == "partial"
    monkeypatch.delenv("FAKE_STOP_AFTER")
    record = study.run_one("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    assert record["resumed"] is True and record["curve"] == [11.0, 21.0, 31.0, 41.0]
    assert record["metrics"] == {"AP": 0.41, "AP_s": 0.205}
    log = (wd / "train_stdout.log").read_text()
    assert "sitting from epoch 1" in log and "sitting from epoch 3" in log   # both sittings' output kept
    assert study.state(wd, cmd) == "finished"
    capsys.readouterr()
    again = study.run_one("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    assert again == record and "skipped" in capsys.readouterr().out
    # a changed setting is a different command: that run starts again from scratch
    cmd6 = study.command("fcos", 1, epochs=6, work_root=fake / "w", root=fake)
    assert study.state(wd, cmd6) == "new"
    assert study.run_one("fcos", 1, epochs=6, work_root=fake / "w", root=fake)["curve"] == [11.0 + 10 * k for k in range(6)]


def test_compare_pairs_arms_by_seed(fake):
    for arm in ("fcos", "fcos_ugs"):
        for seed in (0, 1, 2):
            study.run_one(arm, seed, epochs=2, work_root=fake / "w", root=fake)
    study.run_one("fcos", 3, epochs=2, work_root=fake / "w", root=fake)    # unpaired: left out
    rows = study.compare(study.collect(fake / "w", root=fake))
    ap = [r for r in rows if r["comparison"] == "table1_fcos" and r["metric"] == "AP"]
    assert len(ap) == 1 and ap[0]["seeds"] == [0, 1, 2]
    # the fake UGS arm is exactly +1 AP on every seed: zero spread, a zero-width interval
    assert (ap[0]["diff_mean"], ap[0]["ci_low"], ap[0]["ci_high"]) == pytest.approx((1.0, 1.0, 1.0))
    assert ap[0]["baseline_mean"] == pytest.approx(21.0) and ap[0]["baseline_sd"] == pytest.approx(1.0)
    assert not [r for r in rows if r["comparison"] == "table1_gfl"]      # no finished gfl runs


def test_unknown_arm_is_named():
    with pytest.raises(ValueError, match="unknown arm 'fcoss'"):
        study.command("fcoss", 0, epochs=1, work_root="w")


def test_every_comparison_uses_known_arms_and_the_arm_configs_exist():
    for name, base, treat, _ in study.COMPARISONS:
        assert base in study.ARMS and treat in study.ARMS, name
    for arm, config in study.ARMS.items():
        assert (study.ROOT / config).is_file(), arm
