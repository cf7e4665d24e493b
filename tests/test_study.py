"""The CPU study's bookkeeping (ugs.openmmlab.study): which runs are finished, resumed or new,
the resumed run's command, the curve over sittings, and the paired comparison of the arms."""
import sys

import pytest

from ugs import measured
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
for e in range(max(1, epochs - 1), epochs + 1):                   # the last two epochs' checkpoints
    open(os.path.join(wd, "epoch_%d.pth" % e), "w").write("weights")
# the gradient hook (a replay): its epoch's object gradients, 2 iterations per epoch, the maps
opts = args[args.index("--cfg-options") + 1:] if "--cfg-options" in args else []
hook = [o.split("=", 1)[1] for o in opts if o.startswith("custom_hooks=")]
if hook:
    spec = json.loads(hook[0])[0]
    ep = spec["epochs"][0]
    if ep != 1 and not os.path.isfile([o.split("=", 1)[1] for o in opts if o.startswith("load_from=")][0]):
        sys.exit(4)
    small, medium = (2.0 + seed, 1.0) if ep == 1 else (1.5 + seed, 0.25)
    iters = [2 * (ep - 1) + 1, 2 * ep]
    sizes = lambda n, m: {"small": {n: small, "count": 2}, "medium": {n: medium, "count": 1},
                          "large": {n: None, "count": 0}}
    json.dump({"object_gradient_by_epoch": {str(ep): sizes("mean", 0)},
               "iterations": [{"iter": i, "epoch": ep, "objects": sizes("mean", 0)} for i in iters]},
              open(os.path.join(wd, "gradient_diagnostics.json"), "w"))
    import numpy as np
    os.makedirs(os.path.join(wd, "gradient_maps"), exist_ok=True)
    for n, i in enumerate(iters):            # image j: j % 3 small objects and one medium; the last
        for k in range(spec["save_maps"]):   # epoch sees the images in the reverse order
            j = n * spec["save_maps"] + k
            j = j if ep == 1 else 2 * spec["save_maps"] - 1 - j
            np.savez(os.path.join(wd, "gradient_maps", "iter%d_img%d.npz" % (i, k)), img_path="data/img%d.png" % j,
                     object_areas=np.array([100.0] * (j % 3) + [2000.0]), map_0=np.full((2, 2), float(ep)))
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    tool = tmp_path / "fake_tool.py"
    tool.write_text(_FAKE_TOOL)
    weights = tmp_path / study.SETTINGS["pretrained"]     # the pretrained backbone the runs name
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights v1")

    def fake_train_command(config, *, work_dir, epochs, seed, options=(), **kw):
        return [sys.executable, str(tool), config, "--work-dir", str(work_dir), "--epochs", str(epochs),
                "--seed", str(seed)] + (["--cfg-options", *options] if options else [])
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


def _write_study_run(work, arm, seed, ap, ap_s, root):
    """A finished run of the study's own setting (the command ``run`` would give under ``work``)."""
    import json
    import shlex
    wd = work / f"{arm}-seed{seed}"
    wd.mkdir(parents=True)
    cmd = shlex.join(study.command(arm, seed, epochs=study.SETTINGS["epochs"], work_root=work, root=root))
    (wd / "study_run.json").write_text(json.dumps(dict(
        command=cmd, inputs={}, arm=arm, seed=seed, epochs=study.SETTINGS["epochs"], seconds=60.0,
        metrics={"AP": ap / 100, "AP_s": ap_s / 100}, curve=[ap])))


def test_run_and_report_agree_that_another_interpreter_runs_the_same_run(fake, monkeypatch, capsys):
    import json
    w = fake / "w"
    record = study.run_one("fcos", 0, epochs=2, work_root=w, root=fake)
    wd = study.run_dir(w, "fcos", 0, fake)
    data = json.loads((wd / "study_run.json").read_text())
    data["command"] = "/opt/other/bin/python " + data["command"].split(" ", 1)[1]   # another venv's run
    (wd / "study_run.json").write_text(json.dumps(data))
    cmd = study.command("fcos", 0, epochs=2, work_root=w, root=fake)
    assert study.state(wd, cmd, study.inputs(root=fake)) == "finished"
    assert sorted(study.finished(["fcos"], work_root=w, epochs=2, root=fake)["fcos"]) == [0]
    capsys.readouterr()
    assert study.run_one("fcos", 0, epochs=2, work_root=w, root=fake)["metrics"] == record["metrics"]
    assert "skipped" in capsys.readouterr().out                      # not trained again
    # a stopped run started by another interpreter resumes; one argument changed makes it new
    (wd / "study_run.json").unlink()
    (wd / "last_checkpoint").write_text("1")
    (wd / "command.txt").write_text(data["command"])
    assert study.state(wd, cmd, study.inputs(root=fake)) == "partial"
    (wd / "command.txt").write_text(data["command"].replace("--seed 0", "--seed 7"))
    assert "--seed 7" in (wd / "command.txt").read_text()
    assert study.state(wd, cmd, study.inputs(root=fake)) == "new"
    # the reasons both use, by hand
    assert study.differs({"command": "py a b", "inputs": {"f": "1"}}, ["other-py", "a", "b"], {"f": "1"}) is None
    assert study.differs({"command": "py a b", "inputs": {"f": "1"}}, ["py", "a", "c"], {"f": "1"}) == "another command"
    assert study.differs({"command": "py a b", "inputs": {"f": "1"}}, ["py", "a", "b"], {"f": "2"}) == "other inputs"
    assert study.differs({"command": "py a b", "inputs": {"f": "1"}}, ["py", "a", "b"], None) is None


def test_gradient_replay_of_a_finished_run_its_archive_and_reading_it_back(fake):
    import shutil

    import numpy as np
    w, arch = fake / "w", fake / "gradients"
    with pytest.raises(FileNotFoundError, match="no finished run"):
        study.replay_gradients("faster_rcnn_ugs", 1, epochs=3, work_root=w, root=fake)
    study.run_one("faster_rcnn_ugs", 1, epochs=3, work_root=w, root=fake)
    logged = []
    g = study.replay_gradients("faster_rcnn_ugs", 1, epochs=3, work_root=w, root=fake, log=logged.append)
    # the fake hook: small 2 + seed / medium 1 in epoch 1, 1.5 + seed / 0.25 in the last
    assert g["epochs"]["first"]["small"]["mean"] == 3.0 and g["epochs"]["last"]["small"]["mean"] == 2.5
    assert g["epochs"]["last"]["medium"]["mean"] == 0.25 and g["epochs"]["first"]["large"]["mean"] is None
    assert [i["iter"] for i in g["iterations"]["first"]] == [1, 2]
    assert [i["iter"] for i in g["iterations"]["last"]] == [5, 6]        # epoch 3 of 2 iterations each
    assert g["iterations"]["last"][0] == {"iter": 5, "small": 2.5, "medium": 0.25, "large": None}
    run_cmd = study.command("faster_rcnn_ugs", 1, epochs=3, work_root=w, root=fake)
    assert g["run_command"] == __import__("shlex").join(run_cmd) and logged == []
    first, last = g["commands"]["first"], g["commands"]["last"]
    assert "train_cfg.max_epochs=1" in first and "resume" not in first and '"epochs": [1]' in first
    assert "resume=true load_from=w/faster_rcnn_ugs-seed1/epoch_2.pth" in last and '"epochs": [3]' in last
    assert "--epochs 3" in first and "--epochs 3" in last and "--seed 1" in last
    # each replay is its own run in a committed table's commands.csv
    assert [measured.run_id(c, "12_gradient_maps") for c in (first, last)] == [
        "12_gradient_maps/faster_rcnn_ugs-seed1-first", "12_gradient_maps/faster_rcnn_ugs-seed1-last"]
    assert study.figure1_maps("faster_rcnn_ugs", 0, work_root=w, root=fake) == {}     # seed 0: no replay
    # done once: a second call reuses both replays
    again = study.replay_gradients("faster_rcnn_ugs", 1, epochs=3, work_root=w, root=fake, log=logged.append)
    assert again == g and sum("reused" in m for m in logged) == 2
    # the archive: the record, and the maps of each replayed epoch's first iteration only
    written = study.archive_gradients(["faster_rcnn_ugs", "fcos"], work_root=w, epochs=3, seeds=[1],
                                      archive=arch, root=fake, log=logged.append)
    assert sorted(p.name for p in written) == ["faster_rcnn_ugs-seed1-first.npz", "faster_rcnn_ugs-seed1-last.npz",
                                               "faster_rcnn_ugs-seed1.json"]
    # the image with the most small objects: img2 and img5 have two each, img2 comes first
    for which, epoch in (("first", 1), ("last", 3)):
        with np.load(arch / "maps" / f"faster_rcnn_ugs-seed1-{which}.npz") as z:
            assert str(z["img_path"]) == "data/img2.png" and z["map_0"][0, 0] == epoch
    assert study.archive_gradients(["faster_rcnn_ugs"], work_root=w, epochs=3, seeds=[1], archive=arch,
                                   root=fake, log=logged.append) == []
    got = study.finished_gradients(["faster_rcnn_ugs"], work_root=w, epochs=3, seeds=[0, 1], archive=arch, root=fake)
    assert list(got["faster_rcnn_ugs"]) == [1] and got["faster_rcnn_ugs"][1]["origin"] == "work dir"
    # a replay left from an earlier run of that work dir (another command) is not archived
    import json
    replay_record = w / "faster_rcnn_ugs-seed1" / "gradients.json"
    stale = json.loads(replay_record.read_text())
    stale["run_command"] = stale["run_command"].replace("--seed 1", "--seed 9")
    replay_record.write_text(json.dumps(stale))
    logged.clear()
    (arch / "faster_rcnn_ugs-seed1.json").unlink()
    assert study.archive_gradients(["faster_rcnn_ugs"], work_root=w, epochs=3, seeds=[1], archive=arch,
                                   root=fake, log=logged.append) == []
    assert logged == ["w/faster_rcnn_ugs-seed1/gradients.json: left out (a replay of another run than the finished one)"]
    (arch / "faster_rcnn_ugs-seed1.json").write_text(json.dumps(g, indent=1) + "\n")
    shutil.rmtree(w)                                   # another machine: the archive only
    got = study.finished_gradients(["faster_rcnn_ugs"], work_root=w, epochs=3, seeds=[1], archive=arch, root=fake)
    assert got["faster_rcnn_ugs"][1]["origin"] == "archive" and got["faster_rcnn_ugs"][1]["epochs"] == g["epochs"]
    # a replay of another setting's run (4 epochs) is named and left out
    logged.clear()
    assert study.finished_gradients(["faster_rcnn_ugs"], work_root=w, epochs=4, seeds=[1], archive=arch,
                                    root=fake, log=logged.append) == {}
    assert len(logged) == 1 and "another command" in logged[0]
    # the last epoch needs the run's checkpoint of the epoch before
    study.run_one("faster_rcnn_ugs", 0, epochs=3, work_root=w, root=fake)
    (w / "faster_rcnn_ugs-seed0" / "epoch_2.pth").unlink()
    with pytest.raises(FileNotFoundError, match="epoch_2.pth"):
        study.replay_gradients("faster_rcnn_ugs", 0, epochs=3, work_root=w, root=fake)


def test_finished_leaves_out_other_settings_runs_and_fills_from_the_archive(fake):
    import hashlib
    import json
    w, arch = fake / "w", fake / "archive"
    for seed in (0, 1):
        study.run_one("fcos", seed, epochs=2, work_root=w, root=fake)
    logged = []
    got = study.finished(["fcos", "gfl"], work_root=w, epochs=2, archive=arch, root=fake, log=logged.append)
    assert sorted(got) == ["fcos"] and sorted(got["fcos"]) == [0, 1] and logged == []
    assert {r["origin"] for r in got["fcos"].values()} == {"work dir"}
    assert got["fcos"][1]["metrics"]["AP"] == pytest.approx(0.21)          # the fake tool: 10 x 2 + seed
    # the same run started by another interpreter (another venv) is the same run
    record = w / "fcos-seed1" / "study_run.json"
    original = record.read_text()
    data = json.loads(original)
    data["command"] = "/opt/other/bin/python " + data["command"].split(" ", 1)[1]
    record.write_text(json.dumps(data))
    assert sorted(study.finished(["fcos"], work_root=w, epochs=2, root=fake)["fcos"]) == [0, 1]
    record.write_text(original)
    # another schedule is another command: those runs are named and left out
    assert study.finished(["fcos"], work_root=w, epochs=3, root=fake, log=logged.append) == {}
    assert len(logged) == 2 and all("left out (another command" in m for m in logged)
    # other weights at the same path: other inputs
    key = fake / study.SETTINGS["pretrained"]
    key.write_bytes(b"weights v2")
    logged.clear()
    assert study.finished(["fcos"], work_root=w, epochs=2, root=fake, log=logged.append) == {}
    assert len(logged) == 2 and all("left out (other inputs" in m for m in logged)
    key.write_bytes(b"weights v1")
    # archived, then the work dir of seed 1 is gone: the archive fills it in
    written = study.archive_runs(["fcos"], work_root=w, archive=arch, epochs=2, root=fake, log=logged.append)
    assert sorted(p.name for p in written) == ["fcos-seed0.json", "fcos-seed1.json"]
    archived = json.loads((arch / "fcos-seed1.json").read_text())
    assert archived == json.loads((w / "fcos-seed1" / "study_run.json").read_text())     # the record, as is
    assert study.archive_runs(["fcos"], work_root=w, archive=arch, epochs=2, root=fake, log=logged.append) == []
    import shutil
    shutil.rmtree(w / "fcos-seed1")
    got = study.finished(["fcos"], work_root=w, epochs=2, archive=arch, root=fake)
    assert {s: r["origin"] for s, r in got["fcos"].items()} == {0: "work dir", 1: "archive"}
    assert got["fcos"][1]["metrics"] == archived["metrics"]
    assert sorted(study.finished(["fcos"], work_root=w, epochs=2, archive=arch, seeds=(1,), root=fake)["fcos"]) == [1]
    # an archived record of another setting does not fill a gap either
    (arch / "fcos-seed1.json").write_text(json.dumps({**archived, "command": archived["command"] + " --x"}))
    logged.clear()
    assert sorted(study.finished(["fcos"], work_root=w, epochs=2, archive=arch, root=fake,
                                 log=logged.append)["fcos"]) == [0]
    assert logged == [f"archive/fcos-seed1.json: left out (another command than this setting's run: recorded "
                      f"{archived['command'] + ' --x'!r}, inputs "
                      f"{ {study.SETTINGS['pretrained']: hashlib.sha256(b'weights v1').hexdigest()} })"]
    # without the weights on this machine only the commands are compared, and that is said
    key.unlink()
    logged.clear()
    assert sorted(study.finished(["fcos"], work_root=w, epochs=2, root=fake, log=logged.append)["fcos"]) == [0]
    assert logged == [f"{study.SETTINGS['pretrained']} is not here: the runs' recorded weights (their SHA-256) "
                      "are not compared, only their commands"]


def test_archiving_a_rerun_with_other_metrics_replaces_the_record_and_says_so(fake):
    import json
    w, arch = fake / "w", fake / "archive"
    study.run_one("fcos", 0, epochs=2, work_root=w, root=fake)
    study.archive_runs(["fcos"], work_root=w, archive=arch, epochs=2, root=fake, log=lambda m: None)
    record = w / "fcos-seed0" / "study_run.json"
    rerun = json.loads(record.read_text())
    rerun["metrics"] = {"AP": 0.5, "AP_s": 0.25}
    record.write_text(json.dumps(rerun))
    logged = []
    study.archive_runs(["fcos"], work_root=w, archive=arch, epochs=2, root=fake, log=logged.append)
    assert logged[0] == ("archive/fcos-seed0.json: replaced (metrics {'AP': 0.2, 'AP_s': 0.1} -> "
                         "{'AP': 0.5, 'AP_s': 0.25})")
    assert json.loads((arch / "fcos-seed0.json").read_text())["metrics"] == {"AP": 0.5, "AP_s": 0.25}


def test_archive_keeps_the_studys_own_setting_only(capsys):
    with pytest.raises(SystemExit):
        study.main(["archive", "--epochs", "12"])
    assert "archive keeps the study's own runs" in capsys.readouterr().err


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


def test_plan_adds_the_gradient_replays_of_figs_1_2(tmp_path, capsys, monkeypatch):
    w = tmp_path / "w"
    _write_run(w / "pilot" / "synth128-128/e2", "t6_l2_baseline", 0, ap=1.0, ap_s=1.0, epochs=2)   # 60 s: 24 min per run
    asked = []

    def replays(arms, **kw):   # seed 0 replayed already: 480 s + 240 s
        asked.append((list(arms), kw["archive"], list(kw["seeds"])))
        return {"t6_l2_baseline": {0: {"seconds": {"first": 480.0, "last": 240.0}, "origin": "archive"}}}
    monkeypatch.setattr(study, "finished_gradients", replays)
    study.main(["plan", "--arms", "t6_l2_baseline", "--init", "scratch", "--work-root", str(w)])
    out = capsys.readouterr().out
    assert "~24.0 min per run (its 2-epoch pilot x 24) + 12.0 min per replay (measured; 1 replayed)" in out
    assert "left to run: ~2.8 h on this machine" in out        # 5 x 24 min + 4 x 12 min = 168 min
    assert asked[-1] == (["t6_l2_baseline"], study.GRADIENT_ARCHIVE, [0, 1, 2, 3, 4])
    study.main(["plan", "--arms", "gfl", "t6_l2_baseline", "--init", "scratch", "--work-root", str(w)])
    capsys.readouterr()
    assert asked[-1][0] == ["t6_l2_baseline"]   # only the gradient arms' replays are looked up
    study.main(["plan", "--arms", "t6_l2_baseline", "--init", "scratch", "--work-root", str(w), "--seeds", "0", "1",
                "2", "--no-archive"])
    assert "left to run: ~1.6 h" in capsys.readouterr().out   # 3 x 24 min + 2 x 12 min = 96 min
    assert asked[-1] == (["t6_l2_baseline"], None, [0, 1, 2])
    n_asked = len(asked)
    study.main(["plan", "--arms", "t6_l2_baseline", "--init", "scratch", "--work-root", str(w), "--no-replay"])
    assert len(asked) == n_asked     # no replay looked up
    out = capsys.readouterr().out
    assert "per replay" not in out and "its replay" not in out and "left to run: ~2.0 h" in out   # 5 x 24 min
    # an archived run whose replay was not archived: named, and its replay not priced
    monkeypatch.setattr(study, "finished", lambda arms, **kw: {"t6_l2_baseline": {
        0: {"origin": "archive", "seconds": 1440.0}, 1: {"origin": "archive", "seconds": 1440.0}}})
    study.main(["plan", "--arms", "t6_l2_baseline", "--init", "scratch", "--work-root", str(w)])
    out = capsys.readouterr().out
    assert "seed(s) [1] archived without a replay" in out
    assert "left to run: ~1.8 h" in out                        # 3 x 24 min + 3 x 12 min = 108 min
    monkeypatch.setattr(study, "finished_gradients", lambda arms, **kw: {})
    study.main(["plan", "--arms", "t6_l2_baseline", "--init", "scratch", "--work-root", str(w)])
    assert "+ its replay (cost not measured yet" in capsys.readouterr().out


def _derived(row, metric, seeds, **values):
    return [dict(row=row, method="m", variant="v", column=f"{metric} {k}", value=v, status="derived",
                 source="c", seed=seeds) for k, v in values.items()]


_STATS = dict(baseline_mean=30.0, baseline_sd=1.0, treatment_mean=33.0, treatment_sd=0.5, diff_mean=3.0,
              ci_low=1.5, ci_high=4.5, detectable=2.0)


def test_read_comparisons_returns_the_written_statistics_with_the_papers_claim():
    import csv
    with open(study.ROOT / "papers_tables" / "table1_visdrone.csv", newline="") as fh:   # apart from ugs.papers
        printed = {(r["row"], r["column"]): float(r["value"]) for r in csv.DictReader(fh) if r["status"] == "printed"}
    records = (_derived("table1_gfl", "AP", "0 1 2", **_STATS)
               + _derived("table1_fcos_loss", "AP_s", "0 1", **{**_STATS, "ci_low": -0.5})
               + _derived("table1_fcos", "AP", "0 1 2 3 4", **{**_STATS, "ci_low": -4.0, "ci_high": -1.0})
               + [dict(row="fcos", column="AP", value=40.0, status="measured", seed="0")])   # ignored here
    got = study.read_comparisons(records, "table1")
    # TABLES' order (fcos, fcos_loss, gfl), whatever the records' order
    assert [(r["comparison"], r["metric"], r["n"]) for r in got] == [
        ("table1_fcos", "AP", 5), ("table1_fcos_loss", "AP_s", 2), ("table1_gfl", "AP", 3)]
    fcos, loss, gfl = got
    assert gfl["paper"] == pytest.approx(printed[("gfl_v1_ugs", "AP")] - printed[("gfl_v1", "AP")])   # 31.2 - 28.4
    assert gfl["verdict"] == "holds" and {k: gfl[k] for k in _STATS} == _STATS
    assert fcos["paper"] == pytest.approx(2.5) and fcos["verdict"] == "contradicted"   # interval below 0
    assert loss["paper"] is None and loss["verdict"] == "no claim (interval contains 0)"
    assert gfl["seeds"] == ["0", "1", "2"] and gfl["baseline"] == "gfl" and gfl["treatment"] == "gfl_ugs"
    incomplete = [r for r in _derived("table1_gfl", "AP", "0 1", **_STATS) if not r["column"].endswith("detectable")]
    with pytest.raises(ValueError, match="table1_gfl AP lacks detectable"):
        study.read_comparisons(incomplete, "table1")
    with pytest.raises(ValueError, match="unknown study table 'table9'"):
        study.read_comparisons(records, "table9")


def test_read_runs_and_plot_study_show_every_run(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    records = [dict(row=arm, column=m, value=v + (0.5 if m == "AP_s" else 0.0), status="measured", seed=str(s))
               for arm, vals in (("fcos", [30.0, 31.0, 29.0]), ("fcos_grid_iou", [33.0, 34.0]),
                                 ("fcos_ugs", [35.0, 36.0, 37.0]))
               for s, v in enumerate(vals) for m in ("AP", "AP_s")]
    runs = study.read_runs(records + _derived("table1_fcos", "AP", "0 1 2", **_STATS))
    assert runs["fcos_ugs"]["AP"] == {0: 35.0, 1: 36.0, 2: 37.0} and runs["fcos_grid_iou"]["AP_s"] == {0: 33.5, 1: 34.5}
    assert set(runs) == {"fcos", "fcos_grid_iou", "fcos_ugs"}      # the derived rows are not runs
    fig = study.plot_study(records, "table1", "t", out=tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0 and len(fig.axes) == 2
    ax = fig.axes[0]
    from matplotlib.collections import LineCollection, PathCollection
    dots = sorted(float(y) for c in ax.collections if isinstance(c, PathCollection) for _, y in c.get_offsets())
    assert dots == sorted([30.0, 31.0, 29.0, 33.0, 34.0, 35.0, 36.0, 37.0])     # every AP run, once
    # seeds joined between neighbouring arms of a comparison: fcos-control (seeds 0, 1) and
    # control-UGS (seeds 0, 1); fcos -> fcos_ugs skips the control's column and is not drawn
    joins = [tuple(line.get_ydata()) for line in ax.lines if len(line.get_xdata()) == 2
             and line.get_xdata()[1] - line.get_xdata()[0] == 1]
    assert sorted(joins) == sorted([(30.0, 33.0), (31.0, 34.0), (33.0, 35.0), (34.0, 36.0)])
    # the mean's interval of fcos: t(0.975, 2) * sd / sqrt(3), sd 1 (values 29, 30, 31)
    from scipy import stats as sps
    half = sps.t.ppf(0.975, 2) / 3 ** 0.5
    segs = [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    assert any(abs(seg[0][1] - (30.0 - half)) < 1e-9 and abs(seg[1][1] - (30.0 + half)) < 1e-9 for seg in segs)
    assert len(segs) == 3        # one interval per arm with at least 2 runs


# the study tables of comparisons (notebooks 03 and 09; notebook 11's Fig. 6 table holds ratios)
_STUDY_COMMITTED = [(committed, nb) for nb, files in measured.STUDY_TABLES.items() for _, committed in files
                    if committed.split("_study")[0] in study.TABLES]


@pytest.mark.parametrize("committed, notebook", _STUDY_COMMITTED)
def test_committed_study_table_statistics_follow_from_its_runs(committed, notebook):
    # every derived value of the committed study table, recomputed from its own measured runs
    # with NumPy / SciPy (read with the csv module, apart from ugs.papers and ugs.stats); the
    # runs are written to 2 decimals, so the recomputed values differ by up to the rounding bound
    import numpy as np
    from scipy import stats as sps
    from study_tables import read_committed

    runs, derived = read_committed(committed)
    arms = {name: (base, treat) for name, base, treat, _ in study.COMPARISONS}
    assert runs and derived, committed
    checked = set()
    for (name, metric, stat), (value, seed_text) in derived.items():
        base, treat = arms[name]
        seeds = [int(s) for s in seed_text.split()]
        # the comparison uses exactly the seeds both arms finished
        assert seeds == sorted(set(runs[(base, metric)]) & set(runs[(treat, metric)])), (name, metric)
        b = np.array([runs[(base, metric)][s] for s in seeds])
        t = np.array([runs[(treat, metric)][s] for s in seeds])
        d, n = t - b, len(seeds)
        se = d.std(ddof=1) / np.sqrt(n)
        q = sps.t.ppf(0.975, n - 1)
        want = dict(baseline_mean=b.mean(), baseline_sd=b.std(ddof=1), treatment_mean=t.mean(),
                    treatment_sd=t.std(ddof=1), diff_mean=d.mean(), ci_low=d.mean() - q * se,
                    ci_high=d.mean() + q * se, detectable=(q + sps.t.ppf(0.8, n - 1)) * se)[stat]
        # rounding bound: each run +-0.005, so a difference +-0.01 and its SD's error about
        # 0.015; the quantiles multiply that by up to (q + q80) / sqrt(n) (n = 2: q = 12.7)
        tol = 0.02 + (q + sps.t.ppf(0.8, n - 1)) * 0.015 / np.sqrt(n)
        assert value == pytest.approx(want, abs=tol), (name, metric, stat)
        checked.add((name, metric))
    # each comparison with 2+ paired seeds in the runs has its statistics
    for name, (base, treat) in arms.items():
        for metric in ("AP", "AP_s"):
            paired = set(runs.get((base, metric), {})) & set(runs.get((treat, metric), {}))
            assert ((name, metric) in checked) == (len(paired) >= 2), (name, metric)


def test_study_table_is_the_fresh_report_or_the_committed_copy(tmp_path):
    import shutil
    work = tmp_path / "work"
    table, where = study.study_table("table1", "t1.csv", fresh=True, work_root=work, out=tmp_path / "o.csv",
                                     root=tmp_path)
    assert table is None and where == work                                   # no finished run yet
    for s, (b, t) in enumerate([(30.0, 33.0), (31.0, 33.5)]):
        _write_study_run(work, "gfl", s, b, b - 1, tmp_path)
        _write_study_run(work, "gfl_ugs", s, t, t - 1, tmp_path)
    _write_run(work, "fcos", 0, 50.0, 50.0)           # another setting's run (24 epochs): left out
    # and an archived run fills a seed the work dir lacks
    _write_study_run(work, "gfl_ugs", 2, 34.0, 33.0, tmp_path)
    (tmp_path / "arch").mkdir()
    (work / "gfl_ugs-seed2" / "study_run.json").rename(tmp_path / "arch" / "gfl_ugs-seed2.json")
    (work / "gfl_ugs-seed2").rmdir()
    logged = []
    table, where = study.study_table("table1", "t1.csv", fresh=True, work_root=work, out=tmp_path / "o.csv",
                                     archive=tmp_path / "arch", root=tmp_path, log=logged.append)
    assert logged[-1] == "finished runs of table1: 4 from work, 1 from the archive arch"
    assert any(m.startswith("work/fcos-seed0/study_run.json: left out (another command") for m in logged)
    assert not table.select(row="fcos") and table.value("gfl_ugs", "AP", seed="2") == 34.0
    assert where == tmp_path / "o.csv" and table.value("gfl_ugs", "AP", seed="1") == 33.5
    (rows,) = [r for r in study.read_comparisons(table.records, "table1") if r["metric"] == "AP"]
    assert rows["diff_mean"] == pytest.approx(2.75) and rows["n"] == 2           # (3 + 2.5) / 2
    # the committed copy: absent, then present (its run ids expanded from commands.csv)
    table, where = study.study_table("table1", "t1.csv", fresh=False, root=tmp_path)
    assert table is None and where == tmp_path / "papers_tables" / "measured" / "study" / "t1.csv"
    where.parent.mkdir(parents=True)
    shutil.copy(tmp_path / "o.csv", where)
    from ugs.papers import read_table, write_table      # the committed form: run ids and commands.csv
    recs, commands = measured.with_run_ids(read_table(where).records, "03_visdrone_detectors")
    write_table(recs, where)
    measured.write_commands(commands, where.parent / measured.COMMANDS_FILE)
    table, _ = study.study_table("table1", "t1.csv", fresh=False, root=tmp_path)
    assert table.record("gfl", "AP", seed="0")["source"].startswith("python -m ugs.openmmlab.train")
    assert table.record("gfl", "AP", seed="0")["run"] == "03_visdrone_detectors/gfl-seed0"


def test_comparisons_markdown_and_verdict_sentence_show_every_comparison():
    rows = study.read_comparisons(_derived("table1_gfl", "AP", "0 1 2", **_STATS)
                                  + _derived("table1_fcos_loss", "AP_s", "0 1", **{**_STATS, "ci_low": -0.5}),
                                  "table1")
    md = study.comparisons_markdown(rows).splitlines()
    assert len(md) == 4 and md[0].count("|") == 10
    assert md[2].startswith("| table1_fcos_loss (Eq. 16 instead of the IoU loss, same parametrisation) | AP_s | 2 |")
    assert "| +3.00 [-0.50, +4.50] | 2.00 | - | no claim (interval contains 0) |" in md[2]
    assert "| 30.00 ± 1.00 | 33.00 ± 0.50 | +3.00 [+1.50, +4.50] | 2.00 | +2.80 | holds |" in md[3]
    text = study.verdict_sentence(rows)
    assert "table1_gfl AP +3.00 [+1.50, +4.50] (n=3, paper +2.80): holds" in text
    assert "table1_fcos_loss AP_s +3.00 [-0.50, +4.50] (n=2, paper none): no claim (interval contains 0)" in text


def test_seed_runs_names_what_is_missing_then_trains_every_seed(fake):
    logged = []
    got = study.seed_runs(["fcos", "fcos_ugs"], 1, train_missing=False, epochs=2, work_root=fake / "w",
                          root=fake, log=logged.append)
    assert got == {} and not (fake / "w").exists()                 # nothing trained, both arms named
    assert logged == ["fcos: seed(s) [0, 1, 2, 3, 4] not finished under w",
                      "fcos_ugs: seed(s) [0, 1, 2, 3, 4] not finished under w"]
    logged.clear()
    got = study.seed_runs(["fcos", "fcos_ugs"], 1, train_missing=True, epochs=2, work_root=fake / "w",
                          root=fake, log=logged.append)
    assert logged == []                                              # every seed finished
    assert sorted(p.name for p in (fake / "w").iterdir()) == sorted(
        f"{a}-seed{s}" for a in ("fcos", "fcos_ugs") for s in range(5))
    # the fake tool's AP: 10 x epochs + seed (+1 for the UGS config), as fractions
    assert got["fcos"]["metrics"]["AP"] == pytest.approx(0.21) and got["fcos_ugs"]["metrics"]["AP"] == pytest.approx(0.22)
    assert got["fcos"]["seed"] == 1 and got["fcos"]["work_dir"] == fake / "w" / "fcos-seed1"


def test_check_notebook_setting_names_each_changed_parameter():
    ok = dict(dataset="synthetic", data_root=None, epochs=None, gpus=1, max_per_img=500, seed=3)
    assert study.check_notebook_setting(**ok) == ("data/synth128", 128, "work_dirs/study")
    assert study.check_notebook_setting(**{**ok, "epochs": 48}) == ("data/synth128", 128, "work_dirs/study")
    with pytest.raises(ValueError, match=r"leave dataset, epochs, max_per_img at the default"):
        study.check_notebook_setting(**{**ok, "dataset": "visdrone", "epochs": 24, "max_per_img": 100})
    with pytest.raises(ValueError, match=r"seed must be one of the study's seeds \(0, 1, 2, 3, 4\), got 5"):
        study.check_notebook_setting(**{**ok, "seed": 5})


def test_run_replays_the_gradient_arms_after_training_them(monkeypatch):
    # `study run` replays the first and last epoch of each t6_l2_baseline / faster_rcnn_ugs run it
    # trains (Figs. 1/2, notebook 12), right after it, while its checkpoints are on this machine
    calls = []
    monkeypatch.setattr(study, "check_pretrained", lambda *a, **k: None)
    monkeypatch.setattr(study.runs, "ensure_synthetic", lambda *a, **k: None)
    monkeypatch.setattr(study, "run_one", lambda arm, seed, **kw: calls.append(("train", arm, seed)))
    monkeypatch.setattr(study, "replay_gradients", lambda arm, seed, **kw: calls.append(("replay", arm, seed)))
    assert study.main(["run", "--arms", "fcos", "faster_rcnn_ugs", "t6_l2_baseline", "--seeds", "0", "1"]) == 0
    assert calls == [("train", "fcos", 0), ("train", "faster_rcnn_ugs", 0), ("replay", "faster_rcnn_ugs", 0),
                     ("train", "t6_l2_baseline", 0), ("replay", "t6_l2_baseline", 0),
                     ("train", "fcos", 1), ("train", "faster_rcnn_ugs", 1), ("replay", "faster_rcnn_ugs", 1),
                     ("train", "t6_l2_baseline", 1), ("replay", "t6_l2_baseline", 1)]
    calls.clear()
    assert study.main(["run", "--arms", "faster_rcnn_ugs", "--seeds", "0", "--no-replay"]) == 0
    assert calls == [("train", "faster_rcnn_ugs", 0)]
    with pytest.raises(SystemExit):                         # replay is for the two gradient arms only
        study.main(["replay", "--arms", "fcos", "--seeds", "0"])


def test_run_skip_archived_names_the_archived_seeds_and_does_not_train_them(monkeypatch, capsys):
    # `run --skip-archived`: a seed found only in the archive is named and not trained again; an arm
    # with no archived seed prints nothing about the archive (its local runs say "finished earlier")
    calls = []
    monkeypatch.setattr(study, "check_pretrained", lambda *a, **k: None)
    monkeypatch.setattr(study.runs, "ensure_synthetic", lambda *a, **k: None)
    monkeypatch.setattr(study, "finished", lambda arms, **kw: {
        "fcos": {0: {"origin": "archive"}, 1: {"origin": "work dir"}}, "gfl": {0: {"origin": "work dir"}}})
    monkeypatch.setattr(study, "run_one", lambda arm, seed, **kw: calls.append((arm, seed)))
    assert study.main(["run", "--arms", "fcos", "gfl", "--seeds", "0", "1", "--skip-archived"]) == 0
    out = capsys.readouterr().out
    assert "fcos: seed(s) [0] archived" in out
    assert "gfl: seed(s)" not in out
    assert calls == [("gfl", 0), ("fcos", 1), ("gfl", 1)]


def test_curve_joins_sittings_and_names_an_epoch_without_validation(tmp_path):
    # two sittings as mmengine writes them: the first validated epoch 1 and stopped after the
    # checkpoint of epoch 2; the resumed one validated epochs 3 and 4
    import json
    for stamp, rows in (("20260101_000000", [{"step": 1, "visdrone/AP": 10.0}, {"step": 2, "loss": 1.0}]),
                        ("20260102_000000", [{"step": 3, "visdrone/AP": 30.0}, {"step": 4, "visdrone/AP": 40.0}])):
        folder = tmp_path / stamp / "vis_data"
        folder.mkdir(parents=True)
        (folder / "scalars.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    said = []
    assert study.curve(tmp_path, log=said.append) == [10.0, 30.0, 40.0]
    assert len(said) == 1 and "epoch(s) [2]" in said[0]


def test_plan_falls_back_to_the_committed_cost_pilot(tmp_path, capsys, monkeypatch):
    # a work root without runs or pilots (a new machine): the committed log's 2-epoch pilots, x 24
    log = tmp_path / "cost.log"
    log.write_text("# python -m ugs.openmmlab.study pilot ... --epochs 2\n"
                   "[fcos seed 0] epoch 1 iter   10/50  eta 0:00:15  loss 3.919\n"
                   "[fcos seed 0] done in 30 s  final: AP 2.5, AP50 11.6\n"
                   "[gfl seed 0] done in 45.5 s  final: AP 15.1\n", encoding="utf-8")
    monkeypatch.setattr(study, "PILOT_COST_LOG", str(log))
    w = tmp_path / "w"
    study.main(["plan", "--arms", "fcos", "gfl", "t6_ce", "--work-root", str(w), "--no-archive"])
    out = capsys.readouterr().out
    assert f"fcos                   0/5 seeds finished; ~12.0 min per run (its committed 2-epoch pilot x 24, " \
           f"another machine: {log})" in out                                            # 30 s x 24 = 12 min
    assert "gfl                    0/5 seeds finished; ~18.2 min per run (its committed" in out   # 45.5 x 24 = 1092 s
    assert "t6_ce                  0/5 seeds finished; cost not measured" in out
    assert "left to run: unknown" in out
    study.main(["plan", "--arms", "fcos", "gfl", "--work-root", str(w), "--no-archive"])
    assert ("left to run: ~2.5 h on this machine (some arms priced by another machine's pilot"
            in capsys.readouterr().out)                                # 5 x (720 + 1092) s = 2.52 h
    # another setting than the study's: the committed pilots do not price it
    study.main(["plan", "--arms", "fcos", "--init", "scratch", "--work-root", str(w), "--no-archive"])
    assert "fcos                   0/5 seeds finished; cost not measured" in capsys.readouterr().out


def test_the_committed_cost_pilot_prices_every_arm():
    seconds = study.committed_pilot_seconds()
    assert set(seconds) == set(study.ARMS)
    # read off benchmarks/results/study_pilot/cost_128px_e2.log by hand
    assert (seconds["fcos"], seconds["faster_rcnn_ugs"], seconds["t6_ce"]) == (27.0, 94.0, 72.0)
