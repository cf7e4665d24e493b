"""Does each stock baseline learn in the quick profile? Train the rows a notebook's quick
default does not train long enough to tell, and record the validation AP after every epoch.

    python benchmarks/quick_baselines.py --rows faster_rcnn cascade_rcnn \
        --out benchmarks/results/quick_baselines/rcnn.json
    python benchmarks/quick_baselines.py --rows dino dino_ugs --out benchmarks/results/quick_baselines/dino.json
    python benchmarks/quick_baselines.py --rows gfl --out benchmarks/results/quick_baselines/gfl.json

Each row is one run of ``python -m ugs.openmmlab.train CONFIG --profile quick`` on the kit's
synthetic set (generated if absent), from scratch, with the row's epochs and image size below;
its work dir keeps the merged config, log and metrics. FCOS needs no entry here: notebook 03's
quick default trains it for 3 epochs and reports its per-epoch AP (GFL V1 left that default to
keep the main job within 20 minutes, so it has its row here, with the same 3 epochs). The JSON
holds, per row, the exact command, the per-epoch AP / AP50 / AP_s (percent, as logged), the
last epoch's metrics and the wall time; the README quotes it.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: row -> (config, epochs, image size, max detections per image)
ROWS = {
    "gfl": ("configs/gfl/gfl_r50_fpn_1x_visdrone.py", 3, 256, 500),
    "faster_rcnn": ("configs/faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py", 3, 256, 500),
    "cascade_rcnn": ("configs/cascade_rcnn/cascade_rcnn_r50_fpn_1x_visdrone.py", 3, 256, 500),
    "dino": ("configs/dino/dino_5scale_r50_24e_visdrone.py", 6, 128, 300),
    "dino_ugs": ("configs/dino/dino_5scale_r50_ugs_24e_visdrone.py", 6, 128, 300),
}


def per_epoch(work_dir: pathlib.Path) -> list:
    """The validation entries of a run's log: epoch, AP, AP50, AP_s (percent, as mmengine logs)."""
    from ugs.openmmlab.runs import run_scalars

    return [dict(epoch=e["step"], AP=e["visdrone/AP"], AP50=e["visdrone/AP50"], AP_s=e["visdrone/AP_s"])
            for e in run_scalars(work_dir) if "visdrone/AP" in e]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    ap.add_argument("--data-root", default="data/synthetic")
    ap.add_argument("--work-dir", default="work_dirs/quick_baselines")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from ugs import reproducible
    from ugs.openmmlab import runs

    reproducible.set_environment()
    data = runs.resolve(args.data_root, ROOT)
    runs.ensure_synthetic(data, ROOT)
    record = dict(command="python benchmarks/quick_baselines.py " + " ".join(sys.argv[1:] if argv is None else argv),
                  machine=dict(python=platform.python_version(), processor=platform.processor() or platform.machine(),
                               cpus=os.cpu_count()),
                  rows={})
    for row in args.rows:
        config, epochs, size, max_dets = ROWS[row]
        work = runs.resolve(args.work_dir, ROOT) / row
        cmd = runs.train_command(config, root=ROOT, profile="quick", data_root=data, work_dir=work,
                                 epochs=epochs, seed=args.seed, max_per_img=max_dets, image_size=size)
        t0 = time.perf_counter()
        result = runs.train(row, cmd, work, ROOT)
        curve = per_epoch(work)
        aps = [e["AP"] for e in curve]
        record["rows"][row] = dict(command=runs.portable(cmd, ROOT), epochs=epochs, image_size=size,
                                   per_epoch=curve, last=result.get("metrics", {}),
                                   learns=bool(len(aps) > 1 and aps[-1] > aps[0] and aps[-1] > 1.0),
                                   seconds=round(time.perf_counter() - t0, 1))
        print(f"{row}: AP per epoch {' -> '.join(f'{a:.2f}' for a in aps)}", flush=True)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print("wrote", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
