"""Table 4's quick profile: the training tool's ``--data-root`` and quick settings on the stock VOC
and COCO recipes (a ``RepeatDataset`` of a ``ConcatDataset`` for VOC07+12; COCO 2017's own file
names), and mmdet's datasets built from the merged configs on the synthetic set's VOC and COCO
copies, with the ``--cfg-options`` notebook 07 passes."""
import os

import pytest

pytest.importorskip("mmdet")

from ugs.openmmlab.train import _parse_options, build_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(name):
    return os.path.join(ROOT, "configs", "table4", name)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    from ugs.data import make_synthetic_set
    from ugs.data.layouts import write_layout_copies

    root = tmp_path_factory.mktemp("t4")
    make_synthetic_set(root, num_train=10, num_val=4, image_size=96, seed=5)
    write_layout_copies(root)
    return root


def _build(cfg_dict):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    register_all_modules()
    return DATASETS.build(cfg_dict)


def test_voc_quick_profile_on_the_synthetic_copy(layouts, tmp_path):
    data = str(layouts / "VOCdevkit")
    # notebook 07's options for 7 training images: 4 from VOC2007 trainval, 3 from VOC2012 trainval
    cfg = build_config(_config("faster_rcnn_r50_fpn_ugs_1x_voc0712.py"), profile="quick", data_root=data,
                       work_dir=str(tmp_path), epochs=1, image_size=128,
                       options=_parse_options(["train_dataloader.dataset.dataset.datasets.0.indices=4",
                                               "train_dataloader.dataset.dataset.datasets.1.indices=3"]))
    train = cfg.train_dataloader.dataset
    assert train.type == "RepeatDataset" and train.times == 1       # the recipe's x3 is one pass here
    leaves = train.dataset.datasets
    assert [d.ann_file for d in leaves] == ["VOC2007/ImageSets/Main/trainval.txt", "VOC2012/ImageSets/Main/trainval.txt"]
    assert {d.data_root for d in leaves} == {data + os.sep}
    assert all([s.scale for s in d.pipeline if s.type == "Resize"] == [(128, 128)] for d in leaves)
    assert cfg.val_dataloader.dataset.data_root == data + os.sep
    assert cfg.val_evaluator.type == "VOCMetric" and cfg.val_evaluator.eval_mode == "11points"
    # the milestone of the recipe (3 of 4 epochs) lands at 3/4 of the one-epoch run
    assert [s.milestones for s in cfg.param_scheduler if "milestones" in s] == [[0.75]]
    ds = _build(cfg.train_dataloader.dataset)
    assert len(ds) == 7
    files = [os.path.basename(ds[i]["data_samples"].img_path) for i in range(len(ds))]
    y7 = (layouts / "VOCdevkit/VOC2007/ImageSets/Main/trainval.txt").read_text().split()
    y12 = (layouts / "VOCdevkit/VOC2012/ImageSets/Main/trainval.txt").read_text().split()
    assert files == [f"{i}.jpg" for i in y7[:4] + y12[:3]]
    val = _build(cfg.val_dataloader.dataset)
    assert len(val) == 4


def test_coco_quick_profile_on_the_synthetic_copy(layouts, tmp_path):
    data = str(layouts / "coco")
    cfg = build_config(_config("faster_rcnn_r50_fpn_1x_coco.py"), profile="quick", data_root=data,
                       work_dir=str(tmp_path), epochs=2, image_size=128,
                       options=_parse_options(["train_dataloader.dataset.indices=6"]))
    train = cfg.train_dataloader.dataset
    assert (train.data_root, train.ann_file, train.data_prefix) == (
        data + os.sep, "annotations/instances_train2017.json", dict(img="train2017/"))
    assert cfg.val_dataloader.dataset.ann_file == "annotations/instances_val2017.json"
    # the kit's evaluator reads the copy's val JSON and writes metrics.json into the work dir
    assert cfg.val_evaluator.type == "CocoBoxMetric"
    assert cfg.val_evaluator.ann_file == os.path.join(data, "annotations/instances_val2017.json")
    assert cfg.val_evaluator.outfile_dir == str(tmp_path)
    assert len(_build(train)) == 6 and len(_build(cfg.val_dataloader.dataset)) == 4


def test_paper_profile_data_root_keeps_the_recipes_files(tmp_path):
    cfg = build_config(_config("faster_rcnn_r101_fpn_1x_voc0712.py"), profile="paper", data_root="/data/VOCdevkit",
                       gpus=8)
    train = cfg.train_dataloader.dataset
    assert train.times == 3 and cfg.train_dataloader.batch_size == 2        # 16 images per step over 8 GPUs
    assert {d.data_root for d in train.dataset.datasets} == {"/data/VOCdevkit/"}
    cfg = build_config(_config("faster_rcnn_r101_fpn_ugs_1x_coco.py"), profile="paper", data_root="/data/coco")
    assert cfg.val_evaluator.ann_file == "/data/coco/annotations/instances_val2017.json"
    assert cfg.train_dataloader.dataset.ann_file == "annotations/instances_train2017.json"
