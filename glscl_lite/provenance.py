"""What a derived artefact was built from, and the one check that refuses a mismatch.

Every derived artefact (frame cache, feature cache, search index, run folder / ablation cell,
stand-in CLIP weights) stores ``"provenance": fingerprint(...)`` in its index file, and every
reader calls :func:`check` with the fingerprint of what it would use now.  A fingerprint is a
dict of named *parts*; each part is one of

* a file map from :func:`fingerprint_files`: ``{"files": {name: [size, mtime_ns]}}`` -- ``stat``
  only, so 10k videos cost milliseconds (videos are never hashed);
* a checksum from :func:`file_sha256`: ``{"sha256": HEX, "path": PATH}`` (checkpoints, weights);
* a plain JSON value: settings, another artefact's ``digest``, a :func:`folder_summary`.

``fingerprint`` adds ``"digest"`` (sha256 of the parts), which a downstream artefact may record
to depend on an upstream one.  Example (the API ``glscl_lite.pretrain`` uses)::

    from glscl_lite import provenance
    fp = provenance.fingerprint(annotations=provenance.fingerprint_files([anno_json, csv]),
                                checkpoint=provenance.file_sha256(ckpt),
                                settings={"steps": 400, "seed": 0})
    write_json_atomic(out / "weights.json", {"provenance": fp})
    ...
    provenance.check(json.loads((out / "weights.json").read_text())["provenance"], fp_now,
                     artefact=out / "weights.pt", rebuild_cmd="glscl-lite pretrain --out OUT")

A part that is absent on the recorded side (an artefact written before that part was recorded)
is not compared; a file that no longer exists is not compared either (a frame cache stays usable
after its videos were deleted).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

from glscl_lite.errors import UserError

PathLike = Union[str, os.PathLike]
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


class ProvenanceError(UserError, ValueError):
    """A derived artefact was built from other inputs than the ones in use now."""


# ------------------------------------------------------------------------------------------ parts
def fingerprint_files(paths: Iterable[PathLike], names: Optional[Iterable[str]] = None) -> dict:
    """``{"files": {name: [size, mtime_ns] or None}}`` for each path (None: file absent).

    ``names`` default to the file names (so a copied folder with preserved times still matches).
    """
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [p.name for p in paths]
    out: dict[str, Optional[list[int]]] = {}
    for name, p in zip(names, paths):
        try:
            st = p.stat()
            out[str(name)] = [int(st.st_size), int(st.st_mtime_ns)]
        except OSError:
            out[str(name)] = None
    return {"files": out}


def fingerprint_videos(video_dir: PathLike, video_ids: Iterable[str], ext: str = ".mp4") -> dict:
    """:func:`fingerprint_files` of ``video_dir/<id><ext>`` keyed by video id."""
    ids = [str(v) for v in video_ids]
    return fingerprint_files((Path(video_dir) / f"{v}{ext}" for v in ids), ids)


def folder_summary(folder: PathLike, suffix: str = "") -> dict:
    """``{"count": n, "digest": sha256 of every (name, size, mtime_ns)}`` of the files in
    ``folder`` ending in ``suffix`` -- one ``scandir``, compact enough to record per run."""
    h = hashlib.sha256()
    n = 0
    try:
        entries = sorted((e for e in os.scandir(folder) if e.name.endswith(suffix) and e.is_file()),
                         key=lambda e: e.name)
    except OSError:
        entries = []
    for e in entries:
        st = e.stat()
        h.update(f"{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        n += 1
    return {"count": n, "digest": h.hexdigest()[:16]}


def annotation_files(anno_dir: PathLike) -> list[Path]:
    """The annotation files of an MSR-VTT folder: ``MSRVTT_data.json`` and every ``MSRVTT_*.csv``."""
    anno_dir = Path(anno_dir)
    return [anno_dir / "MSRVTT_data.json", *sorted(anno_dir.glob("MSRVTT_*.csv"))]


def fingerprint_annotations(anno_dir: PathLike) -> dict:
    return fingerprint_files(annotation_files(anno_dir))


def file_sha256(path: PathLike) -> dict:
    """``{"sha256": HEX, "path": absolute path}``; hashed once per (path, size, mtime) per process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), int(st.st_size), int(st.st_mtime_ns))
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return {"sha256": _SHA_CACHE[key], "path": key[0]}


def digest(parts: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``parts`` (without a ``digest`` key)."""
    body = {k: v for k, v in parts.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(**parts: Any) -> dict:
    """The fingerprint of an artefact: its named parts plus their ``digest``."""
    out = {k: v for k, v in parts.items()}
    out["digest"] = digest(out)
    return out


# ----------------------------------------------------------------------------------------- check
def _describe_value(v: Any) -> str:
    if isinstance(v, dict) and "sha256" in v:
        return f"sha256 {str(v['sha256'])[:12]}"
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return f"{v[0]} bytes, mtime_ns {v[1]}"
    text = json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any], limit: int = 3) -> list[str]:
    """Human-readable differences ``"part: recorded X, now Y"`` (at most ``limit`` per part).

    A part absent from ``recorded`` is not compared (an artefact from before that part was
    recorded).  Inside a flat part (a dict of settings) a key present on one side only *is* a
    difference: a writer that adds a setting later must leave it out while it has its default, so
    that older artefacts keep their fingerprint and a changed setting is still refused."""
    out: list[str] = []
    for part, now in current.items():
        if part == "digest" or part not in recorded:
            continue
        was = recorded[part]
        if isinstance(now, dict) and isinstance(now.get("files"), dict) and isinstance(was, dict) \
                and isinstance(was.get("files"), dict):
            changed = []
            for name, stamp in now["files"].items():
                old = was["files"].get(name, "absent")
                if stamp is None:  # gone now: cannot be compared (deleted after building)
                    continue
                if old != stamp:
                    changed.append(f"{part} {name}: recorded {_describe_value(old) if old != 'absent' else 'absent'}, "
                                   f"now {_describe_value(stamp)}")
            if changed:
                more = f" (and {len(changed) - limit} more)" if len(changed) > limit else ""
                out.append("; ".join(changed[:limit]) + more)
        elif isinstance(now, dict) and isinstance(was, dict) and "sha256" not in now \
                and all(not isinstance(v, dict) for v in now.values()):
            # a key on one side only differs too: writers leave a setting out where it has its default
            # (so that artefacts older than the setting keep their fingerprint), so absent = default
            keys = [k for k in now if k not in was or was[k] != now[k]] + [k for k in was if k not in now]
            out += [f"{part}.{k}: recorded {_describe_value(was[k]) if k in was else '(absent: the default)'}, "
                    f"now {_describe_value(now[k]) if k in now else '(absent: the default)'}" for k in keys]
        elif isinstance(now, dict) and "sha256" in now and isinstance(was, dict):
            if was.get("sha256") != now["sha256"]:
                out.append(f"{part} {now.get('path', '')}: recorded {_describe_value(was)}, now {_describe_value(now)}")
        elif was != now:
            out.append(f"{part}: recorded {_describe_value(was)}, now {_describe_value(now)}")
    return out


def check(recorded: Optional[Mapping[str, Any]], current: Mapping[str, Any], artefact: PathLike,
          rebuild_cmd: str) -> None:
    """Raise :class:`ProvenanceError` when ``current`` differs from ``recorded``.

    The message names the artefact, each differing input with both sides, and the command that
    rebuilds the artefact.  ``recorded=None`` (an artefact from before provenance was recorded)
    passes.
    """
    if not recorded:
        return
    diff = differences(recorded, current)
    if diff:
        raise ProvenanceError(f"{artefact}: built from other inputs than the ones in use now "
                              f"({'; '.join(diff)}); rebuild it with: {rebuild_cmd}")
