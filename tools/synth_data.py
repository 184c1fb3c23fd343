"""Procedurally generated COCO person-keypoint data: articulated figures in cluttered scenes.

Every image is a pure function of ``(seed, index, width, height)``: a 3-D kinematic skeleton
(pelvis, bending torso, turning head, arms and legs with joint angles drawn from pose families
such as standing, walking, reaching, arms up, sitting, crouching) is posed, turned to a random
yaw (front, back, side and everything between, which is what decides whether the person's left
appears on the image's right), rolled a little and projected orthographically. Its parts are
drawn back to front as textured capsules, ellipses and a hull torso, with a face patch and eyes on
the side the head faces, hair behind, and a neckline and placket on the shirt's front. Figures
(0-5, 30-250 px tall, heights uniform in that range, smaller ones drawn first as if farther away)
overlap each other; background clutter (shapes, sticks that look like limbs, gradients,
textures) sits behind them and foreground occluders in front; global lighting, tint, gradients,
noise and blur finish the image.

An owner map (which figure and which of its parts is on top at each pixel) gives the labels:
``v=2`` where a keypoint's own parts are on top, ``v=1`` where it is inside the image but hidden
(by another figure, an occluder, its own body, or the back of its head), ``v=0`` with
``x=y=0`` outside the image. ``bbox`` is the box of the figure's visible pixels and ``area`` their
count. Figures that end up mostly hidden are not drawn at all, so no visible person goes
unlabelled.

CLI::

    python tools/synth_data.py --out DIR --num-images N --seed S [--width W --height H]

writes ``DIR/images/*.jpg`` and ``DIR/annotations.json``. The training script imports
:func:`render` to make training images on the fly.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from pytest_kpmodel.keypoints import COCO_NAMES, COCO_SKELETON  # noqa: E402

GENERATOR_VERSION = "1"
NUM_KP = len(COCO_NAMES)
KP = {name: i for i, name in enumerate(COCO_NAMES)}
OCCLUDER = 255  # owner-map value of foreground clutter

# Part ids (1-based in the part map; 0 is "nothing").
TORSO, NECK, HEAD = 1, 2, 3
UPPER_ARM = {"left": 4, "right": 5}
FOREARM = {"left": 6, "right": 7}
HAND = {"left": 8, "right": 9}
THIGH = {"left": 10, "right": 11}
SHIN = {"left": 12, "right": 13}
FOOT = {"left": 14, "right": 15}
NUM_PARTS = 16

# Garments (texture slots).
SHIRT, SKIN, PANTS, SHOES, HAIR = range(5)

# Body proportions, in units of the figure's height (head top to sole is about 1).
SHOULDER_HALF = 0.115
HIP_HALF = 0.085
NECK_Y = 0.30
SHOULDER_Y = 0.275
HEAD_UP = 0.095
HEAD_R = (0.060, 0.072, 0.066)  # ellipsoid radii x, y, z
UPPER_ARM_LEN, FOREARM_LEN, HAND_LEN = 0.165, 0.150, 0.045
THIGH_LEN, SHIN_LEN, FOOT_LEN = 0.245, 0.240, 0.065
WIDTH = {"neck": 0.060, "upper_arm": 0.072, "forearm": 0.060, "thigh": 0.100,
         "shin": 0.078, "foot": 0.045, "hand": 0.040}  # fmt: skip

# Head-frame face points (x = person's left, y = up, z = forward).
FACE = {
    "nose": (0.0, -0.012, 0.066),
    "left_eye": (0.024, 0.012, 0.056),
    "right_eye": (-0.024, 0.012, 0.056),
    "left_ear": (0.058, 0.000, -0.006),
    "right_ear": (-0.058, 0.000, -0.006),
}


# --------------------------------------------------------------------------------------------
# 3-D helpers
# --------------------------------------------------------------------------------------------
def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _rodrigues(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    k = axis / (np.linalg.norm(axis) + 1e-12)
    return (
        v * math.cos(angle)
        + np.cross(k, v) * math.sin(angle)
        + k * np.dot(k, v) * (1 - math.cos(angle))
    )


def _limb_dir(flex: float, abd: float, side: float) -> np.ndarray:
    """Direction of a limb hanging down, swung forward by ``flex`` and outward by ``abd``."""
    return _rz(side * abd) @ _rx(-flex) @ np.array([0.0, -1.0, 0.0])


def _bend(u: np.ndarray, ref: np.ndarray, angle: float) -> np.ndarray:
    """Bend direction ``u`` by ``angle`` so that it turns toward ``ref``."""
    axis = np.cross(u, ref)
    if np.linalg.norm(axis) < 0.2:
        axis = np.cross(u, np.array([0.0, 1.0, 0.0]))
        if np.linalg.norm(axis) < 0.2:
            axis = np.array([1.0, 0.0, 0.0])
    return _rodrigues(u, axis, angle)


# --------------------------------------------------------------------------------------------
# Poses
# --------------------------------------------------------------------------------------------
POSES = ("stand", "walk", "arms_up", "reach", "wave", "sit", "crouch", "random")
POSE_P = (0.2, 0.22, 0.1, 0.1, 0.1, 0.08, 0.07, 0.13)


def _sample_pose(rng: np.random.Generator) -> dict[str, float]:
    d = math.radians
    u = rng.uniform
    kind = POSES[rng.choice(len(POSES), p=POSE_P)]
    p = {
        "pitch": d(u(-4, 10)),
        "side_bend": d(u(-6, 6)),
        "head_yaw": d(u(-35, 35)),
        "head_pitch": d(u(-12, 15)),
    }
    for s in ("left", "right"):
        p[f"{s}_arm_flex"] = d(u(-15, 20))
        p[f"{s}_arm_abd"] = d(u(4, 25))
        p[f"{s}_elbow"] = d(u(0, 35))
        p[f"{s}_elbow_twist"] = d(u(-30, 30))
        p[f"{s}_leg_flex"] = d(u(-8, 10))
        p[f"{s}_leg_abd"] = d(u(0, 12))
        p[f"{s}_knee"] = d(u(0, 15))
    if kind == "walk":
        amp, leg_amp = d(u(15, 45)), d(u(15, 35))
        phase = u(-1, 1)
        p["left_arm_flex"], p["right_arm_flex"] = amp * phase, -amp * phase
        p["left_leg_flex"], p["right_leg_flex"] = -leg_amp * phase, leg_amp * phase
        back = "left" if phase > 0 else "right"
        p[f"{back}_knee"] = d(u(15, 60))
        p["left_elbow"], p["right_elbow"] = d(u(10, 50)), d(u(10, 50))
    elif kind == "arms_up":
        for s in ("left", "right") if rng.random() < 0.6 else (rng.choice(["left", "right"]),):
            p[f"{s}_arm_abd"] = d(u(80, 170))
            p[f"{s}_arm_flex"] = d(u(-20, 30))
            p[f"{s}_elbow"] = d(u(0, 100))
            p[f"{s}_elbow_twist"] = d(u(40, 100))
    elif kind == "reach":
        for s in ("left", "right") if rng.random() < 0.5 else (rng.choice(["left", "right"]),):
            p[f"{s}_arm_flex"] = d(u(50, 130))
            p[f"{s}_arm_abd"] = d(u(-10, 40))
            p[f"{s}_elbow"] = d(u(0, 70))
    elif kind == "wave":
        s = rng.choice(["left", "right"])
        p[f"{s}_arm_abd"] = d(u(60, 110))
        p[f"{s}_arm_flex"] = d(u(-10, 30))
        p[f"{s}_elbow"] = d(u(70, 140))
        p[f"{s}_elbow_twist"] = d(u(70, 100))
        o = "right" if s == "left" else "left"
        p[f"{o}_elbow"] = d(u(60, 130))
        p[f"{o}_arm_abd"] = d(u(10, 40))
    elif kind == "sit":
        for s in ("left", "right"):
            p[f"{s}_leg_flex"] = d(u(65, 100))
            p[f"{s}_knee"] = d(u(65, 110))
            p[f"{s}_leg_abd"] = d(u(0, 20))
            p[f"{s}_elbow"] = d(u(20, 90))
    elif kind == "crouch":
        p["pitch"] = d(u(15, 40))
        for s in ("left", "right"):
            p[f"{s}_leg_flex"] = d(u(70, 115))
            p[f"{s}_knee"] = d(u(95, 140))
            p[f"{s}_arm_flex"] = d(u(20, 80))
            p[f"{s}_elbow"] = d(u(20, 100))
    elif kind == "random":
        p["pitch"] = d(u(-10, 30))
        p["side_bend"] = d(u(-15, 15))
        for s in ("left", "right"):
            p[f"{s}_arm_flex"] = d(u(-40, 140))
            p[f"{s}_arm_abd"] = d(u(-10, 160))
            p[f"{s}_elbow"] = d(u(0, 145))
            p[f"{s}_elbow_twist"] = d(u(-60, 100))
            p[f"{s}_leg_flex"] = d(u(-30, 100))
            p[f"{s}_leg_abd"] = d(u(-5, 40))
            p[f"{s}_knee"] = d(u(0, 130))
    p["kind"] = POSES.index(kind)
    return p


def _skeleton_3d(p: dict[str, float]) -> dict[str, np.ndarray]:
    """Joint positions in the body frame (x = person's left, y = up, z = forward)."""
    r_torso = _rz(p["side_bend"]) @ _rx(p["pitch"])
    j: dict[str, np.ndarray] = {"pelvis": np.zeros(3)}
    j["neck"] = r_torso @ np.array([0.0, NECK_Y, 0.0])
    r_head = r_torso @ _ry(p["head_yaw"]) @ _rx(-p["head_pitch"])
    j["head"] = j["neck"] + r_torso @ np.array([0.0, HEAD_UP, 0.0])
    for name, (x, y, z) in FACE.items():
        j[name] = j["head"] + r_head @ np.array([x, y, z])
    j["face_center"] = j["head"] + r_head @ np.array([0.0, -0.006, 0.040])
    j["head_fwd"] = r_head @ np.array([0.0, 0.0, 1.0])
    j["torso_fwd"] = r_torso @ np.array([0.0, 0.0, 1.0])
    # Shirt front: a V neckline and a button placket, seen only from the front.
    j["collar_left"] = r_torso @ np.array([0.055, SHOULDER_Y + 0.02, 0.075])
    j["collar_right"] = r_torso @ np.array([-0.055, SHOULDER_Y + 0.02, 0.075])
    j["collar_v"] = r_torso @ np.array([0.0, SHOULDER_Y - 0.075, 0.075])
    j["placket_end"] = np.array([0.0, 0.0, 0.072])
    fwd = np.array([0.0, 0.0, 1.0])
    for s, sign in (("left", 1.0), ("right", -1.0)):
        sh = r_torso @ np.array([sign * SHOULDER_HALF, SHOULDER_Y, 0.0])
        u = r_torso @ _limb_dir(p[f"{s}_arm_flex"], p[f"{s}_arm_abd"], sign)
        ref = _rodrigues(r_torso @ fwd, u, p[f"{s}_elbow_twist"] * sign)
        fa = _bend(u, ref, p[f"{s}_elbow"])
        j[f"{s}_shoulder"] = sh
        j[f"{s}_elbow"] = sh + UPPER_ARM_LEN * u
        j[f"{s}_wrist"] = j[f"{s}_elbow"] + FOREARM_LEN * fa
        j[f"{s}_hand"] = j[f"{s}_wrist"] + HAND_LEN * fa
        hip = np.array([sign * HIP_HALF, 0.0, 0.0])
        lu = _limb_dir(p[f"{s}_leg_flex"], p[f"{s}_leg_abd"], sign)
        shin = _bend(lu, -fwd, p[f"{s}_knee"])
        j[f"{s}_hip"] = hip
        j[f"{s}_knee"] = hip + THIGH_LEN * lu
        j[f"{s}_ankle"] = j[f"{s}_knee"] + SHIN_LEN * shin
        foot = fwd + 0.25 * shin
        j[f"{s}_toe"] = j[f"{s}_ankle"] + FOOT_LEN * foot / np.linalg.norm(foot)
    # Torso box corners (for the hull).
    corners = []
    for y, hx, hz in ((SHOULDER_Y + 0.02, 0.150, 0.075), (-0.03, 0.125, 0.072)):
        for sx in (-1, 1):
            for sz in (-1, 1):
                c = np.array([sx * hx, y, sz * hz])
                corners.append(r_torso @ c if y > 0 else c)
    j["torso_corners"] = np.array(corners)
    return j


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
@dataclass
class Figure:
    parts: np.ndarray  # local part map (h, w) uint8, 0 = nothing
    colour: np.ndarray  # local colour (h, w, 3) float32
    x0: int  # top-left corner of the local canvas in image pixels
    y0: int
    kp_xy: np.ndarray  # (17, 2) image coordinates
    kp_depth: np.ndarray  # (17,)
    torso_depth: float
    head_depth: float
    full_area: int

    def window(self, w: int, h: int) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
        """(image slices, local-canvas slices) of the part of this figure inside a w x h image;
        None when none of it is."""
        fh, fw = self.parts.shape
        ys0, xs0 = max(self.y0, 0), max(self.x0, 0)
        ys1, xs1 = min(self.y0 + fh, h), min(self.x0 + fw, w)
        if ys1 <= ys0 or xs1 <= xs0:
            return None
        image = (slice(ys0, ys1), slice(xs0, xs1))
        local = (slice(ys0 - self.y0, ys1 - self.y0), slice(xs0 - self.x0, xs1 - self.x0))
        return image, local


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A random colour, biased away from dull greys half of the time."""
    if rng.random() < 0.5:
        h = rng.random()
        s = rng.uniform(0.35, 1.0)
        v = rng.uniform(0.25, 1.0)
        i = int(h * 6) % 6
        f = h * 6 - int(h * 6)
        pp, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
        rgb = [(v, t, pp), (q, v, pp), (pp, v, t), (pp, q, v), (t, pp, v), (v, pp, q)][i]
        return np.array(rgb, dtype=np.float32) * 255
    return rng.uniform(10, 245, size=3).astype(np.float32)


def _skin(rng: np.random.Generator) -> np.ndarray:
    tone = rng.uniform(0, 1)
    light, dark = np.array([241, 205, 178]), np.array([92, 58, 40])
    c = dark + (light - dark) * tone
    return (c + rng.normal(0, 8, 3)).clip(0, 255).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray, scale: float):
    """An (h, w, 3) float texture: solid, stripes, checks, blotches or noise around ``base``."""
    kind = rng.choice(6, p=(0.3, 0.15, 0.12, 0.12, 0.16, 0.15))
    out = np.empty((h, w, 3), dtype=np.float32)
    out[:] = base
    if kind == 0:
        return out
    other = _palette(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(2.0, scale * rng.uniform(0.03, 0.12))
    if kind == 1:  # horizontal stripes
        m = (yy // (period / 2)) % 2 == 0
    elif kind == 2:  # vertical stripes
        m = (xx // (period / 2)) % 2 == 0
    elif kind == 3:  # checks
        m = ((yy // period) + (xx // period)) % 2 == 0
    elif kind == 4:  # blotches: upsampled random field
        gh, gw = max(2, int(h / period) + 2), max(2, int(w / period) + 2)
        field = rng.random((gh, gw)).astype(np.float32)
        field = np.asarray(Image.fromarray(field).resize((w, h), Image.BILINEAR))
        mix = field[..., None]
        return (out * mix + other * (1 - mix)).astype(np.float32)
    else:  # fine noise
        return (out + rng.normal(0, rng.uniform(8, 25), (h, w, 1))).astype(np.float32)
    out[m] = out[m] * 0.5 + other * 0.5
    return out


def _draw_capsule(draw: ImageDraw.ImageDraw, a, b, r: float, fill: int) -> None:
    r = max(r, 0.6)
    draw.line([tuple(a), tuple(b)], fill=fill, width=max(1, int(round(2 * r))))
    for c in (a, b):
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill)


def _hull(points: np.ndarray) -> list[tuple[float, float]]:
    pts = sorted(map(tuple, points.tolist()))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _make_figure(rng: np.random.Generator, height: float, cx: float, cy: float) -> Figure:
    pose = _sample_pose(rng)
    j = _skeleton_3d(pose)
    yaw = rng.uniform(-math.pi, math.pi)
    roll = float(np.clip(rng.normal(0, math.radians(5)), -0.35, 0.35))
    if rng.random() < 0.04:  # the odd acrobat or someone lying down
        roll = rng.uniform(-math.pi / 2, math.pi / 2)
    rot = _rz(roll) @ _ry(yaw)

    def proj(p):
        q = (rot @ np.asarray(p, dtype=np.float64).T).T
        xy = np.stack([q[..., 0] * height, -q[..., 1] * height], axis=-1)
        return xy, q[..., 2]

    names = [k for k in j if k not in ("torso_corners", "head_fwd", "torso_fwd")]
    pts = np.array([j[k] for k in names])
    xy_all, z_all = proj(pts)
    xy = {k: xy_all[i] for i, k in enumerate(names)}
    z = {k: float(z_all[i]) for i, k in enumerate(names)}
    corners_xy, _ = proj(j["torso_corners"])
    head_fwd_z = float((rot @ j["head_fwd"])[2])
    torso_fwd_z = float((rot @ j["torso_fwd"])[2])
    head_ry = HEAD_R[1] * height
    head_rx = math.hypot(
        HEAD_R[0] * math.cos(yaw + pose["head_yaw"]), HEAD_R[2] * math.sin(yaw + pose["head_yaw"])
    )
    head_rx *= height

    # Centre the figure's extent on (cx, cy).
    all_xy = np.concatenate([xy_all, corners_xy])
    pad = 0.06 * height + 2
    lo = all_xy.min(0) - pad
    hi = all_xy.max(0) + pad
    off = np.array([cx, cy]) - (lo + hi) / 2
    x0, y0 = int(math.floor(lo[0] + off[0])), int(math.floor(lo[1] + off[1]))
    w = int(math.ceil(hi[0] - lo[0])) + 2
    h = int(math.ceil(hi[1] - lo[1])) + 2
    shift = off - np.array([x0, y0])  # image = local + (x0, y0)

    def loc(k):
        return xy[k] + shift

    torso_depth = float((z["neck"] + z["pelvis"]) / 2) + 0.03
    items = []  # (depth, part id, draw fn)
    hull = [(float(a + shift[0]), float(b + shift[1])) for a, b in _hull(corners_xy)]
    items.append((torso_depth, TORSO, ("poly", hull)))
    items.append(((z["neck"] + z["head"]) / 2 - 0.01, NECK,
                  ("cap", loc("neck"), loc("head"), WIDTH["neck"] * height / 2)))  # fmt: skip
    items.append((z["head"], HEAD, ("ell", loc("head"), head_rx, head_ry)))
    for s in ("left", "right"):
        segs = (
            (UPPER_ARM[s], f"{s}_shoulder", f"{s}_elbow", "upper_arm"),
            (FOREARM[s], f"{s}_elbow", f"{s}_wrist", "forearm"),
            (HAND[s], f"{s}_wrist", f"{s}_hand", "hand"),
            (THIGH[s], f"{s}_hip", f"{s}_knee", "thigh"),
            (SHIN[s], f"{s}_knee", f"{s}_ankle", "shin"),
            (FOOT[s], f"{s}_ankle", f"{s}_toe", "foot"),
        )
        for pid, a, b, wname in segs:
            depth = (z[a] + z[b]) / 2
            items.append((depth, pid, ("cap", loc(a), loc(b), WIDTH[wname] * height / 2)))
    items.sort(key=lambda t: t[0])

    pm_img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(pm_img)
    for _, pid, shape in items:
        if shape[0] == "poly":
            draw.polygon(shape[1], fill=pid)
        elif shape[0] == "cap":
            _draw_capsule(draw, shape[1], shape[2], shape[3], pid)
        else:
            c, rx, ry = shape[1], shape[2], shape[3]
            draw.ellipse([c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry], fill=pid)
    parts = np.asarray(pm_img).copy()

    # Colours: garments -> textures -> per-pixel gather.
    sleeves_long = rng.random() < 0.5
    shorts = rng.random() < 0.25
    garment = np.zeros(NUM_PARTS, dtype=np.int64)
    garment[[TORSO, UPPER_ARM["left"], UPPER_ARM["right"]]] = SHIRT
    garment[[NECK, HAND["left"], HAND["right"]]] = SKIN
    garment[[FOREARM["left"], FOREARM["right"]]] = SHIRT if sleeves_long else SKIN
    garment[[THIGH["left"], THIGH["right"]]] = PANTS
    garment[[SHIN["left"], SHIN["right"]]] = SKIN if shorts else PANTS
    garment[[FOOT["left"], FOOT["right"]]] = SHOES
    garment[HEAD] = HAIR
    skin = _skin(rng)
    bases = [_palette(rng), skin, _palette(rng), _palette(rng) * 0.6,
             np.array(rng.choice([[30, 20, 15], [90, 60, 30], [200, 170, 90], [60, 60, 60],
                                  [150, 60, 30]]), dtype=np.float32)]  # fmt: skip
    tex = np.stack(
        [
            _texture(rng, h, w, bases[SHIRT], height),
            np.broadcast_to(skin, (h, w, 3)).astype(np.float32),
            _texture(rng, h, w, bases[PANTS], height),
            np.broadcast_to(bases[SHOES], (h, w, 3)).astype(np.float32),
            np.broadcast_to(bases[HAIR], (h, w, 3)).astype(np.float32),
        ]
    )
    mask = parts > 0
    ys, xs = np.nonzero(mask)
    colour = np.zeros((h, w, 3), dtype=np.float32)
    colour[ys, xs] = tex[garment[parts[ys, xs]], ys, xs]

    # Face on the side the head faces, with eyes; hair elsewhere.
    if head_fwd_z > -0.15:
        face = Image.new("L", (w, h), 0)
        fd = ImageDraw.Draw(face)
        fc = loc("face_center")
        fx = head_rx * (0.55 + 0.3 * max(head_fwd_z, 0))
        fy = head_ry * 0.78
        fd.ellipse([fc[0] - fx, fc[1] - fy * 0.8, fc[0] + fx, fc[1] + fy], fill=1)
        er = max(0.5, 0.011 * height)
        for eye in ("left_eye", "right_eye"):
            if z[eye] > z["head"] + 0.01:
                e = loc(eye)
                fd.ellipse([e[0] - er, e[1] - er, e[0] + er, e[1] + er], fill=2)
        if z["nose"] > z["head"] + 0.02:
            n = loc("nose")
            fd.ellipse([n[0] - er, n[1] - er * 0.7, n[0] + er, n[1] + er * 0.7], fill=3)
        fm = np.asarray(face) * (parts == HEAD)
        colour[fm == 1] = skin
        colour[fm == 2] = np.array([25, 20, 20], dtype=np.float32)
        colour[fm == 3] = skin * 0.75

    if torso_fwd_z > 0.15:
        front = Image.new("L", (w, h), 0)
        fd = ImageDraw.Draw(front)
        fd.polygon([tuple(loc("collar_left")), tuple(loc("collar_right")), tuple(loc("collar_v"))],
                   fill=1)  # fmt: skip
        fd.line([tuple(loc("collar_v")), tuple(loc("placket_end"))], fill=2,
                width=max(1, int(round(0.014 * height))))  # fmt: skip
        fm = np.asarray(front) * (parts == TORSO)
        colour[fm == 1] = skin
        colour[fm == 2] *= 0.45

    # Depth shading: far parts darker; outlines where parts meet.
    depth_of = np.zeros(NUM_PARTS, dtype=np.float32)
    for depth, pid, _ in items:
        depth_of[pid] = depth
    shade = 1.0 - 0.35 * np.clip((torso_depth - depth_of) / 0.12, 0, 1)
    colour *= shade[parts][..., None]
    edge = np.zeros_like(mask)
    edge[:-1] |= parts[:-1] != parts[1:]
    edge[1:] |= parts[1:] != parts[:-1]
    edge[:, :-1] |= parts[:, :-1] != parts[:, 1:]
    edge[:, 1:] |= parts[:, 1:] != parts[:, :-1]
    edge &= mask
    colour[edge] *= rng.uniform(0.35, 0.7)

    # PIL draws pixel i's centre at coordinate i; COCO puts it at i + 0.5.
    kp_xy = np.array([loc(n) + np.array([x0, y0]) + 0.5 for n in COCO_NAMES])
    kp_depth = np.array([z[n] for n in COCO_NAMES])
    return Figure(
        parts=parts,
        colour=colour,
        x0=x0,
        y0=y0,
        kp_xy=kp_xy,
        kp_depth=kp_depth,
        torso_depth=torso_depth,
        head_depth=z["head"],
        full_area=int(mask.sum()),
    )


# Which parts count as "the keypoint's own" when on top of it.
_OWN_PARTS: dict[int, tuple[int, ...]] = {}
for _s in ("left", "right"):
    _OWN_PARTS[KP[f"{_s}_shoulder"]] = (UPPER_ARM[_s],)
    _OWN_PARTS[KP[f"{_s}_elbow"]] = (UPPER_ARM[_s], FOREARM[_s])
    _OWN_PARTS[KP[f"{_s}_wrist"]] = (FOREARM[_s], HAND[_s])
    _OWN_PARTS[KP[f"{_s}_hip"]] = (THIGH[_s],)
    _OWN_PARTS[KP[f"{_s}_knee"]] = (THIGH[_s], SHIN[_s])
    _OWN_PARTS[KP[f"{_s}_ankle"]] = (SHIN[_s], FOOT[_s])
_TORSO_JOINTS = {KP[f"{s}_{j}"] for s in ("left", "right") for j in ("shoulder", "hip")}
_FACE = {KP["nose"], KP["left_eye"], KP["right_eye"]}
_EARS = {KP["left_ear"], KP["right_ear"]}


# --------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c1, c2 = _palette(rng), _palette(rng)
    ang = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(ang) + yy * math.sin(ang)) / max(w, h)
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    if rng.random() < 0.6:  # a floor below a horizon
        hy = int(rng.uniform(0.3, 0.8) * h)
        floor = _texture(rng, h - hy, w, _palette(rng), h * 0.8)
        img[hy:] = img[hy:] * 0.3 + floor * 0.7
    if rng.random() < 0.7:  # low-frequency blotches
        g = rng.random((int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3)) * 255
        field = np.asarray(
            Image.fromarray(g.astype(np.uint8)).resize((w, h), Image.BICUBIC), dtype=np.float32
        )
        a = rng.uniform(0.1, 0.5)
        img = img * (1 - a) + field * a
    if rng.random() < 0.5:
        img = img + rng.normal(0, rng.uniform(3, 15), (h, w, 1))
    bg = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(bg)
    for _ in range(int(rng.integers(3, 25))):
        _clutter_shape(rng, draw, w, h, None)
    return bg


def _clutter_shape(rng, draw, w, h, owner_draw, near=None) -> None:
    """One clutter object; ``near`` = (x0, y0, x1, y1) biases it onto that region."""
    colour = tuple(int(c) for c in _palette(rng))
    size = rng.uniform(0.03, 0.35) * min(w, h)
    if near is not None:
        cx = rng.uniform(near[0], near[2])
        cy = rng.uniform(near[1], near[3])
        size = rng.uniform(0.25, 0.6) * max(near[2] - near[0], near[3] - near[1])
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    kind = rng.choice(5, p=(0.3, 0.25, 0.15, 0.2, 0.1))
    shapes = []
    if kind == 0:  # box
        a = rng.uniform(0.4, 2.5)
        sw, sh = size * math.sqrt(a), size / math.sqrt(a)
        shapes.append(("rect", [cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2]))
    elif kind == 1:  # ellipse / bush
        for _ in range(int(rng.integers(1, 5))):
            r = size * rng.uniform(0.3, 0.6)
            ox, oy = rng.normal(0, size * 0.3, 2)
            shapes.append(("ell", [cx + ox - r, cy + oy - r, cx + ox + r, cy + oy + r]))
    elif kind == 2:  # polygon
        n = int(rng.integers(3, 7))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = size * rng.uniform(0.3, 0.7, n)
        shapes.append(("poly", [(cx + r * math.cos(a), cy + r * math.sin(a))
                                for a, r in zip(ang, rad, strict=True)]))  # fmt: skip
    elif kind == 3:  # sticks that look like limbs
        a = rng.uniform(0, math.pi)
        ln = size * rng.uniform(0.6, 1.5)
        width = max(2, int(size * rng.uniform(0.05, 0.2)))
        p0 = (cx - ln / 2 * math.cos(a), cy - ln / 2 * math.sin(a))
        p1 = (cx + ln / 2 * math.cos(a), cy + ln / 2 * math.sin(a))
        shapes.append(("line", [p0, p1], width))
        if rng.random() < 0.5:
            b = a + rng.uniform(0.5, 2.5)
            p2 = (p1[0] + ln * 0.7 * math.cos(b), p1[1] + ln * 0.7 * math.sin(b))
            shapes.append(("line", [p1, p2], width))
    else:  # pole
        pw = max(2.0, size * rng.uniform(0.08, 0.25))
        shapes.append(("rect", [cx - pw / 2, cy - h, cx + pw / 2, cy + h]))
    for d, fill in ((draw, colour), (owner_draw, OCCLUDER)):
        if d is None:
            continue
        for s in shapes:
            if s[0] == "rect":
                d.rectangle(s[1], fill=fill)
            elif s[0] == "ell":
                d.ellipse(s[1], fill=fill)
            elif s[0] == "poly":
                d.polygon(s[1], fill=fill)
            else:
                d.line(s[1], fill=fill, width=s[2])


def _lighting(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    img = np.clip(img / 255.0, 0.0, 1.0)
    gamma = rng.uniform(0.7, 1.4)
    img = img**gamma
    gain = rng.uniform(0.55, 1.25) * rng.uniform(0.88, 1.12, 3)
    img = img * gain
    if rng.random() < 0.6:  # directional light
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(a) + yy * math.sin(a)) / max(w, h)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        lo = rng.uniform(0.45, 0.9)
        img = img * (lo + (1 - lo) * t)[..., None]
    if rng.random() < 0.3:  # vignette / spotlight
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (max(w, h) ** 2)
        img = img * (1.0 - rng.uniform(0.2, 0.6) * np.clip(r2 * 2, 0, 1))[..., None]
    img = img * 255.0
    if rng.random() < 0.7:
        img = img + rng.normal(0, rng.uniform(1, 7), img.shape)
    return img


def render(
    seed: int, index: int, width: int = 384, height: int = 288
) -> tuple[np.ndarray, list[dict]]:
    """Image ``index`` of the set made from ``seed``: (H x W x 3 uint8, annotations).

    Annotations are COCO-style dicts without ``id``/``image_id``: ``bbox`` (xywh), ``area``,
    ``keypoints`` (flat x, y, v), ``num_keypoints``, ``category_id`` and ``iscrowd``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 20240601]))
    w, h = int(width), int(height)
    bg = _background(rng, w, h)

    n_fig = int(rng.choice(6, p=(0.04, 0.2, 0.24, 0.2, 0.16, 0.16)))
    h_max = min(250.0, 0.92 * h)
    h_min = min(30.0, 0.5 * h_max)
    heights = rng.uniform(h_min, h_max, n_fig)
    heights.sort()  # smaller ones first: farther away, drawn behind
    figures = []
    for fh in heights:
        half = min(fh * 0.45, h * 0.5)
        cx = rng.uniform(-0.05 * w, 1.05 * w)
        cy = rng.uniform(half * 0.8, h - half * 0.8) if h - half * 0.8 > half * 0.8 else h / 2
        figures.append(_make_figure(rng, float(fh), cx, cy))

    # Foreground occluders, most of them placed over a figure.
    occ_img = Image.new("L", (w, h), 0)
    occ_draw = ImageDraw.Draw(occ_img)
    occ_layer = Image.new("RGB", (w, h), 0)
    occ_layer_draw = ImageDraw.Draw(occ_layer)
    n_occ = int(rng.choice(4, p=(0.45, 0.3, 0.15, 0.1)))
    for _ in range(n_occ):
        near = None
        if figures and rng.random() < 0.8:
            f = figures[int(rng.integers(len(figures)))]
            fh_, fw_ = f.parts.shape
            near = (f.x0, f.y0, f.x0 + fw_, f.y0 + fh_)
        _clutter_shape(rng, occ_layer_draw, w, h, occ_draw, near=near)
    occ = np.asarray(occ_img) == OCCLUDER

    # Drop figures that end up mostly hidden; the others keep their z-order.
    keep = list(range(len(figures)))
    while True:
        owner, part, vis = _compose(figures, keep, occ, w, h)
        worst, worst_frac = None, 1.0
        for i in keep:
            area = int((owner == i + 1).sum())
            frac = area / max(figures[i].full_area, 1)
            n_vis = int((vis[i] == 2).sum())
            bad = frac < 0.35 or area < 60 or n_vis < 3
            if bad and frac <= worst_frac:
                worst, worst_frac = i, frac
        if worst is None:
            break
        keep.remove(worst)

    img = np.asarray(bg, dtype=np.float32).copy()
    for i in keep:
        f = figures[i]
        win = f.window(w, h)
        if win is None:
            continue
        image, local = win
        lp = f.parts[local] > 0
        img[image][lp] = f.colour[local][lp]
    occ_rgb = np.asarray(occ_layer, dtype=np.float32)
    img[occ] = occ_rgb[occ]
    img = _lighting(rng, img)
    out = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    pixels = np.asarray(out)

    anns = []
    for i in keep:
        f = figures[i]
        m = owner == i + 1
        ys, xs = np.nonzero(m)
        x_min, x_max, y_min, y_max = xs.min(), xs.max(), ys.min(), ys.max()
        kps = []
        for k in range(NUM_KP):
            v = int(vis[i][k])
            x, y = f.kp_xy[k]
            if v == 0:
                kps += [0, 0, 0]
            else:
                kps += [round(float(x), 2), round(float(y), 2), v]
        anns.append(
            {
                "category_id": 1,
                "bbox": [int(x_min), int(y_min), int(x_max - x_min + 1), int(y_max - y_min + 1)],
                "area": int(m.sum()),
                "keypoints": kps,
                "num_keypoints": int((vis[i] > 0).sum()),
                "iscrowd": 0,
            }
        )
    return pixels, anns


def _compose(figures: list[Figure], keep: list[int], occ: np.ndarray, w: int, h: int):
    """Owner map (figure index + 1, 0 background, OCCLUDER), part map, visibility per figure."""
    owner = np.zeros((h, w), dtype=np.uint8)
    part = np.zeros((h, w), dtype=np.uint8)
    for i in keep:
        win = figures[i].window(w, h)
        if win is None:
            continue
        image, local = win
        lp = figures[i].parts[local]
        m = lp > 0
        owner[image][m] = i + 1
        part[image][m] = lp[m]
    owner[occ] = OCCLUDER
    part[occ] = 0
    vis = {}
    for i in keep:
        f = figures[i]
        v = np.zeros(NUM_KP, dtype=np.int64)
        for k in range(NUM_KP):
            x, y = f.kp_xy[k]
            if not (0 <= x < w and 0 <= y < h):
                continue
            px, py = int(math.floor(x)), int(math.floor(y))
            top_owner, top_part = owner[py, px], part[py, px]
            seen = False
            if top_owner == i + 1:
                d = f.kp_depth[k]
                if k in _FACE:
                    seen = top_part == HEAD and d > f.head_depth + 0.01
                elif k in _EARS:
                    seen = top_part == HEAD and d > f.head_depth - 0.02
                else:
                    seen = top_part in _OWN_PARTS[k] or (
                        k in _TORSO_JOINTS and top_part == TORSO and d >= f.torso_depth - 0.05
                    )
            v[k] = 2 if seen else 1
        vis[i] = v
    return owner, part, vis


# --------------------------------------------------------------------------------------------
# Dataset writer
# --------------------------------------------------------------------------------------------
def categories() -> list[dict]:
    return [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(COCO_NAMES),
            "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON],
        }
    ]


def write_dataset(
    out: str | Path,
    num_images: int,
    seed: int,
    width: int = 384,
    height: int = 288,
    quality: int = 85,
) -> dict:
    """Render ``num_images`` images into ``out/images`` and write ``out/annotations.json``."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    ann_id = 1
    for idx in range(num_images):
        pixels, anns = render(seed, idx, width, height)
        name = f"{idx:06d}.jpg"
        Image.fromarray(pixels).save(out / "images" / name, quality=quality)
        images.append({"id": idx + 1, "file_name": name, "width": width, "height": height})
        for a in anns:
            annotations.append({"id": ann_id, "image_id": idx + 1, **a})
            ann_id += 1
    data = {
        "info": {
            "description": "pytest-kpmodel synthetic people (tools/synth_data.py)",
            "version": GENERATOR_VERSION,
            "generator": "tools/synth_data.py",
            "seed": int(seed),
            "num_images": int(num_images),
            "width": int(width),
            "height": int(height),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories(),
    }
    (out / "annotations.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (images/ + annotations.json)")
    ap.add_argument("--num-images", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--height", type=int, default=288)
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality")
    args = ap.parse_args(argv)
    data = write_dataset(args.out, args.num_images, args.seed, args.width, args.height,
                         args.quality)  # fmt: skip
    print(
        f"wrote {len(data['images'])} images, {len(data['annotations'])} people to {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
