"""The study's backbone pretraining (ugs.openmmlab.pretrain) and how the study's runs load it."""
import numpy as np
import pytest
import torch

from ugs.openmmlab import pretrain, study


def _split(root, lines, size=64):
    """One VisDrone-layout image (a flat grey) with the given annotation lines."""
    import cv2
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    cv2.imwrite(str(root / "images" / "s0000000.jpg"), np.full((size, size, 3), 128, np.uint8))
    (root / "annotations" / "s0000000.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))
    return root


def test_square_is_centred_then_shifted_inside_the_image():
    assert pretrain._square(32, 32, 20, 64, 64) == (22, 22, 20)
    assert pretrain._square(10, 10, 30, 64, 64) == (0, 0, 30)      # 10 - 15 < 0: moved to the border
    assert pretrain._square(60, 5, 16, 64, 64) == (48, 0, 16)      # 60 + 8 > 64: moved left
    assert pretrain._square(32, 32, 100, 64, 48) == (8, 0, 48)     # larger than the image: its side, centred in x


def test_crops_take_objects_only_and_backgrounds_clear_of_every_line(tmp_path):
    # two objects (pedestrian, car), an "others" object (11) and an ignored region (0) in the
    # left half: the object crops are the two objects, one background crop (0.5 x 2) lands in
    # the free right half
    lines = ["4,4,6,10,1,1,0,0", "14,20,12,6,1,4,0,0", "2,40,8,8,1,11,0,0", "0,50,30,14,0,0,0,0"]
    x, y = pretrain.crops(_split(tmp_path / "train", lines), np.random.default_rng(0))
    assert x.shape == (3, 3, pretrain.CROP, pretrain.CROP) and x.dtype == np.uint8
    assert sorted(y.tolist()) == [0, 1, 4]


def test_a_split_without_objects_is_an_error_that_names_it(tmp_path):
    split = _split(tmp_path / "val", ["0,0,20,20,0,0,0,0"])
    with pytest.raises(ValueError, match="val: no annotated object"):
        pretrain.crops(split, np.random.default_rng(0))


def test_a_short_annotation_line_names_the_file_and_line(tmp_path):
    split = _split(tmp_path / "train", ["4,4,6,10,1,1,0,0", "1,2,3"])
    with pytest.raises(ValueError, match=r"s0000000.txt, line 2: expected 8 comma-separated fields"):
        pretrain.crops(split, np.random.default_rng(0))


def test_the_saved_backbone_is_what_a_study_config_loads(tmp_path):
    """The checkpoint the pretraining writes, read through the study's config options by mmdet's
    own Pretrained initialisation, gives back exactly the classifier's backbone weights."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from ugs.openmmlab.train import build_config

    torch.manual_seed(3)
    clf = pretrain.Classifier()
    path = tmp_path / "resnet18_synthetic.pth"
    torch.save(dict(state_dict=clf.backbone.state_dict()), path)
    cmd = study.command("fcos", 0, epochs=2, work_root=tmp_path / "w", pretrained=path)
    opts = cmd[cmd.index("--cfg-options") + 1:]
    assert opts[0] == "model.backbone.init_cfg._delete_=true"
    options = {}
    for o in opts:
        key, value = o.split("=", 1)
        options[key] = True if value == "true" else value
    register_all_modules(init_default_scope=True)
    cfg = build_config(str(study.ROOT / study.ARMS["fcos"]), profile="quick", epochs=2, options=options)
    backbone = MODELS.build(cfg.model).backbone
    backbone.init_weights()
    want = clf.backbone.state_dict()
    got = backbone.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_scratch_runs_have_no_backbone_options_and_a_missing_checkpoint_is_named(tmp_path):
    assert "--cfg-options" not in study.command("fcos", 0, epochs=2, work_root="w", init="scratch")
    with pytest.raises(ValueError, match="init must be one of"):
        study.command("fcos", 0, epochs=2, work_root="w", init="imagenet")
    with pytest.raises(SystemExit, match="missing.pth: the study's pretrained backbone is missing"):
        study.check_pretrained("pretrained", tmp_path / "missing.pth")
    study.check_pretrained("scratch", tmp_path / "missing.pth")      # not needed from scratch


def test_pilots_of_the_two_starts_live_apart():
    assert study.pilot_root("w", 12, "scratch") == "w/pilot/synth128-128/e12"
    assert study.pilot_root("w", 12, "pretrained") == "w/pilot/synth128-128/pt-e12"


def test_another_setting_pilots_apart_and_runs_only_in_a_work_root_of_its_own(capsys):
    assert study.pilot_root("w", 48, "pretrained", "data/synthetic128", 128) == "w/pilot/synthetic128-128/pt-e48"
    assert study.pilot_root("w", 48, "scratch", "data/synthetic", 256) == "w/pilot/synthetic-256/e48"
    with pytest.raises(SystemExit):    # argparse's error: the default study's runs would be restarted
        study.main(["run", "--init", "scratch"])
    assert "need a work root of their own" in capsys.readouterr().err


def test_the_same_settings_make_the_same_weight_file_whatever_the_sitting(tmp_path):
    """The study's runs name the weight file's SHA-256 among their inputs, so making the weights
    again (another sitting, another folder, another command line, another duration) must give
    the same bytes; the recorded digest is the file's."""
    import hashlib
    import json

    data = tmp_path / "data"      # one set for both: its generation is not what is tested here
    made = [pretrain.pretrain(tmp_path / name, images=6, epochs=1, data_root=data, batch=8)
            for name in ("first", "second")]
    files = [(tmp_path / name / "resnet18_synthetic.pth").read_bytes() for name in ("first", "second")]
    assert files[0] == files[1]
    digest = hashlib.sha256(files[0]).hexdigest()
    assert [m["weights_sha256"] for m in made] == [digest, digest]
    assert json.loads((tmp_path / "second" / "pretrain.json").read_text())["weights_sha256"] == digest
    changed = pretrain.pretrain(tmp_path / "third", images=6, epochs=1, data_root=data, batch=8, seed=1)
    assert changed["weights_sha256"] != digest      # the seed is a setting: other weights


def test_the_committed_study_weights_are_the_ones_their_record_describes():
    """The study's runs start from the committed weights (study.SETTINGS); their pretraining
    record names the file's SHA-256, and the file has the backbone's tensors."""
    import hashlib
    import json

    path = study.ROOT / study.SETTINGS["pretrained"]
    record = json.loads((path.parent / "pretrain.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["weights_sha256"]
    assert study.inputs() == {study.SETTINGS["pretrained"]: record["weights_sha256"]}
    saved = torch.load(path, map_location="cpu")
    assert set(saved["state_dict"]) == set(pretrain.Classifier().backbone.state_dict())
    assert saved["meta"]["history"] == record["history"] and "seconds" not in saved["meta"]
