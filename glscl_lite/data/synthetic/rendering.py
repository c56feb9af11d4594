"""Rendering a scene to frames (:func:`render_frames`, :func:`render_video`) and encoding H.264 (:func:`encode_video`).

Part of :mod:`glscl_lite.data.synthetic` (the package re-exports every name).
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Iterable, Optional, Sequence

import numpy as np

from glscl_lite.data.synthetic.sampling import object_track
from glscl_lite.data.synthetic.scenes import Background, Scene
from glscl_lite.data.synthetic.settings import DEFAULT_FPS, DEFAULT_SIZE, X264_CRF, X264_PRESET
from glscl_lite.data.synthetic.vocabulary import BACKGROUND_COLOURS, COLOURS, SIZES, SPIN_SHAPES
from glscl_lite.utils import PathLike


def _polygon(vertices: Iterable[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Vertices given as (x, y) around the centre -> (angles, radii) sorted by angle."""
    pts = np.array(list(vertices), dtype=float)
    ang = np.mod(np.arctan2(pts[:, 1], pts[:, 0]), 2 * np.pi)
    order = np.argsort(ang)
    return ang[order], np.hypot(pts[:, 0], pts[:, 1])[order]


def _regular(n: int, radius: float, start_deg: float, radii: Optional[Sequence[float]] = None):
    rs = radii if radii is not None else [radius] * n
    return _polygon((r * math.cos(math.radians(start_deg + 360 * i / n)),
                     r * math.sin(math.radians(start_deg + 360 * i / n))) for i, r in enumerate(rs))


_ARM = 0.36
SHAPE_POLYGONS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "square": _regular(4, 1.15, 45),
    "triangle": _regular(3, 1.2, -90),
    "star": _regular(10, 0, -90, [1.25, 0.52] * 5),
    "diamond": _regular(4, 0, 0, [0.8, 1.2, 0.8, 1.2]),
    "cross": _polygon([(_ARM, 1.05), (-_ARM, 1.05), (-_ARM, _ARM), (-1.05, _ARM), (-1.05, -_ARM),
                       (-_ARM, -_ARM), (-_ARM, -1.05), (_ARM, -1.05), (_ARM, -_ARM), (1.05, -_ARM),
                       (1.05, _ARM), (_ARM, _ARM)]),
    "hexagon": _regular(6, 1.08, 0),
}
"""Star-shaped polygons (angle, radius) in units of the object radius."""
RING_INNER = 0.58
ANGLE_STEP_DEG = 2


def _polar_radius(theta: np.ndarray, angles: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance from the centre to the polygon boundary along direction ``theta``."""
    a = np.concatenate([angles[-1:] - 2 * np.pi, angles, angles[:1] + 2 * np.pi])
    r = np.concatenate([radii[-1:], radii, radii[:1]])
    theta = np.mod(theta, 2 * np.pi)
    i = np.clip(np.searchsorted(a, theta, side="right") - 1, 0, len(a) - 2)
    a1, a2, r1, r2 = a[i], a[i + 1], r[i], r[i + 1]
    return r1 * r2 * np.sin(a2 - a1) / (r1 * np.sin(theta - a1) + r2 * np.sin(a2 - theta))


@lru_cache(maxsize=8192)
def shape_alpha(shape: str, radius: int, angle_bin: int) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased coverage of a shape, as (alpha, 255 - alpha) uint16 arrays of shape
    (2h+1, 2h+1, 1), centred; ``angle_bin`` is the rotation in :data:`ANGLE_STEP_DEG` steps."""
    half = int(math.ceil(1.3 * radius)) + 1
    d = np.arange(-half, half + 1, dtype=np.float32)
    dx, dy = np.meshgrid(d, d)
    dist = np.hypot(dx, dy)
    if shape == "circle":
        edge = radius - dist
    elif shape == "ring":
        edge = np.minimum(1.05 * radius - dist, dist - RING_INNER * radius)
    else:
        theta = np.arctan2(dy, dx) - math.radians(angle_bin * ANGLE_STEP_DEG)
        angles, radii = SHAPE_POLYGONS[shape]
        edge = radius * _polar_radius(theta, angles, radii) - dist
    alpha = np.clip(np.rint((edge + 0.5) * 255), 0, 255).astype(np.uint16)[..., None]
    return alpha, 255 - alpha


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float) -> np.ndarray:
    """Value noise in [0, 1] with features about ``cell`` pixels wide (bilinear, smoothstep)."""
    gh, gw = int(h / cell_y) + 2, int(w / cell_x) + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ys, xs = np.arange(h, dtype=np.float32) / cell_y, np.arange(w, dtype=np.float32) / cell_x
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = ys - y0, xs - x0
    fy, fx = (fy * fy * (3 - 2 * fy))[:, None], (fx * fx * (3 - 2 * fx))[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _lerp(c0: Sequence[float], c1: Sequence[float], t: np.ndarray) -> np.ndarray:
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return c0 + (c1 - c0) * t[..., None]


def _coordinate(h: int, w: int, orientation: str) -> np.ndarray:
    """0..1 ramp across the frame: left-right, top-bottom or along the diagonal."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if orientation == "horizontal":
        return xx / max(w - 1, 1)
    if orientation == "vertical":
        return yy / max(h - 1, 1)
    return (xx / max(w - 1, 1) + yy / max(h - 1, 1)) / 2


def render_background(bg: Background, width: int, height: int) -> np.ndarray:
    """The static background as an (H, W, 3) uint8 image."""
    h, w = height, width
    rng = np.random.default_rng(bg.seed)
    s = h / 120.0  # texture scale relative to the default size
    cols = [BACKGROUND_COLOURS[c] for c in bg.colours]
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    if bg.kind == "solid":
        img = np.broadcast_to(np.asarray(cols[0], np.float32), (h, w, 3)).copy()
    elif bg.kind == "gradient":
        img = _lerp(cols[0], cols[1], _coordinate(h, w, bg.orientation))
    elif bg.kind == "stripes":
        period = rng.uniform(14, 28) * s
        # horizontal stripes run left-right (they vary down the frame), vertical ones top-bottom
        across = {"horizontal": yy + 0 * xx, "vertical": xx + 0 * yy}
        u = across.get(bg.orientation, (xx + yy) / math.sqrt(2))
        img = _lerp(cols[0], cols[1], (np.mod(u, period) < period / 2).astype(np.float32))
    elif bg.kind == "noise":
        coarse, fine = _smooth_noise(rng, h, w, 12 * s, 12 * s), _smooth_noise(rng, h, w, 4 * s, 4 * s)
        n = 0.6 * coarse + 0.4 * fine
        img = np.asarray(cols[0], np.float32) * (0.6 + 0.8 * n)[..., None]
    elif bg.kind == "grass":
        blades = _smooth_noise(rng, h, w, 10 * s, 1.5 * s)
        patches = _smooth_noise(rng, h, w, 30 * s, 30 * s)
        img = _lerp((45, 105, 30), (95, 165, 55), 0.6 * blades + 0.4 * patches)
    elif bg.kind == "sky":
        img = _lerp((95, 150, 230), (195, 222, 250), yy[:, 0].repeat(w).reshape(h, w) / max(h - 1, 1))
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.6) * h
            rx, ry = rng.uniform(18, 40) * s, rng.uniform(6, 12) * s
            d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
            a = np.clip(1.4 - d, 0, 1)[..., None] * 0.85
            img = img * (1 - a) + 250 * a
    elif bg.kind == "floor":
        plank = max(4, int(round(rng.uniform(14, 22) * s)))
        row = (yy // plank).astype(np.int64)
        tint = rng.uniform(0.8, 1.15, size=int(h // plank) + 2).astype(np.float32)
        grain = _smooth_noise(rng, h, w, 2 * s, 25 * s)
        img = _lerp((105, 65, 30), (165, 112, 62), grain) * tint[row][..., None]
        img[(yy[:, 0] % plank) < max(1, int(s))] *= 0.55
    elif bg.kind == "sand":
        n = _smooth_noise(rng, h, w, 16 * s, 16 * s)
        ripples = 0.5 + 0.5 * np.sin(yy / (3.5 * s) + 4 * _smooth_noise(rng, h, w, 20 * s, 40 * s))
        img = _lerp((196, 166, 110), (230, 205, 150), 0.6 * n + 0.4 * ripples)
    elif bg.kind == "water":
        waves = np.sin(yy / (2.5 * s) + 6 * _smooth_noise(rng, h, w, 8 * s, 30 * s))
        img = _lerp((30, 85, 155), (80, 150, 210), 0.5 + 0.5 * waves * 0.8)
    elif bg.kind == "snow":
        n = _smooth_noise(rng, h, w, 20 * s, 20 * s)
        img = _lerp((200, 210, 232), (240, 242, 248), 0.3 + 0.7 * n)
    elif bg.kind == "night":
        img = _lerp((10, 12, 38), (32, 38, 85), yy[:, 0].repeat(w).reshape(h, w) / max(h - 1, 1))
        stars = rng.random((h, w)) < 0.004
        img[stars] = (235, 235, 210)
    elif bg.kind == "brick":
        bh = max(4, int(round(10 * s)))
        bw = max(8, int(round(24 * s)))
        row = (yy // bh).astype(np.int64)
        shift = (row % 2) * (bw // 2)
        col = ((xx + shift) // bw).astype(np.int64)
        tint = rng.uniform(0.8, 1.15, size=(int(h // bh) + 2, int(w // bw) + 3)).astype(np.float32)
        img = np.asarray((150, 60, 45), np.float32) * tint[row, col][..., None]
        mortar = ((yy % bh) < max(1, int(s))) | (((xx + shift) % bw) < max(1, int(s)))
        img[mortar] = (190, 185, 175)
    else:
        raise ValueError(f"unknown background kind {bg.kind!r}")
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_video(scene: Scene, size: tuple[int, int] = DEFAULT_SIZE,
                 fps: int = DEFAULT_FPS) -> np.ndarray:
    """All frames of ``scene`` as a (T, H, W, 3) uint8 RGB array (T = duration * fps)."""
    return render_frames(scene, np.arange(scene.n_frames(fps), dtype=float) / fps, size)


def render_frames(scene: Scene, t: np.ndarray, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    """Frames of ``scene`` at times ``t`` (seconds, shape [T]) as a (T, H, W, 3) uint8 RGB array."""
    width, height = size
    t = np.asarray(t, dtype=float).reshape(-1)
    n = len(t)
    bg = render_background(scene.background, width, height)
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    frames[:] = bg
    for k, obj in enumerate(scene.objects):
        ev = scene.event_of(k)
        x, y, scale, angle, visible = object_track(obj, ev, t, scene.duration)
        px = np.rint(x * width).astype(np.int64)
        py = np.rint(y * height).astype(np.int64)
        radius = np.maximum(2, np.rint(SIZES[obj.size] * height * scale)).astype(np.int64)
        if obj.shape in SPIN_SHAPES:
            bins = np.rint(angle / ANGLE_STEP_DEG).astype(np.int64) % (360 // ANGLE_STEP_DEG)
        else:
            bins = np.zeros(n, dtype=np.int64)
        before = np.asarray(COLOURS[obj.colour], np.uint16)
        after = np.asarray(COLOURS[ev.colour], np.uint16) if ev is not None and ev.colour else before
        for i in range(n):
            if not visible[i]:
                continue
            changed = ev is not None and ev.kind == "changes_colour" and t[i] >= ev.time
            colour = after if changed else before
            alpha, inverse = shape_alpha(obj.shape, int(radius[i]), int(bins[i]))
            _paste(frames[i], alpha, inverse, int(px[i]), int(py[i]), colour)
    return frames


def _paste(frame: np.ndarray, alpha: np.ndarray, inverse: np.ndarray, cx: int, cy: int,
           colour: np.ndarray) -> None:
    """Alpha-blend a centred coverage mask of colour ``colour`` into ``frame`` in place."""
    half = alpha.shape[0] // 2
    height, width = frame.shape[:2]
    x0, y0 = cx - half, cy - half
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + alpha.shape[1], width), min(y0 + alpha.shape[0], height)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    a = alpha[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    inv = inverse[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    region[...] = (region * inv + colour * a + 127) // 255


def encode_video(frames: np.ndarray, path: PathLike, fps: int) -> None:
    """Write RGB frames to an H.264 (libx264, yuv420p, constant frame rate) MP4 file.

    Single-threaded encoding keeps the bytes deterministic and leaves parallelism to the
    process pool; a keyframe every second keeps seeks cheap; no B-frames.
    """
    import av

    n, height, width, _ = frames.shape
    gop = max(1, int(fps))
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(int(fps), 1), options={
            "preset": X264_PRESET, "crf": str(X264_CRF), "g": str(gop), "bf": "0", "threads": "1",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        })
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
