"""The ``ugs`` command line.

::

    ugs data synth OUT [--num-train N] [--num-val N] [--image-size S] [--seed S]
        generate the synthetic small-object set in the VisDrone layout under OUT
        (OUT/{train,val}/{images,annotations}, OUT/meta.json), convert each split to
        OUT/annotations/{train,val}.json, write the same scenes in the VOC and COCO layouts
        (OUT/VOCdevkit, OUT/coco: Table 4's quick profile) and print the reports
    ugs data visdrone SPLIT_DIR OUT_JSON
        convert one VisDrone-DET split folder (images/ + annotations/) to COCO JSON and print
        the report
    ugs data synth-layouts ROOT
        write a synthetic set again as ROOT/VOCdevkit and ROOT/coco (same images; Table 4's
        quick profile reads them through mmdet's VOCDataset / CocoDataset)
    ugs data anchors ANN_JSON --img-size S [--levels 4 --per-level 4 --anchor-t 3 --seed 0]
        fit YOLO anchors to a COCO-style JSON's boxes at training size (TPH-YOLOv5's rule:
        k-means + genetic refinement) and print the config lines
    ugs data check voc|coco ROOT [--json]
        check a VOCdevkit or COCO 2017 folder before training: images and objects per split
        (every object kept, difficult / crowd, or rejected with its reason), missing image
        files, malformed XML / JSON with file and line; exit status 1 when anything is wrong
    ugs data soda-a SPLIT_DIR OUT_JSON [--json]
        read one SODA-A split (Images/ + Annotations/): le90 rotated boxes, ignore regions and
        the accounting (every annotation kept, ignore, or rejected with its reason) -> OUT_JSON
    ugs data crop CONVERTED_JSON OUT_DIR [--images DIR --size 800 --gap 150 ...]
        the official SODA-A crops (images, DOTA-format annfiles, crops.json)
    ugs data synth-soda-a OUT [--num-train N --num-val N --num-test N --seed S]
        the synthetic rotated small-object set in SODA-A's layout, each split converted
    ugs eval soda-a ANNOTATIONS DETECTIONS [--merge] [--out JSON] [--json]
        SODA-A's metrics (AP, AP50, AP75, AP_eS, AP_rS, AP_gS, AP_N) of rotated detections on
        full images, or of crop detections shifted back and merged (--merge)
    ugs train CONFIG [--profile quick|paper] [--data-root D] [--work-dir W] [--epochs N] ...
        train and evaluate a kit config (``python -m ugs.openmmlab.train --help``; needs the
        OpenMMLab stack)

``python -m ugs.cli ...`` is the same command. Exit status: 0 on success, 2 on a bad
argument (argparse's message names it), 1 when the data itself is malformed (the message
names the file and the line).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional


def _int_at_least(lo: int, hi: Optional[int] = None):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise argparse.ArgumentTypeError(f"must be {rng}, got {v}")
        return v
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ugs", description="UGS reproduction kit tools.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    data = sub.add_parser("data", help="data sets: the synthetic set, VisDrone-DET -> COCO")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    dsub.required = True

    s = dsub.add_parser("synth", help="generate the synthetic small-object set and convert it",
                        description="Generate the seeded synthetic small-object set in the "
                                    "VisDrone layout under OUT, convert train / val to "
                                    "OUT/annotations/{train,val}.json and write the same scenes "
                                    "in the VOC and COCO layouts (OUT/VOCdevkit, OUT/coco).")
    s.add_argument("out", metavar="OUT", help="output folder")
    s.add_argument("--num-train", type=_int_at_least(1), default=200, metavar="N",
                   help="training images (default 200)")
    s.add_argument("--num-val", type=_int_at_least(1), default=50, metavar="N",
                   help="validation images (default 50)")
    s.add_argument("--image-size", type=_int_at_least(64, 4096), default=256, metavar="S",
                   help="side of the square images in px, 64..4096 (default 256)")
    s.add_argument("--seed", type=_int_at_least(0, 2 ** 63 - 1), default=0, metavar="S",
                   help="random seed (default 0)")
    s.add_argument("--json", action="store_true", help="print the reports as JSON")
    s.set_defaults(subparser=s)

    v = dsub.add_parser("visdrone", help="convert one VisDrone-DET split to COCO JSON",
                        description="Convert one VisDrone-DET split folder (images/*.jpg + "
                                    "annotations/*.txt) to COCO JSON.")
    v.add_argument("split_dir", metavar="SPLIT_DIR",
                   help="e.g. VisDrone2019-DET-val (holding images/ and annotations/)")
    v.add_argument("out_json", metavar="OUT_JSON", help="the COCO JSON file to write")
    v.add_argument("--allow-missing-annotations", action="store_true",
                   help="images without an annotation file get none (test-challenge)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(subparser=v)

    y = dsub.add_parser("synth-layouts", help="write the synthetic set again in the VOC and COCO layouts",
                        description="Write ROOT's synthetic set as ROOT/VOCdevkit (VOC2007 trainval / test, "
                                    "VOC2012 trainval) "
                                    "and ROOT/coco (instances_train2017 / val2017), same images "
                                    "(ugs.data.layouts: class mapping, difficult, ignored regions).")
    y.add_argument("root", metavar="ROOT", help="a synthetic set made by `ugs data synth`")
    y.set_defaults(subparser=y)

    c = dsub.add_parser("check", help="check a VOC or COCO folder before training",
                        description="Check a PASCAL VOC (VOCdevkit) or COCO 2017 folder: counts per "
                                    "split, missing image files, malformed annotations with file and "
                                    "line. Exit status 1 when anything is missing or malformed.")
    c.add_argument("format", choices=("voc", "coco"), help="the data set's format")
    c.add_argument("root", metavar="ROOT", help="the VOCdevkit folder, or the COCO folder holding annotations/")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(subparser=c)

    a = dsub.add_parser("anchors", help="YOLO anchors from a data set (TPH-YOLOv5's k-means rule)",
                        description="Fit anchors to the boxes of a COCO-style JSON at training size by "
                                    "TPH-YOLOv5's rule (YOLOv5's AutoAnchor: k-means, then a genetic "
                                    "refinement of the best-ratio fitness at anchor_t; ugs.data.anchors) "
                                    "and print the config lines.")
    a.add_argument("ann_json", metavar="ANN_JSON", help="e.g. data/visdrone/annotations/train.json")
    a.add_argument("--img-size", type=_int_at_least(32), required=True, metavar="S",
                   help="training size: each image's long side is resized to S (TPH-YOLOv5: 640 or 1536)")
    a.add_argument("--levels", type=_int_at_least(1), default=4, help="prediction levels (default 4)")
    a.add_argument("--per-level", type=_int_at_least(1), default=4, help="anchors per level (default 4)")
    a.add_argument("--anchor-t", type=float, default=3.0, help="anchor_t of the hyper-parameters (default 3)")
    a.add_argument("--generations", type=_int_at_least(0), default=1000, help="genetic refinement steps (default 1000)")
    a.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a.set_defaults(subparser=a)

    so = dsub.add_parser("soda-a", help="read one SODA-A split: polygons -> rotated boxes, every object counted",
                         description="Read one SODA-A split folder (Images/*.jpg + Annotations/*.json), turn "
                                     "each polygon into its le90 rotated box as the official loader does, "
                                     "write one JSON (images, objects, ignore regions, the accounting) and print "
                                     "the accounting: annotations = objects + ignore regions + rejected, each "
                                     "rejection with its reason. Exit status 1 on a malformed file (named, with "
                                     "the annotation's index).")
    so.add_argument("split_dir", metavar="SPLIT_DIR", help="e.g. SODA-A/rawData/train (holding Images/ and Annotations/)")
    so.add_argument("out_json", metavar="OUT_JSON", help="the JSON file to write (read by `ugs data crop` and `ugs eval soda-a`)")
    so.add_argument("--json", action="store_true", help="print the accounting as JSON")
    so.set_defaults(subparser=so)

    cr = dsub.add_parser("crop", help="cut a converted SODA-A split into the official 800 px crops",
                         description="Cut a split converted by `ugs data soda-a` into crops as the SODA authors' "
                                     "split tool does (800 px windows, gap 150, image rate 0.6, object iof 0.7, "
                                     "ignore regions painted out; ugs.data.soda_a_crops): OUT_DIR/images/*.jpg, "
                                     "OUT_DIR/annfiles/*.txt (DOTA format), OUT_DIR/crops.json.")
    cr.add_argument("converted_json", metavar="CONVERTED_JSON", help="written by `ugs data soda-a`")
    cr.add_argument("out_dir", metavar="OUT_DIR", help="folder for the crops")
    cr.add_argument("--images", metavar="DIR", help="the split's images (default: <SPLIT_DIR>/Images of the conversion)")
    cr.add_argument("--size", type=_int_at_least(32), default=800, help="window side in px (default 800)")
    cr.add_argument("--gap", type=_int_at_least(0), default=150, help="overlap of neighbouring windows in px (default 150)")
    cr.add_argument("--iof-thr", type=float, default=0.7, help="share of an object inside a window to keep it there (default 0.7)")
    cr.add_argument("--img-rate-thr", type=float, default=0.6, help="share of a window inside the image to keep it (default 0.6)")
    cr.set_defaults(subparser=cr)

    ss = dsub.add_parser("synth-soda-a", help="generate the synthetic rotated small-object set in SODA-A's layout",
                         description="Generate the seeded synthetic SODA-A-format set under OUT "
                                     "(OUT/{train,val,test}/{Images,Annotations}, OUT/meta.json) and convert each "
                                     "split to OUT/converted/<split>.json (ugs.data.synthetic_soda_a).")
    ss.add_argument("out", metavar="OUT", help="output folder")
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        ss.add_argument(f"--num-{split}", type=_int_at_least(0), default=n, metavar="N", help=f"{split} images (default {n})")
    ss.add_argument("--seed", type=_int_at_least(0, 2 ** 63 - 1), default=0, metavar="S", help="random seed (default 0)")
    ss.set_defaults(subparser=ss)

    ev = sub.add_parser("eval", help="evaluate detections: SODA-A's protocol")
    esub = ev.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND")
    esub.required = True
    es = esub.add_parser("soda-a", help="SODA-A's metrics of rotated detections",
                         description="Score rotated detections with SODA-A's protocol (rotated IoU, COCO matching "
                                     "at IoU 0.50:0.95, 20,000 detections per image and class, the Small / eS / rS / "
                                     "gS / Normal ranges; ugs.evaluation.rotated). DETECTIONS is a JSON list of "
                                     "{image_id or file_name, category_id (0-8), rbox [cx, cy, w, h, angle in "
                                     "radians], score}; with --merge, file_name names a crop "
                                     "(<stem>__<size>__<x>___<y>) and the detections are shifted onto their "
                                     "image and merged by per-class rotated NMS first.")
    es.add_argument("annotations", metavar="ANNOTATIONS", help="a split converted by `ugs data soda-a`")
    es.add_argument("detections", metavar="DETECTIONS", help="the detections JSON")
    es.add_argument("--merge", action="store_true", help="detections are on crops: shift back and merge")
    es.add_argument("--nms-iou", type=float, default=0.5, help="IoU of the merge's rotated NMS (default 0.5)")
    es.add_argument("--out", metavar="JSON", help="write the metrics here")
    es.add_argument("--json", action="store_true", help="print the metrics as JSON")
    es.set_defaults(subparser=es)

    t = sub.add_parser("train", add_help=False, help="train and evaluate a kit config "
                       "(arguments of python -m ugs.openmmlab.train)")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(subparser=t)
    return p


def _print_report(report: dict, as_json: bool) -> None:
    from .data.visdrone import format_report
    print(json.dumps(report, indent=2) if as_json else format_report(report), flush=True)


def _write_layouts(root: Path) -> None:
    """Write ``root``'s VOC and COCO copies (Table 4's quick profile) and print their reports."""
    from .data.layouts import write_layout_copies
    for fmt, reports in write_layout_copies(root).items():
        for split, counts in reports.items():
            print(f"{fmt} {split}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)


def _progress(what: str):
    """A one-line progress display on stderr (``what: k/n``), every 5 % and at the end."""
    def show(k: int, n: int) -> None:
        if k == n or k % max(1, n // 20) == 0:
            print(f"\r{what}: {k}/{n}", end="\n" if k == n else "", file=sys.stderr, flush=True)
    return show


def _soda_a_command(args, sub) -> int:
    from .data.soda_a import SodaAFormatError, convert_soda_a, format_soda_a_report

    name = f"ugs data {args.data_command}"
    if args.data_command == "soda-a":
        split = Path(args.split_dir)
        if not split.is_dir():
            sub.error(f"argument SPLIT_DIR: {split} is not a folder")
        if Path(args.out_json).is_dir():
            sub.error(f"argument OUT_JSON: {args.out_json} is a folder, expected a file name")
        try:
            doc = convert_soda_a(split, args.out_json, progress=_progress(f"reading {split}"))
        except (SodaAFormatError, FileNotFoundError) as e:
            print(f"{name}: error: {e}", file=sys.stderr)
            return 1
        print(json.dumps(doc["report"], indent=2) if args.json else format_soda_a_report(doc["report"]))
        print(f"wrote {args.out_json}")
        return 0
    if args.data_command == "crop":
        from .data.soda_a_crops import crop_soda_a

        conv = Path(args.converted_json)
        if not conv.is_file():
            sub.error(f"argument CONVERTED_JSON: {conv} does not exist (make it with `ugs data soda-a`)")
        for flag, v in (("--iof-thr", args.iof_thr), ("--img-rate-thr", args.img_rate_thr)):
            if not 0.0 < v <= 1.0:
                sub.error(f"argument {flag}: must be in (0, 1], got {v}")
        if args.gap >= args.size:
            sub.error(f"argument --gap: must be smaller than --size ({args.size}), got {args.gap}")
        try:
            source = json.loads(conv.read_text(encoding="utf-8")).get("source")
        except json.JSONDecodeError as e:
            print(f"{name}: error: {conv}: not valid JSON (line {e.lineno}: {e.msg})", file=sys.stderr)
            return 1
        images = Path(args.images) if args.images else Path(source or ".") / "Images"
        if not images.is_dir():
            sub.error(f"argument --images: {images} is not a folder")
        try:
            res = crop_soda_a(conv, images, args.out_dir, size=args.size, gap=args.gap, iof_thr=args.iof_thr,
                              img_rate_thr=args.img_rate_thr, progress=_progress(f"cropping {conv.name}"))
        except (FileNotFoundError, ValueError) as e:
            print(f"{name}: error: {e}", file=sys.stderr)
            return 1
        print(f"{res['images']} images -> {len(res['crops'])} crops of {res['size']} px in {args.out_dir}; "
              f"{res['objects']} objects, {sum(c['objects'] for c in res['crops'])} object-crop pairs, "
              f"{len(res['objects_in_no_crop'])} objects in no crop; "
              f"{res['ignore_regions_painted']} ignore regions painted out")
        return 0
    from .data.synthetic_soda_a import generate_synthetic_soda_a

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        sub.error(f"argument OUT: {out} exists and is not a folder")
    splits = {s: getattr(args, f"num_{s}") for s in ("train", "val", "test") if getattr(args, f"num_{s}") > 0}
    meta = generate_synthetic_soda_a(out, splits=splits, seed=args.seed)
    for split in splits:
        doc = convert_soda_a(out / split, out / "converted" / f"{split}.json")
        print(f"{split}: {meta['counts'][split]['images']} images; " + format_soda_a_report(doc["report"]))
    return 0


def _eval_soda_a(args, sub) -> int:
    import time

    from .evaluation.coco_ap import write_metrics_json
    from .evaluation.rotated import (evaluate_soda_a, format_soda_a_metrics, merge_crop_detections,
                                     resolve_image_ids)

    for name, path in (("ANNOTATIONS", args.annotations), ("DETECTIONS", args.detections)):
        if not Path(path).is_file():
            sub.error(f"argument {name}: {path} does not exist")
    if not 0.0 < args.nms_iou <= 1.0:
        sub.error(f"argument --nms-iou: must be in (0, 1], got {args.nms_iou}")
    docs = {}
    for name, path in (("annotations", args.annotations), ("detections", args.detections)):
        try:
            docs[name] = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            print(f"ugs eval soda-a: error: {path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
                  file=sys.stderr)
            return 1
    if not isinstance(docs["detections"], list):
        print(f"ugs eval soda-a: error: {args.detections}: expected a JSON list of detections", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    try:
        dets = resolve_image_ids(docs["detections"], docs["annotations"], merge=args.merge)
        n_in = len(dets)
        if args.merge:
            dets = merge_crop_detections(dets, args.nms_iou)
            print(f"merged {n_in} crop detections into {len(dets)} (per-class rotated NMS at IoU {args.nms_iou})",
                  file=sys.stderr)
        metrics = evaluate_soda_a(docs["annotations"], dets, progress=True)
    except (ValueError, KeyError) as e:
        print(f"ugs eval soda-a: error: {args.detections}: {e}", file=sys.stderr)
        return 1
    metrics["seconds"] = time.perf_counter() - t0
    metrics["merged_from"] = n_in if args.merge else None
    print(json.dumps(metrics, indent=2, default=float) if args.json else format_soda_a_metrics(metrics))
    if args.out:
        print("wrote", write_metrics_json(metrics, Path(args.out).parent, filename=Path(args.out).name))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:           # everything after `train` belongs to the training tool
        from .openmmlab.train import main as train_main
        return train_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = args.subparser            # its error() prints "ugs data <cmd>: error: argument ..."
    if args.command == "eval":
        return _eval_soda_a(args, sub)
    from .data.visdrone import convert_visdrone

    if args.data_command == "synth":
        from .data.synthetic import generate_synthetic
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            sub.error(f"argument OUT: {out} exists and is not a folder")
        meta = generate_synthetic(out, num_train=args.num_train, num_val=args.num_val,
                                  image_size=args.image_size, seed=args.seed)
        st = meta["size_stats"]
        print(f"generated {args.num_train} train + {args.num_val} val images "
              f"({args.image_size} px, seed {args.seed}) in {meta['generation_seconds']:.2f} s: "
              f"{st['objects']} objects, median sqrt(area) {st['sqrt_area_px']['median']} px, "
              f"{100 * st['fraction_area_under_32sq']:.1f} % with area < 32^2", flush=True)
        for split in ("train", "val"):
            try:
                report = convert_visdrone(out / split, out / "annotations" / f"{split}.json")
            except ValueError as e:
                print(f"ugs data synth: error: {e}", file=sys.stderr)
                return 1
            _print_report(report, args.json)
        _write_layouts(out)
        return 0

    if args.data_command == "visdrone":
        split = Path(args.split_dir)
        if not split.is_dir():
            sub.error(f"argument SPLIT_DIR: {split} is not a folder")
        if not (split / "images").is_dir():
            sub.error(f"argument SPLIT_DIR: {split} has no images/ folder "
                         f"(expected images/*.jpg + annotations/*.txt)")
        if not (split / "annotations").is_dir() and not args.allow_missing_annotations:
            sub.error(f"argument SPLIT_DIR: {split} has no annotations/ folder "
                         f"(use --allow-missing-annotations for an unlabelled split)")
        out_json = Path(args.out_json)
        if out_json.is_dir():
            sub.error(f"argument OUT_JSON: {out_json} is a folder, expected a file name")
        try:
            report = convert_visdrone(split, out_json,
                                      allow_missing_annotations=args.allow_missing_annotations)
        except ValueError as e:
            print(f"ugs data visdrone: error: {e}", file=sys.stderr)
            return 1
        _print_report(report, args.json)
        return 0
    if args.data_command in ("soda-a", "crop", "synth-soda-a"):
        return _soda_a_command(args, sub)
    if args.data_command == "synth-layouts":
        root = Path(args.root)
        if not (root / "annotations" / "train.json").is_file():
            sub.error(f"argument ROOT: {root} has no annotations/train.json (make it with: ugs data synth {root})")
        _write_layouts(root)
        print(f"wrote {root / 'VOCdevkit'} and {root / 'coco'}")
        return 0
    if args.data_command == "check":
        from .data.check import check_coco, check_voc, format_check
        root = Path(args.root)
        if not root.is_dir():
            sub.error(f"argument ROOT: {root} is not a folder")
        report = (check_voc if args.format == "voc" else check_coco)(root)
        print(json.dumps(report, indent=2) if args.json else format_check(report), flush=True)
        return 1 if report["problems"] else 0
    if args.data_command == "anchors":
        from .data.anchors import box_sizes, fit_anchors, format_anchors
        if args.anchor_t <= 1.0:
            sub.error(f"argument --anchor-t: must be > 1, got {args.anchor_t}")
        try:
            wh, counts = box_sizes(args.ann_json, args.img_size)
            print(f"fitting {args.levels * args.per_level} anchors to {len(wh)} boxes ({args.generations} "
                  f"generations)", file=sys.stderr, flush=True)
            result = fit_anchors(wh, levels=args.levels, per_level=args.per_level, anchor_t=args.anchor_t,
                                 generations=args.generations, seed=args.seed,
                                 progress=lambda g, f: print(f"  generation {g}: fitness {f:.4f}", file=sys.stderr,
                                                             flush=True))
        except (FileNotFoundError, ValueError) as e:
            print(f"ugs data anchors: error: {e}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(dict(result, counts=counts, img_size=args.img_size, ann_json=args.ann_json), indent=2))
        else:
            print("boxes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            print(format_anchors(result, args.img_size, args.ann_json, counts))
        return 0
    parser.error("unknown command")     # unreachable: the subparsers are required
    return 2


if __name__ == "__main__":
    sys.exit(main())
