"""Adding a head is one new file plus one registry line.

``ToyHead`` below stands for the new file (a :class:`~glscl_lite.model.head.Head` subclass that
declares what it needs and offers); the ``toy_head`` fixture is the registry line.  From there the
head works everywhere heads are listed or dispatched on: config validation, training and
evaluation on the session corpus, the search index and ``search --rerank``, the FLOPs profile.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite import losses as L
from glscl_lite.config import Config, ConfigError, apply_overrides
from glscl_lite.model import registry
from glscl_lite.model.head import Head, Side, masked_mean_vector


# ------------------------------------------------------------------------------ the "new file"
class ToyHead(Head):
    """Cosine of a linearly projected sentence and the mean-pooled frames."""

    indexable = True  # offers stage-1 vectors (its score is itself an inner product)

    def __init__(self, cfg: Config, dim: int):
        super().__init__(cfg, dim)
        self.proj = nn.Linear(dim, dim)

    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        return {"sentence": F.normalize(self.proj(sentence.float()), dim=-1)}

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> Side:
        return {"video": masked_mean_vector(frames, mask)}

    def score(self, text: Side, video: Side) -> torch.Tensor:
        return text["sentence"] @ video["video"].T

    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        sim = self.score(text, video)
        return {"info_nce": L.info_nce(logit_scale * sim), "loss": L.info_nce(logit_scale * sim),
                "sim_pos": sim.detach().diagonal().mean()}

    @classmethod
    def coarse_video_vectors(cls, video: Side) -> torch.Tensor:
        return video["video"].float()

    @classmethod
    def coarse_query_vectors(cls, text: Side) -> torch.Tensor:
        return text["sentence"].float()


# ----------------------------------------------------------------------------- the "one line"
@pytest.fixture
def toy_head(monkeypatch):
    monkeypatch.setitem(registry.HEADS, "toy", ToyHead)  # in the package: "toy": "glscl_lite.model.toy:ToyHead",
    return "toy"


def test_every_registered_head_is_a_head_with_declared_needs():
    for name in registry.head_names():
        cls = registry.head_class(name)
        assert issubclass(cls, Head), name
        for flag in ("uses_raw_frames", "uses_patches", "indexable", "paper_comparison"):
            assert isinstance(getattr(cls, flag), bool), (name, flag)


def test_adding_a_head_is_one_file_plus_one_registry_line(toy_head, smoke_overrides, tmp_path, capsys):
    from glscl_lite import flops, runs
    from glscl_lite.cli import main as cli_main
    from glscl_lite.search import SearchIndex, coarse_query_vectors, coarse_video_vectors
    from glscl_lite.train import train

    # config validation reads the registry
    assert apply_overrides(Config(), {"head": "toy"}).head == "toy"
    with pytest.raises(ConfigError, match="toy"):
        apply_overrides(Config(), {"head": "nope"})

    # the registry's consumers list it
    assert "toy" in registry.head_names() and "toy" in registry.indexable_heads()
    assert "toy" in registry.related_heads() and not registry.needs_patches(Config(head="toy"))

    # it trains (a few steps on the session corpus) and evaluates through the model's generic path
    out = tmp_path / "toy_run"
    res = train("smoke", smoke_overrides + ["head=toy", "epochs=1", "max_steps=3", "batch_size=16"], out,
                progress=False)
    assert res["test"]["t2v"]["R1"] >= 0
    assert runs.finished(out, runs.run_config(out)) is not None

    # search: stage-1 vectors from the head, an index over the trained run, --rerank accepts it
    side = {"video": F.normalize(torch.randn(5, 64), dim=-1)}
    assert coarse_video_vectors("toy", side).shape == (5, 64)
    assert coarse_query_vectors("toy", {"sentence": torch.randn(2, 64)}).shape == (2, 64)
    index = tmp_path / "index"
    assert cli_main(["index", "build", "--run", str(out), "--out", str(index), "--quiet"]) == 0
    js = tmp_path / "hits.json"
    assert cli_main(["search", "--index", str(index), "a red ball", "--k", "3", "--rerank", "toy",
                     "--json", str(js)]) == 0
    assert json.loads(js.read_text())["rerank"] == "toy"
    assert len(SearchIndex(index).search("a red ball", k=3, rerank="toy")) == 3
    capsys.readouterr()

    # FLOPs: profiled like any head; the default head list of head_latency/profile reads the registry
    x = flops.ProfileInputs.make(64, 12, 32, image_size=1, device=torch.device("cpu"))
    prof = flops.profile_head(registry.build_head(Config(head="toy", max_frames=12, max_words=32), 64), x)
    assert prof["macs"] > 0
    lat = flops.head_latency(Config(head="toy"), 64, heads=registry.related_heads()[-1:], sizes=(4,), repeats=1)
    assert list(lat) == ["toy"]


def test_an_unregistered_head_is_refused_by_name(capsys):
    from glscl_lite.cli import main as cli_main

    with pytest.raises(ConfigError, match="toy"):
        apply_overrides(Config(), {"head": "toy"})
    with pytest.raises(SystemExit):
        cli_main(["search", "--index", "x", "q", "--rerank", "xpool_like"])  # registered, not indexable
    assert "invalid choice" in capsys.readouterr().err
