"""``ugs data anchors`` (``ugs.data.anchors``): the fitness and best possible recall worked out by
hand, box sizes at training size, anchors recovered from boxes drawn around known sizes, and the
command's output and errors."""
import json

import numpy as np
import pytest

from ugs.cli import main
from ugs.data.anchors import anchor_metric, box_sizes, fit_anchors, fitness


def test_metric_and_fitness_by_hand():
    anchors = np.array([[10.0, 10.0], [20.0, 40.0]])
    wh = np.array([[10.0, 10.0], [5.0, 20.0], [30.0, 30.0]])
    # (10,10): 1 with the first anchor; (5,20): min(0.5, 0.5) = 0.5 with the first (0.25 with the
    # second); (30,30): first 1/3, second min(20/30, 30/40) = 2/3
    np.testing.assert_allclose(anchor_metric(anchors, wh), [1.0, 0.5, 2 / 3])
    assert fitness(anchors, wh, anchor_t=3.0) == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert fitness(anchors, wh, anchor_t=1.8) == pytest.approx((1 + 0 + 2 / 3) / 3)     # 0.5 < 1/1.8


def _coco(tmp_path, boxes, size=(1000, 500), crowd=()):
    doc = dict(images=[dict(id=1, file_name="a.jpg", width=size[0], height=size[1])],
               annotations=[dict(id=i, image_id=1, category_id=1, bbox=[0, 0, w, h], iscrowd=int(i in crowd))
                            for i, (w, h) in enumerate(boxes)],
               categories=[dict(id=1, name="x")])
    path = tmp_path / "train.json"
    path.write_text(json.dumps(doc))
    return path


def test_box_sizes_at_training_size_count_what_they_leave_out(tmp_path):
    path = _coco(tmp_path, [(100, 50), (2, 1), (300, 10), (40, 40)], crowd=(3,))
    wh, counts = box_sizes(path, 640)              # long side 1000 -> 640: x 0.64
    np.testing.assert_allclose(wh, [[64, 32], [192, 6.4]])
    assert counts == {"images": 1, "boxes": 3, "crowd (skipped)": 1, "too small (< 2 px, left out)": 1}


def test_anchors_recover_sixteen_known_sizes():
    rng = np.random.default_rng(7)
    true = np.array([(w, h) for w in (8, 24, 48, 96) for h in (10, 30, 60, 120)], dtype=float)   # 16 sizes
    wh = np.concatenate([t * rng.uniform(0.95, 1.05, (60, 2)) for t in true])
    res = fit_anchors(wh, generations=200, seed=0)
    got = np.array([a for level in res["anchors"] for a in level], dtype=float)
    assert got.shape == (16, 2)
    assert res["bpr"] == 1.0 and res["fitness"] > 0.9
    for t in true:   # every true size has a fitted anchor within 10 % (and 1 px of rounding) on both sides
        assert (np.abs(got - t) <= 0.1 * t + 1).all(axis=1).any(), t
    areas = got.prod(1)
    assert (np.diff(areas) >= 0).all()                          # smallest first: the stride-4 level
    assert res == fit_anchors(wh, generations=200, seed=0)      # seeded: repeats exactly


def test_command_prints_config_lines_and_names_bad_input(tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = _coco(tmp_path, [tuple(rng.uniform(3, 80, 2)) for _ in range(60)])
    assert main(["data", "anchors", str(path), "--img-size", "640", "--generations", "50"]) == 0
    out = capsys.readouterr().out
    assert "anchors = [" in out and out.count("    [(") == 4 and "BPR" in out
    assert main(["data", "anchors", str(tmp_path / "nope.json"), "--img-size", "640"]) == 1
    assert "nope.json" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [\n  {"id": 1,,}\n]}')
    assert main(["data", "anchors", str(bad), "--img-size", "640"]) == 1
    assert "bad.json:2" in capsys.readouterr().err
    few = _coco(tmp_path, [(10, 10)] * 5)
    assert main(["data", "anchors", str(few), "--img-size", "640"]) == 1
    assert "at least 16 boxes" in capsys.readouterr().err
