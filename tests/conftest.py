"""Shared fixtures: one small synthetic corpus (+ frame cache) per test session, offline hub."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub here or in CI: fail fast
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED_MSRVTT = REPO.parent / "shared" / "data" / "msrvtt"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """48-video synthetic corpus in the MSR-VTT layout (generated once per session)."""
    from glscl_lite.data.synthetic import generate_corpus

    out = tmp_path_factory.mktemp("corpus") / "synthetic"
    generate_corpus(out, n_videos=48, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def frame_cache(corpus) -> Path:
    """64-px frame cache of the session corpus (the tiny model's resolution)."""
    from glscl_lite.data.cache import build_frame_cache
    from glscl_lite.data.msrvtt import all_video_ids

    out = corpus / "frames-64"
    build_frame_cache(all_video_ids(corpus), corpus / "videos", out, max_frames=12, image_size=64,
                      progress=False)
    return out


@pytest.fixture(scope="session")
def smoke_overrides(corpus, frame_cache) -> list[str]:
    """--set overrides that point the smoke preset at the session corpus."""
    return [f"anno_path={corpus}", f"video_path={corpus / 'videos'}", f"frame_cache={frame_cache}"]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """Each test leaves torch's thread count as it found it.  Some tests execute notebook setup code
    in this process (the notebooks pick one thread in smoke mode); a changed count changes the
    floating-point reduction order, so a later in-process run no longer equals a subprocess run
    bit for bit (the kill -9 resume test)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
