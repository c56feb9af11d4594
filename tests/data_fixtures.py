"""Hand-written tiny MSR-VTT corpora for the data tests (independent of glscl_lite.data.synthetic).

Videos are H.264 mp4s written with PyAV.  Frame ``i`` of a "ramp" video is a flat colour of value
``frame_value(i)`` so that tests can tell which frame was decoded.
"""
from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

SHARED_MSRVTT = Path(__file__).resolve().parents[2] / "shared" / "data" / "msrvtt"


def frame_value(i: int) -> int:
    """Grey level of frame ``i`` in a ramp video (changes by 7 per frame, wraps at 256)."""
    return (10 + 7 * i) % 256


def write_video(path, n_frames: int, fps: int = 10, size: tuple[int, int] = (64, 48),
                pattern: str = "ramp", seed: int = 0, faststart: bool = False) -> Path:
    """Write an H.264 mp4 of ``n_frames`` frames, ``size = (width, height)``.

    ``pattern``: ``"ramp"`` (flat frame i = frame_value(i)), ``"noise"`` (random texture),
    ``"constant"`` (every frame identical, textured).  ``n_frames = 0`` writes a container whose
    video stream has no frames.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(seed)
    const = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "12", "preset": "ultrafast"}
        if n_frames == 0:
            c.start_encoding()
        for i in range(n_frames):
            if pattern == "ramp":
                arr = np.full((h, w, 3), frame_value(i), dtype=np.uint8)
            elif pattern == "noise":
                arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            elif pattern == "constant":
                arr = const
            else:
                raise ValueError(pattern)
            for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def truncate_file(path, fraction: float = 0.5) -> Path:
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def corrupt_file(path) -> Path:
    """Replace a file by bytes that are not a video."""
    path = Path(path)
    path.write_bytes(b"this is not an mp4 file\n" * 40)
    return path


@dataclass
class Corpus:
    root: Path
    anno_dir: Path
    video_dir: Path
    train_ids: list[str]
    test_ids: list[str]
    captions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def all_ids(self) -> list[str]:
        return self.train_ids + self.test_ids


def caption_text(video_id: str, j: int) -> str:
    return f"caption {j} of {video_id}: a person does thing number {j}"


def write_annotation_json(path, captions: dict[str, list[str]], extra_sentences: Sequence = ()) -> Path:
    """MSRVTT_data.json with the real field names (``videos`` and ``sentences``)."""
    videos = []
    sentences = []
    sen_id = 0
    for k, (vid, caps) in enumerate(captions.items()):
        videos.append({"category": k % 20, "url": f"https://www.youtube.com/watch?v=fake{k}",
                       "video_id": vid, "start time": 0.0, "end time": 10.0,
                       "split": "train", "id": k})
        for c in caps:
            sentences.append({"caption": c, "video_id": vid, "sen_id": sen_id})
            sen_id += 1
    sentences.extend(extra_sentences)
    data = {"info": {"year": 2016}, "videos": videos, "sentences": sentences}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_video_list_csv(path, ids: Sequence[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["video_id"])
        for v in ids:
            w.writerow([v])
    return path


def write_test_csv(path, rows: Sequence[tuple[str, str]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        for i, (vid, sent) in enumerate(rows):
            w.writerow([f"ret{i}", vid.replace("video", "msr"), vid, sent])
    return path


def make_corpus(root, n_train: int = 6, n_test: int = 2, captions_per_video: int = 3,
                frames: Optional[dict[str, int]] = None, fps: int = 10, size=(64, 48),
                videos: bool = True, pattern: str = "ramp", video_subdir: str = "videos") -> Corpus:
    """A complete tiny corpus: ``root/anno`` (json + 9k/7k/test CSVs) and ``root/videos/*.mp4``.

    Training ids are ``video0 .. video{n_train-1}``, test ids follow.  Each video lasts
    ``frames.get(id, 25)`` frames at ``fps`` (default 2.5 s -> 3 sampled frames at 1 fps).
    """
    root = Path(root)
    anno = root / "anno"
    vdir = root / video_subdir
    train = [f"video{i}" for i in range(n_train)]
    test = [f"video{i}" for i in range(n_train, n_train + n_test)]
    caps = {v: [caption_text(v, j) for j in range(captions_per_video)] for v in train + test}
    write_annotation_json(anno / "MSRVTT_data.json", caps)
    write_video_list_csv(anno / "MSRVTT_train.9k.csv", train)
    write_video_list_csv(anno / "MSRVTT_train.7k.csv", train[: max(1, (2 * n_train) // 3)])
    write_test_csv(anno / "MSRVTT_JSFUSION_test.csv", [(v, caps[v][0]) for v in test])
    if videos:
        frames = frames or {}
        for k, v in enumerate(train + test):
            write_video(vdir / f"{v}.mp4", frames.get(v, 25), fps=fps, size=size, pattern=pattern, seed=k)
    return Corpus(root, anno, vdir, train, test, caps)


def zip_dir(src: Path, zip_path: Path, arc_prefix: str = "") -> Path:
    """Zip the tree under ``src`` with member names ``arc_prefix + relative path``."""
    zip_path = Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for p in sorted(Path(src).rglob("*")):
            if p.is_file():
                z.write(p, arc_prefix + p.relative_to(src).as_posix())
    return zip_path
