"""Early stopping (``patience``): the gallery trains heads until validation stops improving."""
from __future__ import annotations

import json

from glscl_lite.runs import read_metrics
from glscl_lite.train import train


def test_patience_stops_after_validations_without_improvement_and_stays_finished(tmp_path, smoke_overrides):
    run = tmp_path / "run"
    sets = [*smoke_overrides, "epochs=30", "schedule_epochs=None", "eval_every=2", "patience=2", "lr=1e-9",
            "coef_lr=1e-9", "log_every=1"]
    results = train("smoke", sets, run, progress=False)
    vals = [r for r in read_metrics(run) if r["split"] == "val"]
    # lr ~ 0: the first validation is the best, the next two do not improve -> stop after the third
    assert [r["best"] for r in vals] == [True, False, False]
    assert results["stopped_early"] is True and results["best_step"] == vals[0]["step"]
    assert results["steps"] == vals[-1]["step"] < 30 * 2
    again = train("smoke", sets, run, progress=False)  # finished: nothing more is trained
    assert again["steps"] == results["steps"]
    assert len([r for r in read_metrics(run) if r["split"] == "val"]) == 3
    assert json.loads((run / "results.json").read_text())["stopped_early"] is True


def test_without_patience_the_whole_schedule_runs(tmp_path, smoke_overrides):
    run = tmp_path / "run"
    results = train("smoke", [*smoke_overrides, "max_steps=6", "eval_every=2", "lr=1e-9", "coef_lr=1e-9"],
                    run, progress=False)
    assert results["steps"] == 6 and results["stopped_early"] is False
