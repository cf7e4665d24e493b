"""A seeded synthetic small-object data set, written in the VisDrone-DET layout.

It is the default data of every CPU (quick-profile) run of the kit: the same converter
(:func:`ugs.data.visdrone.convert_visdrone`) and loaders serve it and the real VisDrone-DET.

::

    generate_synthetic("data/synth", num_train=200, num_val=50, image_size=256, seed=0)

writes ``out_root/{train,val}/images/sNNNNNNN.jpg`` and
``out_root/{train,val}/annotations/sNNNNNNN.txt`` (the official 8-integer line format
``left,top,width,height,score,category,truncation,occlusion``, CRLF line ends) and
``out_root/meta.json`` (parameters, counts and size statistics). Each image is drawn from its
own random stream ``SeedSequence([seed, split, index])``, so a given image does not depend on
how many images the split has, and the same seed gives byte-identical annotation files.

What an image holds (everything vectorised numpy / OpenCV on small patches):

* a cluttered aerial-looking background: two terrain colours mixed by smoothed noise, colour
  and texture noise at three scales, roof-like rectangles, 0-3 roads (asphalt band, kerbs,
  dashed lane marks: small bright rectangles that look like objects);
* 8-24 annotated objects (``objects_per_image``, whatever the image size) of the 10
  VisDrone classes. Size: the square root of the box area is
  log-normal with median ``median_size`` (15 px) times a per-class factor, ``sigma`` 0.6,
  clipped to [4, ``max_size``] (96 px, at most half the image), so most are COCO-small; the
  aspect ratio (w / h) is per class (pedestrian ~0.45 ... bus ~3), vehicles are drawn along x
  or y. Appearance per class: its own shape and colour scheme (pedestrian: red body, dark
  head; people: orange over navy; bicycle: two cyan rings; car: blue with dark windows; van:
  white with dark windscreen; truck: green cab + striped yellow cargo; tricycle: magenta
  wedge; awning-tricycle: pink / white stripes; bus: long teal with window rows; motor: black
  with a white helmet), with per-instance colour, brightness, size and aspect jitter,
  pixel noise and a cast shadow. Vehicles sit on roads when there are roads (70 %);
* distractors (not annotated): object-sized blobs, wedges and rounded boxes in muted
  terrain / roof colours;
* occluders drawn over the objects: tree canopies (aimed at ~20 % of the objects, plus a few
  anywhere; a canopy that would hide more than ``max_occlusion`` = 80 % of an object is not
  drawn, so no annotated object is invisible) and thin wires; the ``occlusion`` field is
  measured from the masks (covered fraction of the object's pixels: < 1 % -> 0,
  <= 50 % -> 1, else 2, VisDrone's 0 / 1-50 % / 50-100 % levels);
* truncation: ~6 % of objects cross the image border by at most half their width / height;
  the written box is the visible (clipped) part and ``truncation`` is 1;
* ignored regions: in ~30 % of images a rectangle (category 0, score 0) over a dense crowd
  of tiny unannotated people / motors (or a car park), as VisDrone marks crowds;
* ~3 % "others" objects (category 11, score 0: grey boxes with a white cross; score 0 is
  what a third-party count reports for every category-11 line of the released files). The
  converter rejects them
  (reason ``others``), so train / val counts check the in = out accounting on every run.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .visdrone import CATEGORY_NAMES

__all__ = ["generate_synthetic", "CLASS_STYLES", "GENERATOR_VERSION"]

GENERATOR_VERSION = 1
SPLITS = ("train", "val")

# category: (canonical aspect w/h with the length along x, size factor, sampling weight,
#            rotatable, base RGB colours); per-instance jitter is added on top.
CLASS_STYLES: Dict[int, tuple] = {
    1: (0.45, 0.75, 0.15, False, ((205, 40, 45), (185, 30, 70))),        # pedestrian
    2: (0.70, 0.80, 0.09, False, ((235, 140, 30), (225, 120, 45))),      # people
    3: (1.70, 0.85, 0.07, True, ((30, 200, 220), (40, 180, 235))),       # bicycle
    4: (1.90, 1.05, 0.22, True, ((40, 80, 210), (30, 110, 190), (60, 60, 175))),  # car
    5: (2.20, 1.20, 0.10, True, ((232, 232, 226), (210, 214, 220))),     # van
    6: (2.70, 1.45, 0.07, True, ((215, 195, 50), (200, 180, 70))),       # truck
    7: (1.30, 0.95, 0.05, True, ((210, 50, 200), (185, 60, 215))),       # tricycle
    8: (1.35, 0.95, 0.05, True, ((250, 120, 170), (240, 100, 150))),     # awning-tricycle
    9: (3.00, 1.70, 0.05, True, ((20, 150, 130), (30, 135, 150))),       # bus
    10: (2.00, 0.65, 0.15, True, ((25, 25, 30), (45, 30, 50))),          # motor
}
OTHERS_STYLE = (1.0, 0.9, 0.0, False, ((140, 140, 140), (120, 125, 130)))
VEHICLES = (3, 4, 5, 6, 7, 8, 9, 10)
SMALL_CLASSES, SMALL_CLASS_CAP = (1, 2, 3, 10), 0.45   # people and two-wheelers: <= ~43 px

TERRAIN = np.array([(92, 108, 66), (118, 104, 84), (128, 128, 120), (104, 112, 92),
                    (140, 132, 112), (80, 96, 70)], np.float32)
ROOFS = np.array([(150, 82, 70), (120, 120, 126), (172, 162, 150), (92, 96, 106),
                  (160, 150, 120)], np.float32)
MUTED = np.array([(90, 85, 80), (122, 110, 90), (62, 76, 52), (150, 142, 122), (172, 166, 160),
                  (82, 62, 46), (100, 100, 112), (130, 96, 80)], np.float32)

_NAME = re.compile(r"^s\d{7}\.(jpg|txt)$")


# ----------------------------------------------------------------------------- rendering
@functools.lru_cache(maxsize=4096)
def _grid(h: int, w: int, ss: int = 2):
    """Supersampled normalised coordinates: u along x, v along y, both in (-1, 1) (cached,
    read-only)."""
    u = (np.arange(w * ss, dtype=np.float32) + 0.5) / (w * ss) * 2 - 1
    v = (np.arange(h * ss, dtype=np.float32) + 0.5) / (h * ss) * 2 - 1
    uu, vv = np.meshgrid(u, v)
    uu.flags.writeable = False
    vv.flags.writeable = False
    return uu, vv


@functools.lru_cache(maxsize=8)
def _pixel_grid(H: int, W: int):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


@functools.lru_cache(maxsize=4)
def _noise_tile(H: int, W: int) -> np.ndarray:
    """A fixed (2H, 2W) field of N(0, 4^2) grain; each image takes a window at a random offset
    (drawing 65k normals per image would cost more than the rest of the background)."""
    t = np.random.default_rng(20250101).standard_normal((2 * H, 2 * W), dtype=np.float32) * 4
    t.flags.writeable = False
    return t


def _normal(rng, shape, scale: float) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)


def _superellipse(u, v, p):
    return np.abs(u) ** p + np.abs(v) ** p <= 1


def _shape(cat: int, u, v, col: np.ndarray, rng) -> Tuple[np.ndarray, np.ndarray]:
    """(mask, colour) of one object in canonical orientation on the supersampled grid."""
    shp = u.shape
    colour = np.empty(shp + (3,), np.float32)
    colour[:] = col
    dark = np.array((28, 30, 38), np.float32)
    if cat == 1:                                   # pedestrian: body + dark head
        body = (u / 0.95) ** 2 + ((v - 0.2) / 0.8) ** 2 <= 1
        head = (u / 0.55) ** 2 + ((v + 0.68) / 0.32) ** 2 <= 1
        mask = body | head
        colour[head & ~body] = (40, 30, 25)
    elif cat == 2:                                 # people: orange top, navy bottom
        mask = u ** 2 + v ** 2 <= 1
        colour[v > -0.05] = (30, 40, 110)
    elif cat == 3:                                 # bicycle: two rings + a bar
        r1 = np.sqrt(((u + 0.52) / 0.46) ** 2 + ((v - 0.1) / 0.85) ** 2)
        r2 = np.sqrt(((u - 0.52) / 0.46) ** 2 + ((v - 0.1) / 0.85) ** 2)
        rings = ((r1 > 0.5) & (r1 <= 1)) | ((r2 > 0.5) & (r2 <= 1))
        bar = (np.abs(v + 0.1) < 0.22) & (np.abs(u) < 0.55)
        mask = rings | bar
    elif cat == 4:                                 # car: rounded body, dark windows
        mask = _superellipse(u, v, 4)
        win = ((u > 0.22) & (u < 0.48) | (u > -0.78) & (u < -0.62)) & (np.abs(v) < 0.72)
        colour[win] = dark
        colour[(np.abs(u) < 0.2) & (np.abs(v) < 0.6)] *= 1.15      # roof highlight
    elif cat == 5:                                 # van: boxy white, dark windscreen, rack
        mask = _superellipse(u, v, 6)
        colour[(u > 0.55) & (u < 0.74) & (np.abs(v) < 0.8)] = dark
        colour[(u < 0.4) & (np.abs(v) < 0.14)] = (150, 150, 150)
    elif cat == 6:                                 # truck: cab + striped cargo
        box = _superellipse(u, v, 8)
        cab, cargo = box & (u > 0.55), box & (u < 0.45)
        mask = cab | cargo
        colour[cab] = (30, 110, 50)
        stripes = cargo & (np.mod((v + 1) * 2.5, 1.0) < 0.22)
        colour[stripes] *= 0.7
    elif cat == 7:                                 # tricycle: wedge with a dark rider
        mask = np.abs(v) <= (1 - u) / 2 * 1.0
        colour[(u + 0.35) ** 2 / 0.2 ** 2 + v ** 2 / 0.3 ** 2 <= 1] = dark
    elif cat == 8:                                 # awning-tricycle: diagonal stripes
        mask = _superellipse(u, v, 4)
        colour[np.mod(np.floor((u + v) * 2.2), 2) == 0] = (246, 244, 238)
    elif cat == 9:                                 # bus: long, window rows, roof box
        mask = _superellipse(u, v, 10)
        win = (np.abs(v) > 0.5) & (np.abs(v) < 0.86) & (np.mod((u + 1) * 4.5, 1.0) < 0.55)
        colour[win] = (205, 232, 232)
        colour[(np.abs(u) < 0.18) & (np.abs(v) < 0.3)] = (240, 240, 240)
    elif cat == 10:                                # motor: black body, white helmet
        mask = u ** 2 + v ** 2 <= 1
        colour[((u - 0.1) / 0.32) ** 2 + (v / 0.55) ** 2 <= 1] = (236, 236, 236)
    elif cat == 11:                                # others: grey box with a white cross
        mask = _superellipse(u, v, 6)
        colour[np.abs(np.abs(u) - np.abs(v)) < 0.25] = (245, 245, 245)
    else:                                          # distractor: blob / wedge / rounded box
        kind = rng.integers(0, 3)
        if kind == 0:
            wob = 1 + 0.15 * np.sin(5 * np.arctan2(v, u) + rng.uniform(0, 6.3))
            mask = np.sqrt(u ** 2 + v ** 2) <= wob * 0.95
        elif kind == 1:
            mask = np.abs(v) <= (1 - u) / 2
        else:
            mask = _superellipse(u, v, 4)
    return mask, colour


def _render(cat: int, h: int, w: int, rotated: bool, col: np.ndarray, rng, ss: int = 2):
    """Alpha (h, w) and premultiplied colour (h, w, 3) of one object, anti-aliased."""
    ch, cw = (w, h) if rotated else (h, w)           # canonical: length along x
    u, v = _grid(ch, cw, ss)
    mask, colour = _shape(cat, u, v, col, rng)
    alpha = mask.astype(np.float32)
    pre = colour * alpha[..., None]
    if ss > 1:
        k = np.float32(1.0 / (ss * ss))
        alpha = alpha.reshape(ch, ss, cw, ss).sum(axis=(1, 3)) * k
        pre = pre.reshape(ch, ss, cw, ss, 3).sum(axis=(1, 3)) * k
    if rotated:
        alpha, pre = alpha.T, pre.transpose(1, 0, 2)
    pre = pre + _normal(rng, pre.shape[:2] + (1,), 7.0) * alpha[..., None]
    return np.ascontiguousarray(alpha), np.ascontiguousarray(pre)


def _paste(img: np.ndarray, top: int, left: int, alpha: np.ndarray, pre: Optional[np.ndarray],
           darken: float = 0.0):
    """Composite a patch at (top, left), clipped to the image. ``pre=None``: a shadow."""
    H, W = img.shape[:2]
    h, w = alpha.shape
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + h, H), min(left + w, W)
    if y1 <= y0 or x1 <= x0:
        return None
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left]
    region = img[y0:y1, x0:x1]
    if pre is None:
        region *= (1 - darken * a)[..., None]
    else:
        region *= (1 - a)[..., None]
        region += pre[y0 - top:y1 - top, x0 - left:x1 - left]
    return (y0, x0, y1, x1), a


def _smooth_noise(rng, S_h: int, S_w: int, cells: int, ch: int) -> np.ndarray:
    cells = max(2, cells)
    g = rng.standard_normal((cells, cells, ch), dtype=np.float32)
    out = cv2.resize(g, (S_w, S_h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(S_h, S_w, ch)


def _background(rng, H: int, W: int):
    """Terrain + texture + roofs + roads. Returns (float32 image, road mask)."""
    yy, xx = _pixel_grid(H, W)
    S = max(H, W)
    ca, cb = TERRAIN[rng.choice(len(TERRAIN), 2, replace=False)]
    # (per-channel 2-D arithmetic + cv2.merge: numpy broadcasting over a trailing axis of 3
    # is several times slower)
    m = 1 / (1 + np.exp(-2.5 * _smooth_noise(rng, H, W, S // 64 + 2, 1)[..., 0]))
    tex = 6 * _smooth_noise(rng, H, W, S // 6, 1)[..., 0]
    img = cv2.merge([ca[c] + (cb[c] - ca[c]) * m + tex for c in range(3)])
    img += 6 * _smooth_noise(rng, H, W, S // 24, 3)
    for _ in range(rng.integers(0, 4)):                              # roofs
        bw, bh = rng.integers(20, max(21, S // 3), 2)
        x, y = rng.integers(-bw // 2, W), rng.integers(-bh // 2, H)
        c = ROOFS[rng.integers(len(ROOFS))] + rng.normal(0, 8, 3)
        cv2.rectangle(img, (int(x), int(y)), (int(x + bw), int(y + bh)), c.tolist(), -1)
        cv2.rectangle(img, (int(x), int(y)), (int(x + bw), int(y + bh)), (c * 0.6).tolist(), 1)
    road = np.zeros((H, W), bool)
    for _ in range(rng.choice(4, p=(0.15, 0.45, 0.3, 0.1))):          # roads
        th = rng.uniform(0, np.pi)
        px, py = rng.uniform(0.15, 0.85) * W, rng.uniform(0.15, 0.85) * H
        d = (xx - px) * np.cos(th) + (yy - py) * np.sin(th)
        along = -(xx - px) * np.sin(th) + (yy - py) * np.cos(th)
        half = rng.uniform(10, 22) * S / 256
        ad = np.abs(d)
        r = ad < half
        grey = rng.uniform(78, 104)
        img[r] = grey + 1.25 * _noise_tile(H, W)[H:, W:][r][:, None]       # asphalt grain
        img[r & (ad >= half - 1.5)] = 150                                  # kerbs
        ys, xs = np.nonzero(ad < 0.9)                                      # centre line
        dash = np.mod(along[ys, xs], 14) < 6
        img[ys[dash], xs[dash]] = (212, 212, 202)
        road |= r
    light = 1 + 0.08 * ((xx / W - 0.5) * rng.uniform(-1, 1) + (yy / H - 0.5) * rng.uniform(-1, 1))
    img *= cv2.merge([light, light, light])
    return img, road


def _sample_size(rng, style, median: float, sigma: float, max_size: int, cap: float = 1.0):
    """(w, h, rotated): sqrt(area) log-normal, clipped to [4, cap * max_size]."""
    aspect, factor = style[0], style[1]
    z1, z2 = rng.standard_normal(2)
    s = min(max(median * factor * math.exp(sigma * z1), 4.0), cap * max_size)
    a = aspect * math.exp(0.12 * z2)
    length = min(max(int(round(s * math.sqrt(a))), 3), max_size)     # along x (canonical)
    thick = min(max(int(round(s / math.sqrt(a))), 3), max_size)
    rotated = bool(style[3] and rng.random() < 0.5)
    w, h = (thick, length) if rotated else (length, thick)
    return w, h, rotated


def _colour(rng, style) -> np.ndarray:
    base = np.array(style[4][rng.integers(len(style[4]))], np.float32)
    return np.clip(base * rng.uniform(0.82, 1.12) + rng.normal(0, 10, 3), 0, 255).astype(np.float32)


def _overlaps(box, boxes: List[Tuple[int, int, int, int]], margin: int = 2) -> bool:
    if not boxes:
        return False
    b = np.asarray(boxes)
    x0, y0, x1, y1 = box
    return bool(np.any((b[:, 0] < x1 + margin) & (b[:, 2] > x0 - margin)
                       & (b[:, 1] < y1 + margin) & (b[:, 3] > y0 - margin)))


# ----------------------------------------------------------------------------- one image
def _make_image(rng, H: int, W: int, cfg: dict):
    """Draw one image. Returns (uint8 RGB image, annotation lines, per-object stats)."""
    img, road = _background(rng, H, W)
    road_idx = np.flatnonzero(road)
    cats = np.array(sorted(CLASS_STYLES))
    weights = np.array([CLASS_STYLES[c][2] for c in cats])
    weights = weights / weights.sum()
    max_size = cfg["max_size"]
    shadow = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    lines: List[str] = []
    blocked: List[Tuple[int, int, int, int]] = []
    n_crowd = 0

    # ignored region over a dense crowd (drawn first, objects avoid it)
    regions = []
    if rng.random() < cfg["p_ignored_region"]:
        rw = int(rng.integers(24, max(25, int(0.3 * W))))
        rh = int(rng.integers(24, max(25, int(0.3 * H))))
        rx, ry = int(rng.integers(0, W - rw)), int(rng.integers(0, H - rh))
        regions.append((rx, ry, rw, rh))
        blocked.append((rx, ry, rx + rw, ry + rh))
        car_park = rng.random() < 0.3
        n = int(rw * rh / (80 if car_park else 55))
        for _ in range(n):
            c = 4 if car_park else int(rng.choice((1, 2, 10, 3), p=(0.4, 0.3, 0.2, 0.1)))
            st = CLASS_STYLES[c]
            w, h, rot = _sample_size(rng, st, 8.0 if car_park else 6.0, 0.2, 14)
            w, h = min(w, rw), min(h, rh)
            x, y = int(rng.integers(rx, rx + rw - w + 1)), int(rng.integers(ry, ry + rh - h + 1))
            alpha, pre = _render(c, h, w, rot, _colour(rng, st), rng, ss=1)   # tiny: no AA
            _paste(img, y + 1, x + 1, alpha, None, darken=0.35)
            _paste(img, y, x, alpha, pre)
            n_crowd += 1

    # distractors: object-sized, muted colours, not annotated
    for _ in range(int(rng.integers(*cfg["distractors_per_image"]))):
        st = (float(rng.uniform(0.4, 2.5)), 1.0, 0, True, ())
        w, h, rot = _sample_size(rng, st, cfg["median_size"], cfg["sigma"], max_size)
        col = MUTED[rng.integers(len(MUTED))] * rng.uniform(0.85, 1.15) + rng.normal(0, 6, 3)
        alpha, pre = _render(0, h, w, rot, col.astype(np.float32), rng)
        x, y = int(rng.integers(-w // 2, W - w // 2)), int(rng.integers(-h // 2, H - h // 2))
        _paste(img, y + shadow[1], x + shadow[0], alpha, None, darken=0.3)
        _paste(img, y, x, alpha, pre)

    # annotated objects (and a few "others")
    objects = []            # (cat, score, (x0, y0, x1, y1) visible box, truncation, obj mask)
    n_obj = int(rng.integers(cfg["objects_per_image"][0], cfg["objects_per_image"][1] + 1))
    for _ in range(n_obj):
        if rng.random() < cfg["p_others"]:
            c, st, score = 11, OTHERS_STYLE, 0
        else:
            c = int(rng.choice(cats, p=weights))
            st, score = CLASS_STYLES[c], 1
        w, h, rot = _sample_size(rng, st, cfg["median_size"], cfg["sigma"], max_size,
                                 SMALL_CLASS_CAP if c in SMALL_CLASSES else 1.0)
        truncated = rng.random() < cfg["p_truncated"] and min(w, h) >= 4
        placed = None
        for _try in range(40):
            if truncated:
                side = int(rng.integers(4))
                k = int(rng.integers(1, (w if side < 2 else h) // 2 + 1))
                x = int(rng.integers(0, W - w + 1)); y = int(rng.integers(0, H - h + 1))
                if side == 0:
                    x = -k
                elif side == 1:
                    x = W - w + k
                elif side == 2:
                    y = -k
                else:
                    y = H - h + k
            elif c in VEHICLES and road_idx.size and rng.random() < 0.7:
                p = int(road_idx[rng.integers(road_idx.size)])
                y, x = p // W - h // 2, p % W - w // 2
                if x < 0 or y < 0 or x + w > W or y + h > H:
                    continue
            else:
                x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            vis = (max(x, 0), max(y, 0), min(x + w, W), min(y + h, H))
            if not _overlaps(vis, blocked):
                placed = (x, y, vis)
                break
        if placed is None:
            continue
        x, y, vis = placed
        blocked.append(vis)
        alpha, pre = _render(c, h, w, rot, _colour(rng, st), rng)
        _paste(img, y + shadow[1], x + shadow[0], alpha, None, darken=0.45)
        (py0, px0, py1, px1), a = _paste(img, y, x, alpha, pre)
        # the box is the visible part of the drawn shape (tight, integer), not the patch
        ys, xs = np.nonzero(a > 0.25)
        if ys.size == 0:
            blocked.pop()
            continue
        vis = (px0 + int(xs.min()), py0 + int(ys.min()), px0 + int(xs.max()) + 1,
               py0 + int(ys.max()) + 1)
        full = (x, y, x + w, y + h)
        trunc = int(vis[0] == 0 and full[0] < 0 or vis[1] == 0 and full[1] < 0
                    or vis[2] == W and full[2] > W or vis[3] == H and full[3] > H)
        objects.append((c, score, vis, trunc, (py0, px0, py1, px1), a > 0.5))

    # occluders: canopies aimed at objects, free canopies, wires
    occ = np.zeros((H, W), bool)

    def canopy(cx, cy, r):
        """Draw a tree canopy unless it would hide more than ``max_occlusion`` of an object."""
        r = max(r, 3.0)
        size = int(2 * r + 3)
        u, v = _grid(size, size, 2)
        ang = np.arctan2(v, u)
        wob = 1 + 0.12 * np.sin(6 * ang + rng.uniform(0, 6.3)) + 0.06 * np.sin(11 * ang)
        mask = np.sqrt(u ** 2 + v ** 2) <= wob * (r / (size / 2))
        green = np.array((46, 88, 38), np.float32) * rng.uniform(0.75, 1.2)
        m = mask.astype(np.float32)
        alpha = m.reshape(size, 2, size, 2).sum(axis=(1, 3)) * np.float32(0.25)
        top, left = int(round(cy - size / 2)), int(round(cx - size / 2))
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + size, H), min(left + size, W)
        if y1 <= y0 or x1 <= x0:
            return
        new = np.zeros((H, W), bool)
        new[y0:y1, x0:x1] = alpha[y0 - top:y1 - top, x0 - left:x1 - left] > 0.5
        new |= occ
        for (*_, (oy0, ox0, oy1, ox1), om) in objects:
            if oy0 < y1 and oy1 > y0 and ox0 < x1 and ox1 > x0:
                if (om & new[oy0:oy1, ox0:ox1]).sum() > cfg["max_occlusion"] * om.sum():
                    return
        pre = green * alpha[..., None] + _normal(rng, (size, size, 1), 14.0) * alpha[..., None]
        _paste(img, top + 2, left + 2, alpha, None, darken=0.4)
        _paste(img, top, left, alpha, pre)
        occ[:] = new

    for (c, score, vis, trunc, _, _) in objects:
        if rng.random() < cfg["p_occluded"]:
            ow, oh = vis[2] - vis[0], vis[3] - vis[1]
            r = min(rng.uniform(0.35, 0.75) * max(ow, oh) + 1.5, 18.0 * max(H, W) / 256)
            ang = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(0.55, 1.05) * 0.5 * np.hypot(ow, oh) + 0.6 * r
            canopy((vis[0] + vis[2]) / 2 + dist * np.cos(ang),
                   (vis[1] + vis[3]) / 2 + dist * np.sin(ang), r)
    for _ in range(int(rng.integers(0, 4))):
        canopy(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(5, 16) * max(H, W) / 256)
    if rng.random() < cfg["p_wire"]:
        p0 = (int(rng.integers(0, W)), 0) if rng.random() < 0.5 else (0, int(rng.integers(0, H)))
        p1 = (int(rng.integers(0, W)), H - 1) if rng.random() < 0.5 else (W - 1, int(rng.integers(0, H)))
        wire = np.zeros((H, W), np.uint8)
        cv2.line(wire, p0, p1, 1, 1)
        wm = wire.astype(bool)
        img[wm] = (38, 38, 42)
        occ |= wm                   # 1 px wide: covers at most a 1 px strip of an object

    # finish: camera softness, sensor noise
    img = cv2.GaussianBlur(img, (3, 3), 0.55)
    oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
    grain = _noise_tile(H, W)[oy:oy + H, ox:ox + W]    # luminance grain + sensor noise
    img += cv2.merge([grain, grain, grain])
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)

    stats = []
    for (c, score, vis, trunc, (y0, x0, y1, x1), m) in objects:
        covered = float((m & occ[y0:y1, x0:x1]).sum()) / max(1, int(m.sum()))
        level = 0 if covered < 0.01 else (1 if covered <= 0.5 else 2)
        bw, bh = vis[2] - vis[0], vis[3] - vis[1]
        lines.append(f"{vis[0]},{vis[1]},{bw},{bh},{score},{c},{trunc},{level}")
        stats.append((c, bw, bh, level, trunc))
    for (rx, ry, rw, rh) in regions:
        lines.append(f"{rx},{ry},{rw},{rh},0,0,0,0")
    return out, lines, stats, len(regions), n_crowd


# ----------------------------------------------------------------------------- the data set
def _size_stats(st: np.ndarray) -> dict:
    """Statistics over annotated objects: rows (category, w, h, occlusion, truncation)."""
    ev = st[(st[:, 0] >= 1) & (st[:, 0] <= 10)] if st.size else np.zeros((0, 5))
    if not len(ev):
        return {"objects": 0}
    w, h = ev[:, 1].astype(float), ev[:, 2].astype(float)
    s = np.sqrt(w * h)
    pct = np.percentile(s, [5, 25, 50, 75, 95])
    per_class = {}
    for c in range(1, 11):
        k = ev[:, 0] == c
        if k.any():
            per_class[CATEGORY_NAMES[c - 1]] = {
                "count": int(k.sum()),
                "median_sqrt_area": round(float(np.median(s[k])), 2),
                "median_aspect_w_over_h": round(float(np.median(w[k] / h[k])), 3),
            }
        else:
            per_class[CATEGORY_NAMES[c - 1]] = {"count": 0}
    return {
        "objects": int(len(ev)),
        "sqrt_area_px": {"min": float(s.min()), "p5": round(float(pct[0]), 2),
                         "p25": round(float(pct[1]), 2), "median": round(float(pct[2]), 2),
                         "p75": round(float(pct[3]), 2), "p95": round(float(pct[4]), 2),
                         "max": round(float(s.max()), 2), "mean": round(float(s.mean()), 2)},
        "fraction_area_under_16sq": round(float(np.mean(w * h < 16 ** 2)), 4),
        "fraction_area_under_32sq": round(float(np.mean(w * h < 32 ** 2)), 4),
        "fraction_area_under_96sq": round(float(np.mean(w * h < 96 ** 2)), 4),
        "fraction_max_side_under_32": round(float(np.mean(np.maximum(w, h) < 32)), 4),
        "occlusion_counts": {str(k): int((ev[:, 3] == k).sum()) for k in (0, 1, 2)},
        "truncated": int(ev[:, 4].sum()),
        "per_class": per_class,
    }


def generate_synthetic(out_root: Union[str, os.PathLike], num_train: int = 200, num_val: int = 50,
                       image_size: Union[int, Sequence[int]] = 256, seed: int = 0, *,
                       objects_per_image: Tuple[int, int] = (8, 24),
                       median_size: float = 15.0, sigma: float = 0.6, max_size: int = 96,
                       p_ignored_region: float = 0.3, p_others: float = 0.03,
                       p_occluded: float = 0.2, max_occlusion: float = 0.8,
                       p_truncated: float = 0.06, p_wire: float = 0.25,
                       distractors_per_image: Tuple[int, int] = (6, 16),
                       jpeg_quality: int = 90) -> dict:
    """Generate the synthetic set in the VisDrone layout under ``out_root``; returns the meta dict.

    ``image_size`` is the side of square images or ``(width, height)``. Files this generator
    wrote earlier into ``out_root/{train,val}/{images,annotations}`` (names ``sNNNNNNN.*``)
    are removed first, so a smaller re-generation leaves no stale images; nothing else is
    touched. ``meta.json`` holds the parameters, counts, size statistics and the time taken.
    """
    t0 = time.perf_counter()
    if isinstance(image_size, (int, np.integer)):
        W = H = int(image_size)
    else:
        W, H = (int(v) for v in image_size)
    if min(W, H) < 64:
        raise ValueError(f"image_size must be at least 64 px, got {W}x{H}")
    if num_train < 0 or num_val < 0:
        raise ValueError("num_train and num_val must be >= 0")
    if not 0 <= int(seed) < 2 ** 63:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    lo, hi = objects_per_image
    if not 1 <= lo <= hi:
        raise ValueError(f"objects_per_image must be (lo, hi) with 1 <= lo <= hi, got {objects_per_image}")
    cfg = dict(objects_per_image=(int(lo), int(hi)), median_size=float(median_size),
               sigma=float(sigma), max_size=int(min(max_size, min(W, H) // 2)),
               p_ignored_region=p_ignored_region, p_others=p_others, p_occluded=p_occluded,
               max_occlusion=float(max_occlusion),
               p_truncated=p_truncated, p_wire=p_wire,
               distractors_per_image=(int(distractors_per_image[0]), int(distractors_per_image[1]) + 1))
    out_root = Path(out_root)
    counts = {"train": int(num_train), "val": int(num_val)}
    split_meta = {}
    all_stats = []
    for split_code, split in enumerate(SPLITS):
        img_dir, ann_dir = out_root / split / "images", out_root / split / "annotations"
        for d in (img_dir, ann_dir):
            d.mkdir(parents=True, exist_ok=True)
            for p in d.iterdir():
                if p.is_file() and _NAME.match(p.name):
                    p.unlink()
        stats, n_regions, n_crowd, n_lines = [], 0, 0, 0
        for i in range(counts[split]):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), split_code, i]))
            img, lines, st, nr, nc = _make_image(rng, H, W, cfg)
            name = f"s{i:07d}"
            ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            assert ok
            (img_dir / f"{name}.jpg").write_bytes(buf.tobytes())
            (ann_dir / f"{name}.txt").write_bytes("".join(l + "\r\n" for l in lines).encode("ascii"))
            stats.extend(st)
            n_regions += nr
            n_crowd += nc
            n_lines += len(lines)
        arr = np.array(stats, dtype=np.int64).reshape(-1, 5)
        all_stats.append(arr)
        split_meta[split] = {
            "images": counts[split], "lines": n_lines,
            "annotated_objects": int(((arr[:, 0] >= 1) & (arr[:, 0] <= 10)).sum()),
            "others_objects": int((arr[:, 0] == 11).sum()),
            "ignored_regions": n_regions, "unannotated_crowd_objects_in_ignored_regions": n_crowd,
            "size_stats": _size_stats(arr),
        }
    elapsed = time.perf_counter() - t0
    meta = {
        "generator": "ugs.data.synthetic", "generator_version": GENERATOR_VERSION,
        "layout": "VisDrone-DET: {split}/images/*.jpg + {split}/annotations/*.txt",
        "parameters": {"num_train": int(num_train), "num_val": int(num_val),
                       "image_size": [W, H], "seed": int(seed),
                       "objects_per_image": list(cfg["objects_per_image"]),
                       "median_size": median_size, "sigma": sigma, "max_size": cfg["max_size"],
                       "p_ignored_region": p_ignored_region, "p_others": p_others,
                       "p_occluded": p_occluded, "max_occlusion": max_occlusion,
                       "p_truncated": p_truncated, "p_wire": p_wire,
                       "distractors_per_image": list(distractors_per_image),
                       "jpeg_quality": int(jpeg_quality)},
        "classes": {str(c): CATEGORY_NAMES[c - 1] for c in range(1, 11)},
        "splits": split_meta,
        "size_stats": _size_stats(np.concatenate(all_stats)),
        "generation_seconds": round(elapsed, 3),
        "out_root": str(out_root),
    }
    (out_root / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta
