"""Run the training tool (``python -m ugs.openmmlab.train``) from a notebook: the exact command
line of one run, and the run itself in a subprocess with one live progress line.

Shared by the notebooks that train detectors (03: Table 1, 10: Table 7), so that every run is
the command a user would type, and its full output is kept next to its checkpoints.
"""
from __future__ import annotations

import collections
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Callable, List, Optional, Sequence

__all__ = ["resolve", "relative", "dataset_path", "ensure_synthetic", "check_visdrone", "count_images", "train_command",
           "portable", "condense", "loss_terms", "LiveLine", "train", "run_scalars", "train_loss"]


def resolve(path, root) -> pathlib.Path:
    """A path as given (``~`` expanded), relative ones taken from the repository ``root``."""
    p = pathlib.Path(path).expanduser()
    return p if p.is_absolute() else pathlib.Path(root) / p


def _env(root) -> dict:
    """This process's environment with ``root`` first on ``PYTHONPATH`` and unbuffered output."""
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}


def dataset_path(dataset: str, data_root, root) -> pathlib.Path:
    """The data folder of ``dataset`` (``"synthetic"``: ``data_root`` or ``<root>/data/synthetic``;
    ``"visdrone"``: ``data_root``, required), or a ValueError naming the bad parameter."""
    if dataset not in ("synthetic", "visdrone"):
        raise ValueError(f"dataset must be 'synthetic' or 'visdrone', got {dataset!r}")
    if dataset == "visdrone" and data_root is None:
        raise ValueError("dataset 'visdrone' needs data_root (see notebook 03 and the README's Data section)")
    return resolve(data_root if data_root is not None else "data/synthetic", root)


def count_images(data_path, split: str) -> int:
    """How many images ``<data_path>/annotations/<split>.json`` lists."""
    return len(json.loads((pathlib.Path(data_path) / "annotations" / f"{split}.json")
                          .read_text(encoding="utf-8"))["images"])


def ensure_synthetic(data_path, root, image_size: Optional[int] = None) -> bool:
    """Generate the kit's synthetic set at ``data_path`` (``python -m ugs.cli data synth``, run
    in ``root``; ``image_size``: its ``--image-size``, else the generator's default) when its
    ``annotations/val.json`` is missing; True when it was generated. Raises with the
    generator's error output when it fails, and a ValueError naming the folder when an existing
    set was generated at another ``image_size``."""
    data_path = pathlib.Path(data_path)
    if (data_path / "annotations" / "val.json").is_file():
        meta = data_path / "meta.json"
        if image_size is not None and meta.is_file():
            made = json.loads(meta.read_text(encoding="utf-8"))["parameters"]["image_size"]
            if list(made) != [int(image_size)] * 2:
                raise ValueError(f"{data_path}: a synthetic set of {made[0]}x{made[1]} px (meta.json), "
                                 f"not {image_size}x{image_size}: use another folder")
        return False
    cmd = [sys.executable, "-m", "ugs.cli", "data", "synth", str(data_path)]
    if image_size is not None:
        cmd += ["--image-size", str(int(image_size))]
    print("$", shlex.join(cmd), flush=True)
    gen = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=_env(root))
    if gen.returncode != 0:
        raise RuntimeError(f"ugs data synth failed (exit {gen.returncode}):\n{gen.stderr[-3000:]}")
    return True


def check_visdrone(data_path) -> None:
    """Raise FileNotFoundError, naming what is missing and the commands that make it, unless
    ``data_path`` holds a converted VisDrone-DET (``annotations/{train,val}.json`` and the
    images under ``VisDrone2019-DET-{train,val}/images``, where the Table 1 / 2 configs read)."""
    data_path = pathlib.Path(data_path)
    lacking = [f"annotations/{s}.json" for s in ("train", "val") if not (data_path / "annotations" / f"{s}.json").is_file()]
    lacking += [f"VisDrone2019-DET-{s}/images/" for s in ("train", "val")
                if not (data_path / f"VisDrone2019-DET-{s}" / "images").is_dir()]
    if lacking:
        raise FileNotFoundError(
            f"{data_path} is not a converted VisDrone-DET folder: no {', '.join(lacking)}. Unpack the two "
            "splits there (README, 'Data') and convert them:\n"
            + "\n".join(f"  python -m ugs.cli data visdrone {data_path}/VisDrone2019-DET-{s} "
                        f"{data_path}/annotations/{s}.json" for s in ("train", "val")))


def relative(path, root) -> str:
    """``path`` relative to ``root`` when it is inside it (the commands run from ``root``)."""
    path, root = pathlib.Path(path), pathlib.Path(root)
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def train_command(config: str, *, root, profile: str, data_root, work_dir, epochs: int,
                  seed: int, max_per_img: Optional[int], image_size: Optional[int] = None, gpus: int = 1,
                  options: Sequence[str] = (), python: Optional[str] = None) -> List[str]:
    """The command line (list) of one run, to be started in the repository ``root``.

    ``image_size`` is passed in the quick profile only; ``gpus > 1`` launches
    ``torch.distributed.run``; ``options`` are ``KEY=VALUE`` config overrides
    (``--cfg-options``). ``max_per_img=None`` leaves ``--max-per-img`` out (the config's own
    value: runs that do not evaluate). ``python`` defaults to this interpreter."""
    if python is None:
        python = (relative(sys.executable, root)
                  if pathlib.Path(sys.executable).is_relative_to(root) else sys.executable)
    launch = [python, "-m"]
    if gpus > 1:
        launch += ["torch.distributed.run", "--nproc_per_node", str(gpus), "-m"]
    args = [config, "--profile", profile, "--data-root", relative(data_root, root),
            "--work-dir", relative(work_dir, root), "--epochs", str(epochs), "--seed", str(seed)]
    if max_per_img is not None:
        args += ["--max-per-img", str(max_per_img)]
    if profile == "quick" and image_size is not None:
        args += ["--image-size", str(image_size)]
    if gpus > 1:
        args += ["--launcher", "pytorch", "--gpus", str(gpus)]
    if options:
        args += ["--cfg-options", *options]
    return launch + ["ugs.openmmlab.train"] + args


def portable(cmd: Sequence[str], root) -> str:
    """A command of :func:`train_command` as a user types it in ``root``: the interpreter as
    ``python``, paths inside ``root`` relative to it."""
    root = pathlib.Path(root)
    first = pathlib.Path(cmd[0])
    first = first if first.is_absolute() else root / first
    head = ["python"] if first == pathlib.Path(sys.executable) else [cmd[0]]
    return shlex.join(head + [c.replace(str(root) + os.sep, "") for c in cmd[1:]])


_LINE = re.compile(r"Epoch\((train|val)\)\s*\[(\d+)\]\[(\d+)/(\d+)\]\s+(.*)")
_PAIR = re.compile(r"([\w/.]+):\s+(\d+:\d\d:\d\d|-?[\d.]+(?:e[-+]?\d+)?)")
#: the metric prefixes of a validation summary line (the kit's VisDrone and COCO metrics; mmdet's
#: VOC metric, which logs mAP as a fraction)
VAL_PREFIXES = ("visdrone/", "coco/", "pascal_voc/", "soda_a/")
_STAGE = re.compile(r"^(?:rpn_|s\d+\.)(loss_\w+)$")  # two-stage: "rpn_loss_ce", "s1.loss_ur", ...


def loss_terms(values: dict) -> dict:
    """``{name: value}`` of logged scalars -> the total ``loss`` and each loss term; a
    two-stage detector's term is summed over the RPN and the R-CNN stage(s) as logged
    (``rpn_loss_ce`` + ``loss_ce``, or Cascade's ``s0.loss_ce`` + ``s1.loss_ce`` +
    ``s2.loss_ce``, each with its stage loss weight); mmdet's ``loss_rpn_bbox`` counts as
    ``loss_bbox``. Other scalars are left out."""
    out = {}
    for k, v in values.items():
        if k == "loss_rpn_bbox":
            k = "loss_bbox"
        m = _STAGE.match(k)
        k = m.group(1) if m else k
        if k.startswith("loss"):
            out[k] = out.get(k, 0.0) + float(v)
    return out


def condense(line: str) -> Optional[str]:
    """One short progress line from an mmengine log line (or the tool's ``final:`` line), or
    None to skip it."""
    if line.startswith("final:"):  # the tool prints -1 (no object of that size) as -100.0
        return "  " + re.sub(r"(\w+) -100\.0", r"\1 -", line)
    m = _LINE.search(line)
    if not m:
        return None
    mode, epoch, it, total, rest = m.groups()
    pairs = dict(_PAIR.findall(rest))
    if mode == "train":
        losses = "  ".join(f"{k} {v:.3f}" for k, v in loss_terms(pairs).items())
        return f"  epoch {epoch} iter {int(it):>4d}/{total}  eta {pairs.get('eta', '?')}  {losses}"
    prefix = next((p for p in VAL_PREFIXES if any(k.startswith(p) for k in pairs)), None)
    if prefix is not None:  # the validation summary after an epoch
        aps = "  ".join(f"{k.split('/')[1]} {float(v):.1f}" if float(v) >= 0 else f"{k.split('/')[1]} -"
                        for k, v in pairs.items() if k.startswith(prefix))
        return f"  epoch {epoch} val: {aps}"
    return None


class LiveLine:
    """One progress line per run, rewritten in place as the run goes.

    In a Jupyter kernel (JupyterLab and papermill alike) it is an updatable display (IPython's
    ``display_id``): the front end redraws it, and the executed notebook keeps its last state.
    On a terminal it is a carriage-return line. Anywhere else (a CI log, a pipe) each update is
    its own printed line, so nothing is lost where nothing can be redrawn. Where the line is
    redrawn, updates closer than ``min_interval`` seconds are coalesced (:meth:`close` always
    shows the last state).
    """

    def __init__(self, name: str, min_interval: float = 0.5):
        self.name, self.min_interval = name, min_interval
        self.text, self._shown_at, self._handle, self._width = "", 0.0, None, 0
        self.mode = "print"
        try:
            from IPython import get_ipython   # present wherever a notebook runs
            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is not None and getattr(shell, "kernel", None) is not None:
            from IPython.display import display
            self.mode = "display"
            self._handle = display({"text/plain": f"[{name}] starting"}, raw=True, display_id=True)
        elif sys.stdout.isatty():
            self.mode = "tty"

    def update(self, text: str, force: bool = False) -> None:
        text = f"[{self.name}] {text.strip()}"
        if text == self.text and not force:
            return
        self.text = text
        now = time.perf_counter()
        if force or self.mode == "print" or now - self._shown_at >= self.min_interval:
            self._show()
            self._shown_at = now

    def _show(self) -> None:
        if self.mode == "display":
            self._handle.update({"text/plain": self.text}, raw=True)
        elif self.mode == "tty":
            sys.stdout.write("\r" + self.text.ljust(self._width))
            sys.stdout.flush()
            self._width = len(self.text)
        else:
            print(self.text, flush=True)

    def close(self, text: str) -> None:
        """Show ``text`` as the line's final state (and end a terminal's line)."""
        self.update(text, force=True)
        if self.mode == "tty":
            sys.stdout.write("\n")
            sys.stdout.flush()


def train(name: str, cmd: List[str], work_dir, root,
          show: Callable[[str], Optional[str]] = condense, expect: Optional[str] = "metrics.json",
          fresh: bool = True) -> dict:
    """Run ``cmd`` (from :func:`train_command`) from scratch in ``root``: ``work_dir`` is
    deleted first, so nothing of an earlier run is read back (``fresh=False`` keeps it, for a
    run that resumes from its checkpoint: ``ugs.openmmlab.study``). The full output goes to
    ``work_dir/train_stdout.log``; the command is printed once, then ``show`` picks what the
    run's one live progress line (:class:`LiveLine`) says: the latest training step (epoch,
    iteration, ETA, losses) followed by the latest validation summary; when the run ends the
    line states its time and its ``final:`` line. Returns ``command`` (the
    string), ``seconds`` (wall time), ``work_dir``, ``log`` (the full output's path) and
    ``result``: the JSON file ``expect`` the run must write in ``work_dir`` (``metrics.json``
    by default, then also returned as ``metrics``; ``gradient_diagnostics.json`` for runs
    with the gradient hook; None for a run whose metric writes no file, e.g. mmdet's VOC metric:
    read its logged values with :func:`run_scalars`); raises with the log's last lines when the
    run fails."""
    out = pathlib.Path(work_dir)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=not fresh)
    env = _env(root)
    print(f"[{name}] $ {shlex.join(cmd)}", flush=True)
    tail = collections.deque(maxlen=60)
    step, val, final = "", "", ""
    live = LiveLine(name)
    t0 = time.perf_counter()
    with open(out / "train_stdout.log", "w" if fresh else "a", encoding="utf-8") as log, \
            subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, bufsize=1) as proc:
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
            short = show(line.strip())
            if not short:
                continue
            short = short.strip()
            if short.startswith("final:"):
                final = short
            elif " val:" in short:
                val = short
            else:
                step = short
            live.update("  |  ".join(p for p in (step, val) if p))
        rc = proc.wait()
    seconds = time.perf_counter() - t0
    if rc != 0:
        live.close(f"failed (exit {rc}) after {seconds:.0f} s")
        raise RuntimeError(f"training {name} failed (exit {rc}) after {seconds:.0f} s; "
                           f"full log {out / 'train_stdout.log'}; last lines:\n" + "\n".join(tail))
    if expect is not None and not (out / expect).is_file():
        live.close(f"wrote no {expect} after {seconds:.0f} s")
        raise RuntimeError(f"training {name} wrote no {out / expect}; last lines:\n" + "\n".join(tail))
    live.close(f"done in {seconds:.0f} s" + (f"  {final}" if final else f"  {step}  {val}".rstrip()))
    result = json.loads((out / expect).read_text(encoding="utf-8")) if expect is not None else None
    run = dict(command=shlex.join(cmd), seconds=seconds, work_dir=out, log=out / "train_stdout.log",
               result=result)
    if expect == "metrics.json":
        run["metrics"] = result
    return run


def _scalars_file(work_dir) -> pathlib.Path:
    logs = sorted(pathlib.Path(work_dir).glob("*/vis_data/scalars.json"))
    if not logs:
        raise FileNotFoundError(f"no */vis_data/scalars.json under {work_dir}: did the run log?")
    return logs[-1]


def run_scalars(work_dir) -> list:
    """The logged scalars of a run (one dict per logged step), from mmengine's
    ``<work_dir>/<timestamp>/vis_data/scalars.json`` of the newest run folder."""
    from .train import read_scalars   # standard library only at import

    return read_scalars(str(_scalars_file(work_dir).parent.parent))


def train_loss(work_dir) -> float:
    """The mean of the total training loss over the logged iterations of a run's last epoch
    (mmengine's ``<work_dir>/<timestamp>/vis_data/scalars.json``, newest run folder).

    A precise fingerprint of the run where AP cannot be one (a smoke run at AP 0): the
    measured tables carry it as column ``train_loss``. Raises FileNotFoundError / ValueError
    naming the file when the run logged no training loss."""
    train = [e for e in run_scalars(work_dir) if "loss" in e and "epoch" in e]
    if not train:
        raise ValueError(f"{_scalars_file(work_dir)}: no logged training loss")
    last = max(e["epoch"] for e in train)
    values = [float(e["loss"]) for e in train if e["epoch"] == last]
    return sum(values) / len(values)
