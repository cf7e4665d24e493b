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
    weights = tmp_path / study.SETTINGS["pretrained"]     # the pretrained backbone the runs name
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights v1")

    def fake_train_command(config, *, work_dir, epochs, seed, **kw):
        return [sys.executable, str(tool), config, "--work-dir", str(work_dir), "--epochs", str(epochs),
                "--seed", str(seed)]
    monkeypatch.setattr(study.runs, "train_command", fake_train_command)
    return tmp_path


def test_a_run_is_new_then_partial_then_resumed_then_skipped(fake, monkeypatch, capsys):
    wd = study.run_dir(fake / "w", "fcos", 1, fake)
    cmd = study.command("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    used = study.inputs(root=fake)
    assert study.state(wd, cmd, used) == "new"
    monkeypatch.setenv("FAKE_STOP_AFTER", "2")              # the first sitting stops after epoch 2
    with pytest.raises(RuntimeError, match="exit 3"):
        study.run_one("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    assert study.state(wd, cmd, used) == "partial"
    monkeypatch.delenv("FAKE_STOP_AFTER")
    record = study.run_one("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    assert record["resumed"] is True and record["curve"] == [11.0, 21.0, 31.0, 41.0]
    assert record["metrics"] == {"AP": 0.41, "AP_s": 0.205}
    log = (wd / "train_stdout.log").read_text()
    assert "sitting from epoch 1" in log and "sitting from epoch 3" in log   # both sittings' output kept
    assert study.state(wd, cmd, used) == "finished"
    capsys.readouterr()
    again = study.run_one("fcos", 1, epochs=4, work_root=fake / "w", root=fake)
    assert again == record and "skipped" in capsys.readouterr().out
    # a changed setting is a different command: that run starts again from scratch
    cmd6 = study.command("fcos", 1, epochs=6, work_root=fake / "w", root=fake)
    assert study.state(wd, cmd6, used) == "new"
    assert study.run_one("fcos", 1, epochs=6, work_root=fake / "w", root=fake)["curve"] == [11.0 + 10 * k for k in range(6)]


def test_regenerated_pretrained_weights_make_a_finished_run_new(fake):
    import hashlib
    record = study.run_one("fcos", 0, epochs=2, work_root=fake / "w", root=fake)
    key = study.SETTINGS["pretrained"]
    assert record["inputs"] == {key: hashlib.sha256(b"weights v1").hexdigest()}
    wd, cmd = study.run_dir(fake / "w", "fcos", 0, fake), study.command("fcos", 0, epochs=2, work_root=fake / "w", root=fake)
    assert study.state(wd, cmd, study.inputs(root=fake)) == "finished"
    (fake / key).write_bytes(b"weights v2")            # same path, same command, other weights
    assert study.state(wd, cmd, study.inputs(root=fake)) == "new"
    (wd / "last_checkpoint").write_text("1")          # nor may a stopped run resume on them
    (wd / "study_run.json").unlink()
    assert study.state(wd, cmd, study.inputs(root=fake)) == "new"
    assert study.state(wd, cmd, {key: hashlib.sha256(b"weights v1").hexdigest()}) == "partial"
    # from scratch, no file is an input
    assert study.inputs("scratch", root=fake) == {}
    (fake / key).unlink()
    with pytest.raises(FileNotFoundError, match="pretrained backbone is missing"):
        study.inputs(root=fake)


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


def _write_run(root, arm, seed, ap, ap_s, epochs=24):
    wd = root / f"{arm}-seed{seed}"
    wd.mkdir(parents=True)
    cmd = f"python -m ugs.openmmlab.train {study.ARMS[arm]} --work-dir work_dirs/study/{arm}-seed{seed} --seed {seed}"
    (wd / "study_run.json").write_text(__import__("json").dumps(dict(
        command=cmd, inputs={}, arm=arm, seed=seed, epochs=epochs, seconds=60.0,
        metrics={"AP": ap / 100, "AP_s": ap_s / 100}, curve=[ap])))


def test_table_records_hold_every_run_and_each_comparison_with_its_interval(tmp_path):
    from scipy import stats as sps

    from ugs.measured import with_run_ids
    from ugs.papers import read_table, write_table
    base, treat = {0: 30.0, 1: 32.0, 2: 31.0}, {0: 31.0, 1: 35.0, 2: 31.0, 3: 40.0}   # seed 3: one arm only
    for s, v in base.items():
        _write_run(tmp_path, "fcos", s, v, v - 2)
    for s, v in treat.items():
        _write_run(tmp_path, "fcos_ugs", s, v, v - 1)
    records = study.table_records(study.collect(tmp_path, root=tmp_path), "table1", dataset="synthetic 128 px")
    table = read_table(write_table(records, tmp_path / "t.csv"))      # the schema accepts them
    assert table.value("fcos_ugs", "AP", seed="3") == 40.0 and table.value("fcos", "AP_s", seed="1") == 30.0
    assert len(table.select(row="fcos")) == 6 and len(table.select(row="fcos_ugs")) == 8
    # AP: differences 1, 3, 0 over seeds 0-2, worked out by hand with SciPy's t quantiles
    d = [1.0, 3.0, 0.0]
    mean = sum(d) / 3
    sd = (sum((x - mean) ** 2 for x in d) / 2) ** 0.5
    half = sps.t.ppf(0.975, 2) * sd / 3 ** 0.5
    want = {"diff_mean": mean, "ci_low": mean - half, "ci_high": mean + half, "baseline_mean": 31.0,
            "baseline_sd": 1.0, "treatment_mean": 97 / 3,
            "detectable": (sps.t.ppf(0.975, 2) + sps.t.ppf(0.8, 2)) * sd / 3 ** 0.5}
    for stat, v in want.items():
        rec = table.record("table1_fcos", f"AP {stat}")
        assert rec["value"] == pytest.approx(v, abs=0.006), stat     # written to 2 decimals
        assert rec["status"] == "derived" and rec["seed"] == "0 1 2"
    note = table.record("table1_fcos", "AP diff_mean")["note"]
    assert note == "n=3; seeds 3 finished in one arm only, left out"
    # AP_s moves with AP here (offsets 2 and 1): the same differences plus 1
    assert table.value("table1_fcos", "AP_s diff_mean") == pytest.approx(mean + 1, abs=0.006)
    assert not table.select(row="table1_gfl")                  # no GFL run: no comparison
    # each derived value names the six runs it pairs, so the committed table's ids list them
    _, commands = with_run_ids(records, "03_visdrone_detectors")
    assert sorted(commands) == sorted([f"03_visdrone_detectors/fcos-seed{s}" for s in range(3)]
                                      + [f"03_visdrone_detectors/fcos_ugs-seed{s}" for s in range(4)])
    with pytest.raises(ValueError, match="unknown study table 'table9'"):
        study.table_records({}, "table9", dataset="x")


def test_verdict_reads_the_interval_against_the_papers_sign():
    assert study.verdict(2.5, 0.3, 4.0) == "holds"
    assert study.verdict(2.5, -3.0, -0.2) == "contradicted"
    assert study.verdict(2.5, -0.5, 4.0) == "not resolved"
    assert study.verdict(-0.1, -2.0, -0.4) == "holds"           # the paper's AP_s L2 -> Smooth-L1 is negative
    assert study.verdict(-0.1, 0.4, 2.0) == "contradicted"
    assert study.verdict(None, 0.4, 2.0) == "no claim (interval above 0)"
    assert study.verdict(0.0, -1.0, 2.0) == "no claim (interval contains 0)"


def test_paper_difference_is_the_printed_rows_difference():
    import csv
    printed = {}
    for name in ("table1_visdrone.csv", "table6_ablation.csv"):
        with open(study.ROOT / "papers_tables" / name, newline="") as fh:    # read apart from ugs.papers
            for r in csv.DictReader(fh):
                if r["status"] == "printed" and r["column"] in ("AP", "AP_s"):
                    printed[(name, r["row"], r["column"])] = float(r["value"])
    for table, file in (("table1", "table1_visdrone.csv"), ("table6", "table6_ablation.csv")):
        for _, base, treat, _ in study.TABLES[table]["comparisons"]:
            for m in ("AP", "AP_s"):
                got = study.paper_difference(table, base, treat, m)
                rows = study.PAPER_ROWS[table]
                if base in rows and treat in rows:
                    want = printed[(file, rows[treat], m)] - printed[(file, rows[base], m)]
                    assert got == pytest.approx(want, abs=1e-9), (table, base, treat, m)
                else:
                    assert got is None and "grid_iou" in base + treat
    # every arm of a table but the control has its row
    assert set(study.TABLES["table1"]["arms"]) - set(study.PAPER_ROWS["table1"]) == {"fcos_grid_iou"}
    assert set(study.TABLES["table6"]["arms"]) == set(study.PAPER_ROWS["table6"])


def test_pilot_curves_are_found_by_setting_and_plotted(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    w = tmp_path / "w"
    for folder, epochs in (("synth128-128/pt-e24", 24), ("synth128-128/pt-e48", 48), ("synth128-128/e24", 24),
                           ("synthetic-256/pt-e24", 24)):
        _write_run(w / "pilot" / folder, "fcos", 0, ap=float(epochs), ap_s=1.0, epochs=epochs)
        rec = w / "pilot" / folder / "fcos-seed0" / "study_run.json"
        data = __import__("json").loads(rec.read_text())
        data["curve"] = [float(e) for e in range(1, epochs + 1)] if "256" not in folder else [9.0] * epochs
        rec.write_text(__import__("json").dumps(data))
    found = {e: r["curve"] for e, r in study.pilot_runs(w, "fcos", root=tmp_path).items()}   # 128 px, pretrained
    assert list(found) == [24, 48] and found[48] == [float(e) for e in range(1, 49)]
    assert list(study.pilot_runs(w, "fcos", root=tmp_path, init="scratch")) == [24]
    assert study.pilot_runs(w, "fcos", root=tmp_path, data_root="data/synthetic", image_size=256)[24]["curve"] == [9.0] * 24
    fig = study.plot_curves({f"{e} epochs": c for e, c in found.items()}, "t", tmp_path / "c.png")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["24 epochs", "48 epochs"]
    assert list(lines[1].get_xdata()) == list(range(1, 49)) and list(lines[1].get_ydata()) == found[48]
    assert (tmp_path / "c.png").stat().st_size > 0


def test_plan_prices_the_runs_left_from_the_cost_pilot(tmp_path, capsys):
    w = tmp_path / "w"
    setting = "synth128-128/e2"                                  # --init scratch: no pt- prefix
    _write_run(w / "pilot" / setting, "fcos", 0, ap=1.0, ap_s=1.0, epochs=2)
    rec = w / "pilot" / setting / "fcos-seed0" / "study_run.json"
    data = __import__("json").loads(rec.read_text())
    data["seconds"] = 60.0
    rec.write_text(__import__("json").dumps(data))
    assert study.main(["plan", "--arms", "fcos", "gfl", "--init", "scratch", "--work-root", str(w)]) == 0
    out = capsys.readouterr().out
    assert "fcos                   0/5 seeds finished; ~24.0 min per run (its 2-epoch pilot x 24)" in out
    assert "gfl                    0/5 seeds finished; cost not measured" in out
    assert "left to run: unknown" in out
    study.main(["plan", "--arms", "fcos", "--init", "scratch", "--work-root", str(w), "--seeds", "0", "1", "2"])
    assert "left to run: ~1.2 h on this machine" in capsys.readouterr().out     # 3 x 24 min
