"""MSR-VTT annotations and splits in the CLIP4Clip / DiCoSA layout (spec §6.1), and a data check.

Annotation folder::

    MSRVTT_data.json           {"videos": [...], "sentences": [{"caption", "video_id", "sen_id"}, ...]}
    MSRVTT_train.9k.csv        video_id                      (9,000 training videos)
    MSRVTT_train.7k.csv        video_id                      (7,010, a subset of the 9k list)
    MSRVTT_JSFUSION_test.csv   key,vid_key,video_id,sentence (1k-A test, one caption per video)

Written by :func:`make_reduced_split` (validation is carved from the *training* list, never from
the test set, unlike the official code which selects models on the test set -- spec S6)::

    MSRVTT_train.sub{N}.csv    video_id                      (N training videos, no validation ones)
    MSRVTT_val.{M}.csv         key,vid_key,video_id,sentence (captions of M validation videos)

Every error names the file and the index / row and the reason.  Row numbers count data rows from 1
(the header is not a row); line numbers count physical lines of the file from 1 (header = line 1).
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from glscl_lite.errors import DataError
from glscl_lite.utils import ensure_writable_dir, write_text_atomic

PathLike = Union[str, os.PathLike]

ANNOTATION_JSON = "MSRVTT_data.json"
TRAIN_9K_CSV = "MSRVTT_train.9k.csv"
TRAIN_7K_CSV = "MSRVTT_train.7k.csv"
TEST_CSV = "MSRVTT_JSFUSION_test.csv"
CAPTION_CSV_FIELDS = ("key", "vid_key", "video_id", "sentence")


@dataclass(frozen=True)
class Caption:
    """One (video, caption) pair; ``sen_id`` is the MSRVTT_data.json id (None for CSV captions)."""

    video_id: str
    caption: str
    sen_id: Optional[int] = None


@dataclass
class MSRVTTAnnotations:
    """Captions of MSRVTT_data.json grouped by video, in file order."""

    path: Path
    captions_by_video: dict[str, list[str]]
    sen_ids_by_video: dict[str, list[Optional[int]]] = field(default_factory=dict)
    videos: dict[str, dict] = field(default_factory=dict)  # the json's "videos" entries by id

    def __len__(self) -> int:
        return len(self.captions_by_video)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.captions_by_video

    @property
    def n_captions(self) -> int:
        return sum(len(c) for c in self.captions_by_video.values())

    def captions(self, video_id: str) -> list[Caption]:
        sen_ids = self.sen_ids_by_video.get(video_id) or [None] * len(self.captions_by_video[video_id])
        return [Caption(video_id, c, s) for c, s in zip(self.captions_by_video[video_id], sen_ids)]


# ------------------------------------------------------------------------------------ annotations
def _annotation_path(anno_dir: PathLike) -> Path:
    p = Path(anno_dir)
    return p if p.suffix == ".json" else p / ANNOTATION_JSON


def _scan_annotations(path: Path, duplicates: Optional[list[str]] = None
                      ) -> tuple[Optional[MSRVTTAnnotations], list[str]]:
    """Parse MSRVTT_data.json, collecting every problem instead of stopping at the first.

    ``duplicates``: when a list, a video listed twice in ``videos`` and a repeated ``sen_id`` are
    appended to it (``data check`` reports them: they change training and test counts)."""
    if not path.is_file():
        return None, [f"{path}: file not found"]
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, [f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    except json.JSONDecodeError as exc:
        return None, [f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        return None, [f"{path}: top level must be an object with a 'sentences' list"]
    problems: list[str] = []
    by_video: dict[str, list[str]] = {}
    sen_by_video: dict[str, list[Optional[int]]] = {}
    first_sen: dict[Any, int] = {}
    for i, s in enumerate(data["sentences"]):
        if not isinstance(s, dict):
            problems.append(f"{path}: sentences[{i}]: not an object ({type(s).__name__})")
            continue
        sen_id = s.get("sen_id")
        where = f"{path}: sentences[{i}] (sen_id {sen_id})" if sen_id is not None else f"{path}: sentences[{i}]"
        if duplicates is not None and sen_id is not None and isinstance(sen_id, (int, str)):
            if sen_id in first_sen:
                duplicates.append(f"{path}: sentences[{i}]: repeated sen_id {sen_id} (first at "
                                  f"sentences[{first_sen[sen_id]}])")
            else:
                first_sen[sen_id] = i
        vid = s.get("video_id")
        cap = s.get("caption")
        if not isinstance(vid, str) or not vid.strip():
            problems.append(f"{where}: video_id is missing or not a non-empty string ({vid!r})")
            continue
        if "caption" not in s:
            problems.append(f"{where}: caption is missing (video {vid})")
            continue
        if not isinstance(cap, str):
            problems.append(f"{where}: caption is not a string ({type(cap).__name__}: {cap!r}) (video {vid})")
            continue
        if not cap.strip():
            problems.append(f"{where}: caption is empty (video {vid})")
            continue
        by_video.setdefault(vid, []).append(cap)
        sen_by_video.setdefault(vid, []).append(sen_id if isinstance(sen_id, int) else None)
    videos: dict[str, dict] = {}
    raw_videos = data.get("videos", [])
    if not isinstance(raw_videos, list):
        problems.append(f"{path}: 'videos' must be a list")
    else:
        for i, v in enumerate(raw_videos):
            if not isinstance(v, dict) or not isinstance(v.get("video_id"), str):
                problems.append(f"{path}: videos[{i}]: not an object with a string video_id")
                continue
            if duplicates is not None and v["video_id"] in videos:
                first = next(j for j, w in enumerate(raw_videos)
                             if isinstance(w, dict) and w.get("video_id") == v["video_id"])
                duplicates.append(f"{path}: videos[{i}]: video {v['video_id']} is listed again "
                                  f"(first at videos[{first}])")
            videos[v["video_id"]] = v
    return MSRVTTAnnotations(path, by_video, sen_by_video, videos), problems


def load_annotations(anno_dir: PathLike) -> MSRVTTAnnotations:
    """Read ``anno_dir/MSRVTT_data.json`` (or a path to the json itself), validating every sentence.

    Raises :class:`DataError` naming the file, the sentence index / sen_id and the reason for the
    first problem (and how many more there are).
    """
    path = _annotation_path(anno_dir)
    anno, problems = _scan_annotations(path)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    assert anno is not None
    return anno


# ------------------------------------------------------------------------------------------- CSVs
def _read_csv_rows(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, int, dict]], list[str]]:
    """(header, [(row, line, {col: value})], problems) for a CSV with the ``required`` columns."""
    if not path.is_file():
        return [], [], [f"{path}: file not found"]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [], [], [f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [], [f"{path}: empty file (expected a header with columns {', '.join(required)})"]
    except csv.Error as exc:
        return [], [], [f"{path}: line 1: malformed CSV ({exc})"]
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        return header, [], [f"{path}: header {header} lacks column(s) {', '.join(missing)}"]
    rows, problems = [], []
    row_no = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"{path}: line {reader.line_num}: malformed CSV ({exc})")
            break
        if not values or all(not v.strip() for v in values):
            continue  # blank line
        row_no += 1
        line = reader.line_num
        if len(values) != len(header):
            problems.append(f"{path}: row {row_no} (line {line}): expected {len(header)} fields "
                            f"({', '.join(header)}), got {len(values)}")
            continue
        rows.append((row_no, line, dict(zip(header, values))))
    return header, rows, problems


def _scan_video_list(path: Path) -> tuple[list[str], list[str]]:
    _, rows, problems = _read_csv_rows(path, ("video_id",))
    ids, seen = [], {}
    for row_no, line, rec in rows:
        vid = rec["video_id"].strip()
        if not vid:
            problems.append(f"{path}: row {row_no} (line {line}): empty video_id")
            continue
        if vid in seen:
            problems.append(f"{path}: row {row_no} (line {line}): duplicate video_id {vid} "
                            f"(first at row {seen[vid]})")
            continue
        seen[vid] = row_no
        ids.append(vid)
    return ids, problems


def _scan_caption_csv(path: Path, duplicates: Optional[list[str]] = None) -> tuple[list[Caption], list[str]]:
    """Captions of a JSFUSION-format CSV; ``duplicates`` (a list) collects repeated rows."""
    _, rows, problems = _read_csv_rows(path, ("video_id", "sentence"))
    out = []
    first: dict[tuple[str, str], int] = {}
    for row_no, line, rec in rows:
        if duplicates is not None:
            key = (rec["video_id"].strip(), rec["sentence"])
            if key in first:
                duplicates.append(f"{path}: row {row_no} (line {line}): repeats row {first[key]} "
                                  f"(video {key[0]}, same caption)")
                continue
            first[key] = row_no
        vid = rec["video_id"].strip()
        sentence = rec["sentence"]
        if not vid:
            problems.append(f"{path}: row {row_no} (line {line}): empty video_id")
            continue
        if not sentence.strip():
            problems.append(f"{path}: row {row_no} (line {line}): empty caption (video {vid})")
            continue
        out.append(Caption(vid, sentence, None))
    return out, problems


def _raise_first(problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)


def read_video_list(csv_path: PathLike) -> list[str]:
    """Video ids of a split CSV with a ``video_id`` column (e.g. MSRVTT_train.9k.csv), in file order.

    Missing file or column, wrong field count, empty or duplicate id -> :class:`DataError` naming
    the file and row.
    """
    ids, problems = _scan_video_list(Path(csv_path))
    _raise_first(problems)
    return ids


def read_caption_csv(csv_path: PathLike) -> list[Caption]:
    """Captions of a JSFUSION-format CSV (``key,vid_key,video_id,sentence``: the 1k-A test set and
    the validation files written by :func:`make_reduced_split`), in file order."""
    caps, problems = _scan_caption_csv(Path(csv_path))
    _raise_first(problems)
    return caps


def write_video_list(path: PathLike, video_ids: Iterable[str]) -> Path:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video_id"])
    for vid in video_ids:
        w.writerow([vid])
    return write_text_atomic(path, buf.getvalue())


def _vid_key(video_id: str) -> str:
    return "msr" + video_id[len("video"):] if video_id.startswith("video") else video_id


def write_caption_csv(path: PathLike, captions: Iterable[Caption]) -> Path:
    """Write captions in the JSFUSION format (``key=ret{i}``, ``vid_key=msr{n}`` as in the test CSV)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CAPTION_CSV_FIELDS)
    for i, c in enumerate(captions):
        w.writerow([f"ret{i}", _vid_key(c.video_id), c.video_id, c.caption])
    return write_text_atomic(path, buf.getvalue())


# ----------------------------------------------------------------------------------------- splits
def training_pairs(anno: MSRVTTAnnotations, video_ids: Union[Sequence[str], PathLike],
                   csv_name: Optional[str] = None) -> list[Caption]:
    """Every caption of every listed video (all 20 per MSR-VTT video: 180,000 pairs for the 9k list).

    Order: videos in list order, captions in MSRVTT_data.json order.  ``video_ids`` may be a list or
    the path of a split CSV.  A listed id without captions -> :class:`DataError` naming id and CSV.
    """
    if isinstance(video_ids, (str, os.PathLike)):
        csv_name = csv_name or str(video_ids)
        video_ids = read_video_list(video_ids)
    src = csv_name or "the video list"
    pairs: list[Caption] = []
    missing = [v for v in video_ids if v not in anno.captions_by_video]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{src}: video_id {missing[0]}{more} has no captions in {anno.path}")
    for vid in video_ids:
        pairs.extend(anno.captions(vid))
    return pairs


def carve_validation(video_ids: Sequence[str], n_val: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split ``video_ids`` into ``(train_ids, val_ids)``: ``n_val`` ids drawn with ``seed``.

    Deterministic for a seed, disjoint, both in the original list order.
    """
    video_ids = list(video_ids)
    if len(set(video_ids)) != len(video_ids):
        raise DataError("carve_validation: the video list contains duplicate ids")
    if not 0 <= n_val <= len(video_ids):
        raise DataError(f"cannot carve {n_val} validation videos out of {len(video_ids)} videos")
    pick = set(random.Random(f"glscl-val:{seed}").sample(range(len(video_ids)), n_val))
    val = [v for i, v in enumerate(video_ids) if i in pick]
    train = [v for i, v in enumerate(video_ids) if i not in pick]
    return train, val


def validation_captions(anno: MSRVTTAnnotations, val_ids: Sequence[str], captions_per_video: int = 1,
                        seed: int = 0) -> list[Caption]:
    """``captions_per_video`` captions of each validation video (drawn with ``seed``, independently
    per video, kept in json order); all of them if a video has fewer."""
    if captions_per_video < 1:
        raise ValueError(f"captions_per_video must be >= 1, got {captions_per_video}")
    out: list[Caption] = []
    for vid in val_ids:
        if vid not in anno.captions_by_video:
            raise DataError(f"validation video_id {vid} has no captions in {anno.path}")
        caps = anno.captions(vid)
        k = min(captions_per_video, len(caps))
        pick = sorted(random.Random(f"glscl-valcap:{seed}:{vid}").sample(range(len(caps)), k))
        out.extend(caps[i] for i in pick)
    return out


def make_reduced_split(anno_dir: PathLike, out_dir: PathLike, train_videos: Optional[int],
                       val_videos: int, val_captions: int = 1, seed: int = 0,
                       train_csv: str = TRAIN_9K_CSV) -> dict[str, Path]:
    """Write a reduced training list and a validation caption file carved from the training list.

    * ``MSRVTT_val.{M}.csv`` (JSFUSION format): ``val_captions`` caption(s) of ``M = val_videos``
      videos drawn from ``train_csv`` with ``seed``;
    * ``MSRVTT_train.sub{N}.csv``: ``N = train_videos`` of the remaining training videos (drawn
      with ``seed``, file order kept); ``None`` -> all the remaining ones.

    Neither ever overlaps the test CSV (checked).  Returns ``{"train": path, "val": path}``.
    """
    anno_dir, out_dir = Path(anno_dir), Path(out_dir)
    anno = load_annotations(anno_dir)
    train_path = anno_dir / train_csv
    ids = read_video_list(train_path)
    test_path = anno_dir / TEST_CSV
    test_ids = {c.video_id for c in read_caption_csv(test_path)} if test_path.is_file() else set()
    clash = [v for v in ids if v in test_ids]
    if clash:
        raise DataError(f"{train_path}: {len(clash)} training video(s) are also in the test set "
                        f"{test_path} (e.g. {clash[0]})")
    absent = [v for v in ids if v not in anno.captions_by_video]
    if absent:
        raise DataError(f"{train_path}: video_id {absent[0]}"
                        f"{f' (and {len(absent) - 1} more)' if len(absent) > 1 else ''} "
                        f"has no captions in {anno.path}")
    rest, val = carve_validation(ids, val_videos, seed)
    if train_videos is None:
        train = rest
    else:
        if not 0 < train_videos <= len(rest):
            raise DataError(f"--train-videos {train_videos}: must be between 1 and {len(rest)} "
                            f"({len(ids)} in {train_csv} minus {len(val)} validation videos)")
        pick = set(random.Random(f"glscl-train:{seed}").sample(range(len(rest)), train_videos))
        train = [v for i, v in enumerate(rest) if i in pick]
    val_caps = validation_captions(anno, val, val_captions, seed)
    # invariants, cheap to check and fatal if broken
    if set(train) & set(val):
        raise AssertionError("train and validation videos overlap")
    if (set(train) | set(val)) & test_ids:
        raise AssertionError("train/validation videos overlap the test set")
    ensure_writable_dir(out_dir)
    train_out = out_dir / f"MSRVTT_train.sub{len(train)}.csv"
    val_out = out_dir / f"MSRVTT_val.{len(val)}.csv"
    write_video_list(train_out, train)
    write_caption_csv(val_out, val_caps)
    return {"train": train_out, "val": val_out}


def _split_csvs(anno_dir: Path) -> tuple[list[Path], list[Path]]:
    """(video-list CSVs, caption CSVs) present in ``anno_dir``; 9k first, then sorted names."""
    lists = sorted(anno_dir.glob("MSRVTT_train*.csv"), key=lambda p: (p.name != TRAIN_9K_CSV, p.name))
    caps = sorted(anno_dir.glob("MSRVTT_val*.csv"))
    if (anno_dir / TEST_CSV).is_file():
        caps.append(anno_dir / TEST_CSV)
    return lists, caps


def all_video_ids(anno_dir: PathLike) -> list[str]:
    """Union of the ids in the training lists, validation and test CSVs of ``anno_dir``
    (first-appearance order: 9k list first).  Used by ``cache frames``."""
    anno_dir = Path(anno_dir)
    lists, caps = _split_csvs(anno_dir)
    if not lists and not caps:
        raise DataError(f"{anno_dir}: no MSRVTT_train*.csv, MSRVTT_val*.csv or {TEST_CSV} found")
    seen: dict[str, None] = {}
    for p in lists:
        for v in read_video_list(p):
            seen.setdefault(v, None)
    for p in caps:
        for c in read_caption_csv(p):
            seen.setdefault(c.video_id, None)
    return list(seen)


# ------------------------------------------------------------------------------------------ check
def _probe_one(args: tuple[str, Path, int]) -> tuple[Optional[str], Optional[str]]:
    """``(problem, note)`` of one video: a note for a variable frame rate (sampled at the average)."""
    from glscl_lite.data.video import probe_video

    vid, path, max_frames = args
    try:
        info = probe_video(path, max_frames=max_frames)
    except DataError as exc:
        return f"{vid}: {exc}", None
    except Exception as exc:  # never let one odd file stop the whole check
        return f"{vid}: {path}: unexpected error while decoding ({type(exc).__name__}: {exc})", None
    if info.get("variable_fps"):
        return None, (f"{vid}: {path}: variable frame rate (frame intervals {info['interval_min']:.3f}-"
                      f"{info['interval_max']:.3f} s); frames are sampled at the average {info['fps']:.2f} fps, "
                      "as the official loader does")
    return None, None


def check_dataset(anno_dir: PathLike, video_dir: PathLike, max_frames: int = 12, decode: bool = True,
                  progress: bool = True, workers: Optional[int] = None,
                  notes: Optional[list[str]] = None) -> list[str]:
    """Every problem of an MSR-VTT folder pair, one line each: ``"<file or id>: <reason>"``.

    Checks MSRVTT_data.json (parses; every sentence has a video_id and a non-empty string caption),
    every split CSV present (``MSRVTT_train.9k.csv`` and ``MSRVTT_JSFUSION_test.csv`` are required),
    that training / validation ids have captions in the json, and that every split video exists
    and (``decode=True``) opens and decodes (first and last sampled frame, in a thread pool).
    A video shorter than ``max_frames`` seconds is fine (padded and masked).  Duplicates are
    problems too: a video listed twice or a repeated ``sen_id`` in the json, a repeated row of a
    caption CSV.  ``notes`` (a list) receives remarks that are not problems: videos with a variable
    frame rate (sampled at their average fps, as the official loader does).  Empty list = OK.
    """
    anno_dir, video_dir = Path(anno_dir), Path(video_dir)
    problems: list[str] = []
    if not anno_dir.is_dir():
        return [f"{anno_dir}: annotation folder not found"]
    anno, p = _scan_annotations(anno_dir / ANNOTATION_JSON, duplicates=problems)
    problems += p
    if anno is not None:
        for vid, meta in anno.videos.items():
            if vid not in anno.captions_by_video:
                problems.append(f"{vid}: no captions in {anno.path}")
    lists, caps = _split_csvs(anno_dir)
    for required in (TRAIN_9K_CSV, TEST_CSV):
        if not (anno_dir / required).is_file():
            problems.append(f"{anno_dir / required}: file not found")
    needed: dict[str, None] = {}
    for path in lists:
        ids, p = _scan_video_list(path)
        problems += p
        absent = [v for v in ids if anno is not None and v not in anno.captions_by_video]
        for v in absent:
            problems.append(f"{path}: video_id {v} has no captions in {anno.path}")
        for v in ids:
            needed.setdefault(v, None)
    for path in caps:
        cs, p = _scan_caption_csv(path, duplicates=problems)
        problems += p
        for c in cs:
            needed.setdefault(c.video_id, None)
    if not video_dir.is_dir():
        problems.append(f"{video_dir}: video folder not found")
        return problems
    present = []
    for vid in needed:
        path = video_dir / f"{vid}.mp4"
        if not path.is_file():
            problems.append(f"{vid}: video file not found ({path})")
        else:
            present.append((vid, path, max_frames))
    if decode and present:
        from tqdm.auto import tqdm

        n_workers = workers or min(8, 2 * (os.cpu_count() or 1), len(present))
        with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
            results = pool.map(_probe_one, present)
            for problem, note in tqdm(results, total=len(present), desc="decode check", disable=not progress,
                                      unit="video"):
                if problem:
                    problems.append(problem)
                if note and notes is not None:
                    notes.append(note)
    return problems
