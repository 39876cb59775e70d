"""Seeded CLEVR-like scenes without Blender: objects with CLEVR's attributes and 3d coordinates,
placed and related as CLEVR's render_images.py does, so a config can run with no data files.

Placement follows CLEVR: 3 to 10 objects at (x, y) uniform in [-3, 3]^2, resting on the ground
(z = the size's radius: 0.7 large, 0.35 small), at least `min_dist` apart surface to surface, and
never within `margin` of each other along the camera's left/right/front/behind axes, so every
relation is clear-cut; a scene whose objects cannot be placed in `max_retries` tries is started
again. The camera's ground-plane axes are CLEVR's default view turned by a small random jitter.
Relationships are computed from the coordinates exactly as CLEVR does (`compute_relationships`).
No pixel coordinates or images: memrl works over scene graphs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.clevr.catalog import ATTRIBUTES, RELATIONS

SIZE_RADIUS = {"large": 0.7, "small": 0.35}
# CLEVR's default camera: "right" points this way on the ground plane (degrees from +x).
CAMERA_RIGHT_DEG = 48.99
RELATION_EPS = 0.2


@dataclass(frozen=True)
class SceneConfig:
    """CLEVR's render_images.py defaults."""

    min_objects: int = 3
    max_objects: int = 10
    min_dist: float = 0.25
    margin: float = 0.4
    max_retries: int = 50
    camera_jitter_deg: float = 3.0
    split: str = "memrl"

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"SceneConfig: need 1 <= min_objects <= max_objects, got "
                f"{self.min_objects}, {self.max_objects}"
            )
        if self.max_objects > 20:
            raise ValueError(f"SceneConfig: max_objects {self.max_objects} > 20 will not fit")


def directions_for(angle_deg: float) -> dict[str, list[float]]:
    """The six unit directions CLEVR stores per scene for a camera whose 'right' is at
    `angle_deg` on the ground plane ('behind' is 90 degrees on, away from the camera)."""
    a = math.radians(angle_deg)
    right = [math.cos(a), math.sin(a), 0.0]
    behind = [-math.sin(a), math.cos(a), 0.0]
    return {
        "right": right,
        "left": [-c for c in right],
        "behind": behind,
        "front": [-c for c in behind],
        "above": [0.0, 0.0, 1.0],
        "below": [0.0, 0.0, -1.0],
    }


def compute_relationships(
    objects: Sequence[Mapping[str, Any]],
    directions: Mapping[str, Sequence[float]],
    eps: float = RELATION_EPS,
) -> dict[str, list[list[int]]]:
    """For each relation and object i, the objects j != i lying that way from i: those whose
    offset from i projects onto the relation's direction by more than `eps` (CLEVR's rule)."""
    out: dict[str, list[list[int]]] = {}
    for rel in RELATIONS:
        d = directions[rel]
        lists = []
        for i, a in enumerate(objects):
            ca = a["3d_coords"]
            lists.append(
                [
                    j
                    for j, b in enumerate(objects)
                    if j != i and sum((b["3d_coords"][k] - ca[k]) * d[k] for k in range(3)) > eps
                ]
            )
        out[rel] = lists
    return out


def _place(
    rng: np.random.Generator, n: int, directions: Mapping[str, Sequence[float]], cfg: SceneConfig
) -> list[dict[str, Any]] | None:
    objects: list[dict[str, Any]] = []
    placed: list[tuple[float, float, float]] = []
    for _ in range(n):
        size = str(rng.choice(ATTRIBUTES["size"][1]))
        shape = str(rng.choice(ATTRIBUTES["shape"][1]))
        r = SIZE_RADIUS[size]
        footprint = r / math.sqrt(2) if shape == "cube" else r  # as CLEVR's placement check
        for _try in range(cfg.max_retries):
            x, y = (float(v) for v in rng.uniform(-3.0, 3.0, size=2))
            ok = True
            for xx, yy, rr in placed:
                dx, dy = x - xx, y - yy
                if math.hypot(dx, dy) - footprint - rr < cfg.min_dist:
                    ok = False
                    break
                for rel in RELATIONS:
                    m = dx * directions[rel][0] + dy * directions[rel][1]
                    if 0 < m < cfg.margin:
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                break
        else:
            return None
        placed.append((x, y, footprint))
        objects.append(
            {
                "shape": shape,
                "size": size,
                "color": str(rng.choice(ATTRIBUTES["color"][1])),
                "material": str(rng.choice(ATTRIBUTES["material"][1])),
                "3d_coords": [x, y, r],
                "rotation": float(rng.uniform(0.0, 360.0)),
            }
        )
    return objects


def generate_scene(
    rng: np.random.Generator, image_index: int = 0, config: SceneConfig | None = None
) -> dict[str, Any]:
    """One scene dict in CLEVR's scene format (without pixel coordinates)."""
    cfg = config or SceneConfig()
    while True:
        angle = CAMERA_RIGHT_DEG + float(rng.uniform(-1.0, 1.0)) * cfg.camera_jitter_deg
        directions = directions_for(angle)
        n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        objects = _place(rng, n, directions, cfg)
        if objects is not None:
            break
    return {
        "image_index": image_index,
        "image_filename": f"CLEVR_{cfg.split}_{image_index:06d}.png",
        "split": cfg.split,
        "objects": objects,
        "directions": directions,
        "relationships": compute_relationships(objects, directions),
    }


def generate_scenes(n: int, seed: int, config: SceneConfig | None = None) -> list[dict[str, Any]]:
    """`n` scenes from one seed; scene i is the same for any n > i."""
    rng = np.random.default_rng(seed)
    return [generate_scene(rng, i, config) for i in range(n)]
