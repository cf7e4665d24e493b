"""SODA-A's crops as an mmrotate data set (Table 3).

:class:`SODAACropDataset` reads what ``ugs data crop`` writes: ``images/<name>.jpg`` and
``annfiles/<name>.txt`` (the DOTA text format: ``x1 y1 ... x4 y4 <class> <difficulty>`` per
object). It differs from mmrotate 1.0.0rc1's ``DOTADataset`` where that one does not fit SODA-A:

* the images are ``.jpg`` (``DOTADataset`` hard-codes ``.png``), and each crop's size is read
  from ``crops.json`` (``DOTADataset`` assumes one fixed size);
* files are read in sorted order (``DOTADataset`` keeps ``glob``'s, which depends on the file
  system), so a run's data order is the same everywhere;
* a line that cannot be read, or an unknown class, stops with the file and line
  (``DOTADataset`` raises a bare ``KeyError`` / ``IndexError``);
* each sample carries ``crop_offset`` ``(x, y)`` and ``source`` (the full image) from the crop's
  name, so its detections can be shifted back and merged (``ugs eval soda-a --merge``).

SODA-A's 9 classes are the default ``metainfo``.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset
from mmrotate.registry import DATASETS

from ugs.data.soda_a import SODA_A_CLASSES
from ugs.data.soda_a_crops import parse_crop_name

__all__ = ["SODAACropDataset"]


@DATASETS.register_module()
class SODAACropDataset(BaseDataset):
    """``data_root`` holds ``images/``, ``annfiles/`` and ``crops.json`` (``ugs data crop``);
    ``ann_file`` is the annfiles folder (``''``: test without annotations, every crop of
    ``crops.json``). ``diff_thr``: objects with a larger difficulty are flagged ignored (the
    crops tool writes 0)."""

    METAINFO = {"classes": SODA_A_CLASSES,
                "palette": [(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228),
                            (0, 60, 100), (0, 80, 100), (0, 0, 70), (250, 170, 30)]}

    def __init__(self, diff_thr: int = 100, **kwargs) -> None:
        self.diff_thr = diff_thr
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        index_path = osp.join(self.data_root, "crops.json")
        if not osp.isfile(index_path):
            raise FileNotFoundError(f"{index_path} does not exist: make the crops with `ugs data crop`")
        with open(index_path, encoding="utf-8") as f:
            crops = sorted(json.load(f)["crops"], key=lambda c: c["name"])
        cls_map = {c: i for i, c in enumerate(self.metainfo["classes"])}
        out = []
        for crop in crops:
            name = crop["name"]
            stem, size, x, y = parse_crop_name(name)
            info = dict(img_id=name, file_name=f"{name}.jpg", img_path=osp.join(self.data_prefix["img_path"], f"{name}.jpg"),
                        height=size, width=size, crop_offset=(x, y), source=crop["source"], instances=[])
            if self.ann_file:
                txt = osp.join(self.ann_file, f"{name}.txt")
                if not osp.isfile(txt):
                    raise FileNotFoundError(f"{txt}: missing (listed in {index_path})")
                with open(txt, encoding="utf-8") as f:
                    for line_no, line in enumerate(f, 1):
                        parts = line.split()
                        if not parts:
                            continue
                        try:
                            poly = [float(v) for v in parts[:8]]
                            label, difficulty = cls_map[parts[8]], int(parts[9])
                            if len(parts) != 10:
                                raise ValueError
                        except (ValueError, IndexError, KeyError):
                            raise ValueError(f"{txt}, line {line_no}: expected 'x1 y1 ... x4 y4 <class> <difficulty>' "
                                             f"with a class of {list(cls_map)}, got {line.strip()!r}") from None
                        info["instances"].append(dict(bbox=poly, bbox_label=label,
                                                      ignore_flag=int(difficulty > self.diff_thr)))
            out.append(info)
        return out

    def filter_data(self) -> List[dict]:
        """Drop crops without objects in training when ``filter_cfg.filter_empty_gt``."""
        if self.test_mode or not (self.filter_cfg or {}).get("filter_empty_gt", False):
            return self.data_list
        return [d for d in self.data_list if d["instances"]]

    def get_cat_ids(self, idx: int) -> List[int]:
        return [inst["bbox_label"] for inst in self.get_data_info(idx)["instances"]]
