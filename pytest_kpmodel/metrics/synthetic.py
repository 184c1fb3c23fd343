"""Seeded synthetic COCO keypoint sets for metric parity tests and benchmarks.

:func:`make_coco_set` returns ``(gt, results)``: a COCO ground-truth dict (images,
annotations, categories) and a list of COCO result dicts, built from a seeded
``numpy.random.Generator`` so the same arguments always give the same data. The sets
are made to hit the corners of COCO evaluation: crowd regions, ground truths with
zero labelled keypoints, areas exactly on the 32**2 and 96**2 boundaries, score ties,
images without ground truth, images with many detections (past maxDets 20 and 100),
left/right inversions, keypoints taken from another person, and custom keypoint counts.

Everything is plain Python numbers (JSON-serialisable); nothing here imports pytest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def _flip_index(num_keypoints: int) -> list[int]:
    """COCO-like pairing: 0 unpaired, then (1, 2), (3, 4), ..."""
    perm = list(range(num_keypoints))
    for i in range(1, num_keypoints - 1, 2):
        perm[i], perm[i + 1] = i + 1, i
    return perm


def make_coco_set(
    seed: int = 0,
    *,
    num_images: int = 50,
    people_per_image: float = 3.0,
    num_keypoints: int = 17,
    num_categories: int = 1,
    dets_per_person: float = 1.5,
    false_positives_per_image: float = 1.5,
    crowd_rate: float = 0.05,
    zero_kp_rate: float = 0.08,
    boundary_rate: float = 0.05,
    tie_rate: float = 0.2,
    many_dets_rate: float = 0.03,
    empty_image_rate: float = 0.1,
    image_size: tuple[int, int] = (640, 480),
    score_decimals: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A seeded COCO keypoint ground truth and detection results that exercise edge cases.

    ``people_per_image`` is the Poisson mean of ground truths per image (``empty_image_rate``
    of the images get none); each ground truth yields a Poisson(``dets_per_person``) number
    of noisy detections, some of them with left/right inverted or another person's
    keypoints; ``false_positives_per_image`` random detections are added per image and
    ``many_dets_rate`` of the images get 25-130 detections. ``tie_rate`` of the scores are
    drawn from a handful of values, so ties happen within and across images;
    ``score_decimals`` rounds every score. Categories beyond the first share the keypoint
    layout (only category 1 is named ``person``).
    """
    rng = np.random.default_rng(seed)
    k = num_keypoints
    names = [f"kp{i}" for i in range(k)]
    categories = [
        {
            "id": c + 1,
            "name": "person" if c == 0 else f"thing{c}",
            "supercategory": "person",
            "keypoints": names,
            "skeleton": [],
        }
        for c in range(num_categories)
    ]
    draw = _Sampler(
        rng=rng,
        width=image_size[0],
        height=image_size[1],
        k=k,
        flip=np.array(_flip_index(k)),
        num_categories=num_categories,
        tie_values=np.round(rng.uniform(0.05, 0.95, size=6), 3),
        tie_rate=tie_rate,
        score_decimals=score_decimals,
    )
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for i in range(num_images):
        image_id = int(i * 3 + 1)  # non-contiguous ids
        images.append(
            {"id": image_id, "width": draw.width, "height": draw.height, "file_name": f"{i}.jpg"}
        )
        n_people = 0 if rng.random() < empty_image_rate else int(rng.poisson(people_per_image))
        people = []
        for _ in range(n_people):
            ann, person = draw.person(len(anns) + 1, image_id, crowd_rate, zero_kp_rate,
                                      boundary_rate)  # fmt: skip
            anns.append(ann)
            people.append(person)
        results += draw.detections_of(image_id, people, dets_per_person)
        results += draw.false_positives(image_id, people, false_positives_per_image,
                                        many_dets_rate)  # fmt: skip
    gt = {
        "info": {"description": f"synthetic seed={seed}"},
        "images": images,
        "annotations": anns,
        "categories": categories,
    }
    return gt, results


#: A ground truth as the detections see it: (category, box, keypoints [K, 2], flags, area).
Person = tuple[int, list[float], np.ndarray, np.ndarray, float]


@dataclass
class _Sampler:
    """The random draws of :func:`make_coco_set`, in the order that fixes each seed's set."""

    rng: np.random.Generator
    width: int
    height: int
    k: int
    flip: np.ndarray
    num_categories: int
    tie_values: np.ndarray
    tie_rate: float
    score_decimals: int | None

    def score(self) -> float:
        rng = self.rng
        tie = rng.random() < self.tie_rate
        s = float(rng.choice(self.tie_values)) if tie else float(rng.random())
        if self.score_decimals is not None:
            s = round(s, self.score_decimals)
        return s

    def category(self) -> int:
        return int(self.rng.integers(1, self.num_categories + 1))

    def box(self) -> list[float]:
        rng, width, height = self.rng, self.width, self.height
        # Side lengths spread log-uniformly so small, medium and large all occur.
        w = float(np.exp(rng.uniform(np.log(6), np.log(width * 0.7))))
        h = float(np.clip(w * rng.uniform(0.8, 2.6), 4, height * 0.95))
        x = float(rng.uniform(0, max(1.0, width - w)))
        y = float(rng.uniform(0, max(1.0, height - h)))
        return [x, y, w, h]

    def keypoints_in(self, box: list[float]) -> np.ndarray:
        x, y, w, h = box
        xs = x + self.rng.uniform(0.05, 0.95, size=self.k) * w
        ys = y + self.rng.uniform(0.05, 0.95, size=self.k) * h
        return np.stack([xs, ys], axis=1)

    def person(self, ann_id: int, image_id: int, crowd_rate: float, zero_kp_rate: float,
               boundary_rate: float) -> tuple[dict[str, Any], Person]:  # fmt: skip
        """A ground-truth annotation: a crowd region, zero labelled keypoints or some, and
        sometimes an area exactly on the 32**2 or 96**2 boundary."""
        rng, k = self.rng, self.k
        cat = self.category()
        box = self.box()
        pts = self.keypoints_in(box)
        crowd = rng.random() < crowd_rate
        if crowd or rng.random() < zero_kp_rate:
            vis = np.zeros(k, dtype=int)
        else:
            vis = rng.choice([0, 1, 2], size=k, p=[0.25, 0.25, 0.5])
            if not vis.any():
                vis[int(rng.integers(k))] = 2
        if crowd and rng.random() < 0.3:  # a crowd region that still has keypoints
            vis = rng.choice([0, 2], size=k)
        if rng.random() < boundary_rate:
            area = float(rng.choice([32.0**2, 96.0**2]))
        else:
            area = float(box[2] * box[3] * rng.uniform(0.35, 0.9))
        kps = np.concatenate([pts, vis[:, None]], axis=1)
        kps[vis == 0, :2] = 0.0
        ann = {
            "id": ann_id,
            "image_id": image_id,
            "category_id": cat,
            "bbox": [round(float(v), 2) for v in box],
            "area": area,
            "iscrowd": int(crowd),
            "num_keypoints": int((vis > 0).sum()),
            "keypoints": np.round(kps.reshape(-1), 2).tolist(),
        }
        return ann, (cat, box, pts, vis, area)

    def detection(self, image_id: int, cat: int, box: list[float], pts: np.ndarray,
                  scale: float) -> dict[str, Any]:  # fmt: skip
        """A result near ``box`` and ``pts``: jittered box, keypoints with noise of ``scale``."""
        rng, k = self.rng, self.k
        x, y, w, h = box
        jitter = rng.normal(0, 0.08, size=4) * [w, h, w, h]
        dbox = [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]
        noise = rng.normal(0, 1, size=(k, 2)) * scale
        dpts = pts + noise
        conf = rng.uniform(0, 1, size=(k, 1))
        kp = np.concatenate([dpts, conf], axis=1).reshape(-1)
        return {
            "image_id": image_id,
            "category_id": cat,
            "bbox": [float(v) for v in dbox],
            "score": self.score(),
            "keypoints": kp.tolist(),
        }

    def detections_of(self, image_id: int, people: list[Person], per_person: float
                      ) -> list[dict[str, Any]]:  # fmt: skip
        """Poisson(``per_person``) detections of each person, some with left and right
        inverted or keypoints of another person."""
        rng, out = self.rng, []
        for p, (cat, box, pts, _vis, area) in enumerate(people):
            for _ in range(int(rng.poisson(per_person))):
                scale = np.sqrt(area) * rng.choice([0.01, 0.04, 0.1, 0.3])
                use = pts
                u = rng.random()
                if u < 0.15:  # left/right inversion
                    use = pts[self.flip]
                elif u < 0.25 and len(people) > 1:  # some keypoints from another person
                    other = people[(p + 1) % len(people)][2]
                    mask = rng.random(self.k) < 0.4
                    use = np.where(mask[:, None], other, pts)
                out.append(self.detection(image_id, cat, box, use, float(scale)))
        return out

    def false_positives(self, image_id: int, people: list[Person], per_image: float,
                        many_dets_rate: float) -> list[dict[str, Any]]:  # fmt: skip
        """Poisson(``per_image``) random detections (25-130 more on ``many_dets_rate`` of the
        images), half of them near-duplicates of a real person."""
        rng, out = self.rng, []
        n_fp = int(rng.poisson(per_image))
        if rng.random() < many_dets_rate:
            n_fp += int(rng.integers(25, 130))
        for _ in range(n_fp):
            box = self.box()
            cat = self.category()
            if people and rng.random() < 0.5:  # near-duplicate of a real person
                cat, pbox, pts, _vis, area = people[int(rng.integers(len(people)))]
                out.append(self.detection(image_id, cat, pbox, pts, float(np.sqrt(area) * 0.2)))
            else:
                out.append(self.detection(image_id, cat, box, self.keypoints_in(box), 1.0))
        return out


def flip_index(num_keypoints: int) -> list[int]:
    """The flip index :func:`make_coco_set` uses for its ``kp{i}`` keypoints."""
    return _flip_index(num_keypoints)


def make_sigmas(num_keypoints: int, seed: int = 0) -> list[float]:
    """Seeded per-keypoint OKS sigmas in COCO's range (0.025-0.107)."""
    rng = np.random.default_rng(seed + 7919)
    return [float(v) for v in np.round(rng.uniform(0.025, 0.107, size=num_keypoints), 4)]
