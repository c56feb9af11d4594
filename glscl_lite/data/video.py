"""Frame sampling, decoding and CLIP preprocessing of one video (spec §6.2).

Pipeline of the official decord loader, split in pieces that can be tested on their own::

    read_frames          decord: one frame per second (``framerate``), at most ``max_frames``
                         picked uniformly with ``np.linspace``          -> uint8 [n, H, W, 3]
    VideoRandAugment     training only: timm RandAugment, the same ops for every frame of a clip
    preprocess_frames    resize short side to ``image_size`` (bicubic, PIL) + center crop
                                                                       -> uint8 [n, S, S, 3]
    load_clip            the three above, zero-padded to ``max_frames`` -> uint8 [T, S, S, 3]
                         plus ``mask`` int64 [T] (1 = real frame)
    normalize_frames     /255, CLIP mean/std, channels first; padded frames become exact zeros
                         (spec S17: padding is an all-zero tensor *after* normalisation)

Normalisation is kept separate so that data loaders can ship uint8 frames (4x less memory and
bandwidth) and the model normalises on its device.  ``torch`` is imported lazily so that decode
worker processes start quickly.
"""
from __future__ import annotations

import math
import os
import random
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image

from glscl_lite.errors import DataError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

PathLike = Union[str, os.PathLike]

_DECORD_READY = False


def _decord():
    """Import decord once and silence FFmpeg's own log lines (we report errors ourselves)."""
    global _DECORD_READY
    import decord

    if not _DECORD_READY:
        try:
            decord.logging.set_level(decord.logging.QUIET)
        except Exception:  # pragma: no cover - older/newer decord without the logging module
            pass
        _DECORD_READY = True
    return decord


# ------------------------------------------------------------------------------------- sampling
def sample_frame_indices(n_frames_total: int, fps: float, max_frames: int = 12,
                         framerate: int = 1) -> np.ndarray:
    """Indices of the frames the official loader reads (spec §6.2).

    Candidates are ``0, stride, 2*stride, ...`` up to the last frame with
    ``stride = max(1, round(fps / framerate))`` (Python's ``round``, as in the official code);
    if there are more than ``max_frames`` candidates, ``np.linspace(0, n-1, max_frames)`` cast to
    int picks among them, otherwise all candidates are kept.  Returns int64 indices, ascending.
    """
    n_frames_total = int(n_frames_total)
    if n_frames_total < 0:
        raise ValueError(f"n_frames_total must be >= 0, got {n_frames_total}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if framerate <= 0:
        raise ValueError(f"framerate must be > 0, got {framerate}")
    if not (isinstance(fps, (int, float, np.floating, np.integer)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite positive number, got {fps!r}")
    if n_frames_total == 0:
        return np.zeros(0, dtype=np.int64)
    stride = max(1, int(round(float(fps) / framerate)))
    candidates = np.arange(0, n_frames_total, stride, dtype=np.int64)
    if len(candidates) > max_frames:
        pick = np.linspace(0, len(candidates) - 1, num=max_frames, dtype=int)
        candidates = candidates[pick]
    return candidates


# -------------------------------------------------------------------------------------- decoding
_DECORD_PREFIX = re.compile(r"^\[[\d:]+\]\s+\S+:\d+:\s*")


def _short_error(exc: BaseException) -> str:
    """First meaningful line of a decord error, without its timestamp/source-file prefix."""
    text = str(exc).strip()
    for line in text.splitlines():
        line = _DECORD_PREFIX.sub("", line.strip())
        if line and not line.startswith("Stack trace"):
            return line[:200]
    return type(exc).__name__


def _diagnose_unopenable(path: Path, exc: BaseException) -> str:
    """Why decord could not open ``path``: tell a zero-length video from a corrupt one."""
    try:
        import av

        with av.open(str(path)) as container:
            streams = container.streams.video
            if len(streams) == 0:
                return "zero-length video (0 frames: no video stream)"
            n = 0
            for _ in container.decode(video=0):
                n += 1
                break
            if n == 0:
                return "zero-length video (0 frames)"
    except Exception:
        pass
    return f"corrupt or truncated video (cannot open: {_short_error(exc)})"


# decord's own C++ logger (not FFmpeg's, which _decord() silences) prints
# "[hh:mm:ss] .../video_reader.cc:NN: ERROR opening: FILE, REASON" straight onto the process's stderr
# before it raises.  The DataError raised below names the file and the reason, so that line is only
# noise (issue 13: it looked like a failure in notebook 01's deliberately broken corpus).  While a
# video is being opened, file descriptor 2 goes to a temporary file; afterwards everything in it is
# written back except decord's "ERROR opening" lines.  A use count makes this safe for the
# thread pool of ``data check``: the first opener redirects, the last one restores and replays.
_DECORD_OPEN_ERROR = re.compile(rb"\[[\d:]+\] [^\n]*video_reader\.cc:\d+: ERROR opening[^\n]*\n?")
_STDERR_LOCK = threading.Lock()
_stderr_users = 0
_stderr_saved: Optional[tuple] = None  # (dup of the real fd 2, temporary file)


@contextmanager
def _decord_open_errors_dropped() -> Iterator[None]:
    global _stderr_users, _stderr_saved
    with _STDERR_LOCK:
        if _stderr_users == 0:
            try:
                if sys.stderr is not None:
                    sys.stderr.flush()
                tmp = tempfile.TemporaryFile()
                saved = os.dup(2)
                os.dup2(tmp.fileno(), 2)
                _stderr_saved = (saved, tmp)
            except (OSError, ValueError):  # no usable fd 2: nothing to filter
                _stderr_saved = None
        _stderr_users += 1
    try:
        yield
    finally:
        with _STDERR_LOCK:
            _stderr_users -= 1
            if _stderr_users == 0 and _stderr_saved is not None:
                saved, tmp = _stderr_saved
                _stderr_saved = None
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                rest = _DECORD_OPEN_ERROR.sub(b"", tmp.read())
                tmp.close()
                if rest:
                    os.write(2, rest)


def _open_reader(path: PathLike):
    """Open ``path`` with decord; DataError naming the file and the reason on failure."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    decord = _decord()
    try:
        with _decord_open_errors_dropped():
            vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # DECORDError and RuntimeError
        raise DataError(f"{path}: {_diagnose_unopenable(path, exc)}") from None
    n = len(vr)
    if n <= 0:
        raise DataError(f"{path}: zero-length video (0 frames)")
    fps = vr.get_avg_fps()
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise DataError(f"{path}: unreadable fps ({fps!r})")
    return vr, n, float(fps)


def read_frames(path: PathLike, max_frames: int = 12, framerate: int = 1) -> tuple[np.ndarray, int]:
    """Decode the sampled frames of one video: ``(uint8 [n, H, W, 3] RGB, n)``, ``n <= max_frames``.

    Errors (missing file, undecodable or truncated file, zero frames, unreadable fps) raise
    :class:`DataError` naming the file and the reason.
    """
    vr, n_total, fps = _open_reader(path)
    idx = sample_frame_indices(n_total, fps, max_frames=max_frames, framerate=framerate)
    try:
        frames = vr.get_batch(idx.tolist()).asnumpy()
    except Exception as exc:  # decord cannot copy frames narrower than its row alignment (1x1): PyAV can
        frames = _decode_with_av(path, idx, n_total, exc)
    finally:
        del vr
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] != len(idx):
        raise DataError(f"{Path(path)}: unexpected decoded shape {tuple(frames.shape)}")
    return np.ascontiguousarray(frames, dtype=np.uint8), int(frames.shape[0])


def probe_video(path: PathLike, max_frames: int = 12, framerate: int = 1) -> dict:
    """Cheap decodability check: open, then decode the first and the last sampled frame.

    Returns ``{"frames": total frames, "fps": fps, "sampled": number of sampled frames}``;
    raises :class:`DataError` like :func:`read_frames`.  Reading the last sampled frame catches
    files whose index claims more frames than the data holds (truncated downloads).  A variable
    frame rate (frame intervals differing by more than 1.5x) adds ``"variable_fps": True`` and
    ``"interval_min"`` / ``"interval_max"`` (seconds); sampling still uses the average fps, as the
    official loader does.  Frames decord cannot copy out (a valid 1x1 video) are decoded with PyAV.
    """
    vr, n_total, fps = _open_reader(path)
    idx = sample_frame_indices(n_total, fps, max_frames=max_frames, framerate=framerate)
    probe = sorted({int(idx[0]), int(idx[-1])})
    try:
        frames = vr.get_batch(probe).asnumpy()
        if frames.shape[0] != len(probe):
            raise RuntimeError(f"got {frames.shape[0]} frames for {len(probe)} indices")
    except Exception as exc:
        _decode_with_av(path, np.asarray(probe), n_total, exc)
    try:
        intervals = np.diff(np.asarray(vr.get_frame_timestamp(list(range(n_total))))[:, 0]) if n_total > 2 else None
    except Exception:  # no timestamps: nothing to say about the frame rate
        intervals = None
    finally:
        del vr
    info = {"frames": n_total, "fps": fps, "sampled": int(len(idx))}  # + variable_fps etc. when so
    if intervals is not None and len(intervals) and intervals.min() > 0 and intervals.max() > 1.5 * intervals.min():
        info.update(variable_fps=True, interval_min=float(intervals.min()), interval_max=float(intervals.max()))
    return info


def _decode_with_av(path: PathLike, idx: np.ndarray, n_total: int, decord_error: BaseException) -> np.ndarray:
    """Frames ``idx`` (uint8 [n, H, W, 3] RGB) decoded with PyAV, for files decord opens but cannot
    copy out (e.g. a valid 1x1 video); the "corrupt or truncated" DataError when PyAV fails too."""
    wanted = {int(i): k for k, i in enumerate(np.asarray(idx).tolist())}
    out: list = [None] * len(wanted)
    try:
        import av

        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    out[wanted[i]] = frame.to_ndarray(format="rgb24")
                if i >= max(wanted):
                    break
    except Exception:
        pass
    if any(f is None for f in out):
        raise DataError(f"{Path(path)}: corrupt or truncated video (cannot decode frames "
                        f"{sorted(wanted)} of {n_total}: {_short_error(decord_error)})") from None
    return np.stack(out).astype(np.uint8, copy=False)


# ---------------------------------------------------------------------------------- preprocessing
def _as_pil(frame) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame.convert("RGB") if frame.mode != "RGB" else frame
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] frame, got {arr.dtype} {tuple(arr.shape)}")
    return Image.fromarray(np.ascontiguousarray(arr))


def resize_center_crop(frame, image_size: int) -> np.ndarray:
    """One frame (PIL image or uint8 [H, W, 3]) -> uint8 [S, S, 3].

    Same arithmetic as torchvision's ``Resize(S, bicubic)`` + ``CenterCrop(S)`` on PIL images (the
    CLIP / open_clip validation transform): the short side becomes ``S`` and the long side
    ``int(S * long / short)``; the crop offset is ``round((size - S) / 2)``.
    """
    img = _as_pil(frame)
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short != image_size:
        new_short, new_long = image_size, int(image_size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        img = img.resize((new_w, new_h), Image.BICUBIC)
    w, h = img.size
    if w < image_size or h < image_size:  # cannot happen after the resize above
        raise ValueError(f"frame {w}x{h} smaller than crop {image_size}")
    top = int(round((h - image_size) / 2.0))
    left = int(round((w - image_size) / 2.0))
    img = img.crop((left, top, left + image_size, top + image_size))
    return np.asarray(img, dtype=np.uint8)


def preprocess_frames(frames: Union[np.ndarray, Sequence], image_size: int) -> np.ndarray:
    """Resize + center-crop every frame: uint8 [n, H, W, 3] (or PIL images) -> uint8 [n, S, S, 3]."""
    out = np.zeros((len(frames), image_size, image_size, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = resize_center_crop(frame, image_size)
    return out


def images_to_input(images):
    """uint8 images ``[B,S,S,3]`` (channels last, as rendered or decoded) -> CLIP-normalised float
    ``[B,3,S,S]``."""
    return normalize_frames(images.permute(0, 3, 1, 2))


def normalize_frames(frames, mask=None, dtype=None):
    """uint8 frames ``[..., H, W, 3]`` or ``[..., 3, H, W]`` -> float ``[..., 3, H, W]`` (CLIP mean/std).

    ``frames`` may be a numpy array or a torch tensor on any device (the result stays there).
    With ``mask`` (shape = the leading dims, e.g. ``[B, T]``), frames where ``mask == 0`` are exact
    zeros after normalisation -- the official code's padding (spec S17).  When both the last and
    the third-last dims are 3, channels-last is assumed.
    """
    import torch

    if isinstance(frames, np.ndarray):
        if not frames.flags.writeable:
            frames = np.array(frames)
        x = torch.from_numpy(frames)
    else:
        x = torch.as_tensor(frames)
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize_frames expects uint8 frames, got {x.dtype}")
    if x.dim() < 3:
        raise ValueError(f"expected [..., H, W, 3] or [..., 3, H, W], got shape {tuple(x.shape)}")
    if x.shape[-1] == 3:
        x = x.movedim(-1, -3)
    elif x.shape[-3] != 3:
        raise ValueError(f"expected [..., H, W, 3] or [..., 3, H, W], got shape {tuple(x.shape)}")
    dtype = dtype or torch.float32
    mean = torch.tensor(CLIP_MEAN, dtype=dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=dtype, device=x.device).view(3, 1, 1)
    out = (x.to(dtype) / 255.0 - mean) / std
    if mask is not None:
        m = torch.as_tensor(mask, device=x.device)
        if tuple(m.shape) != tuple(out.shape[:-3]):
            raise ValueError(f"mask shape {tuple(m.shape)} does not match frames {tuple(out.shape[:-3])}")
        keep = (m != 0).view(*m.shape, 1, 1, 1)
        out = torch.where(keep, out, torch.zeros((), dtype=dtype, device=x.device))
    return out.contiguous()


# ----------------------------------------------------------------------------------- augmentation
class VideoRandAugment:
    """timm RandAugment applied identically to every frame of a clip (spec §6.2, training only).

    The ops come from :func:`timm.data.auto_augment.rand_augment_transform` (default
    ``rand-m7-n4-mstd0.5-inc1``: 4 of the 15 "increasing" ops with replacement, each with
    probability 0.5, magnitude ~ N(7, 0.5) clipped to [0, 10], bicubic, fill ``fill``).  timm draws
    the op choice from ``numpy.random`` and probabilities/magnitudes/signs from python ``random``;
    the state of both is snapshotted once per clip and restored before each frame, so every frame
    gets the same ops, magnitudes and signs.  Afterwards the generators are left where one frame
    left them, so the next clip draws new ops.

    ``seed`` (per call) makes one clip's draw reproducible without touching the global generators.
    Frames may be PIL images or a uint8 array ``[n, H, W, 3]`` (then an array is returned); the
    official code augments original-resolution frames, but cached (already resized) frames work
    too.
    """

    def __init__(self, config_str: str = "rand-m7-n4-mstd0.5-inc1",
                 fill: tuple[int, int, int] = (128, 128, 128), translate_const: int = 100):
        from timm.data.auto_augment import rand_augment_transform

        self.config_str = config_str
        self.fill = tuple(int(v) for v in fill)
        hparams = {"translate_const": int(translate_const), "img_mean": self.fill,
                   "interpolation": Image.BICUBIC}
        self.transform = rand_augment_transform(config_str, hparams)

    def __repr__(self) -> str:
        return f"VideoRandAugment({self.config_str!r}, fill={self.fill})"

    def _apply(self, images: list) -> list:
        py_state = random.getstate()
        np_state = np.random.get_state()
        out = []
        for img in images:
            random.setstate(py_state)
            np.random.set_state(np_state)
            out.append(self.transform(img))
        return out

    def __call__(self, frames, seed: Optional[int] = None):
        as_array = isinstance(frames, np.ndarray)
        images = [_as_pil(f) for f in frames]
        if not images:
            return frames
        if seed is None:
            out = self._apply(images)
        else:
            py_saved, np_saved = random.getstate(), np.random.get_state()
            try:
                random.seed(seed)
                np.random.seed(seed % (2 ** 32))
                out = self._apply(images)
            finally:
                random.setstate(py_saved)
                np.random.set_state(np_saved)
        if as_array:
            return np.stack([np.asarray(img, dtype=np.uint8) for img in out])
        return out


# ------------------------------------------------------------------------------------------- clip
def load_clip(path: PathLike, max_frames: int, image_size: int, framerate: int = 1,
              augment: Optional[VideoRandAugment] = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode, (augment), resize+crop and zero-pad one clip.

    Returns ``(frames uint8 [max_frames, S, S, 3], mask int64 [max_frames])``; ``mask[:n] = 1`` for
    the ``n`` real frames, padded frames are zero here and become exact zeros in
    :func:`normalize_frames` (given the mask).  A video shorter than ``max_frames`` seconds is not
    an error.
    """
    raw, n = read_frames(path, max_frames=max_frames, framerate=framerate)
    images = [Image.fromarray(f) for f in raw]
    if augment is not None:
        images = augment(images)
    frames = np.zeros((max_frames, image_size, image_size, 3), dtype=np.uint8)
    mask = np.zeros(max_frames, dtype=np.int64)
    for i, img in enumerate(images):
        frames[i] = resize_center_crop(img, image_size)
    mask[:n] = 1
    return frames, mask
