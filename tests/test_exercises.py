"""The notebooks' exercises: every reference answer agrees with the package, a wrong attempt is
caught, an untouched one falls back to the reference (so the notebooks always run)."""
import numpy as np
import pytest
import torch

from glscl_lite import exercises


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_reference_answers_match_the_package(name):
    assert exercises.check(name, exercises.EXERCISES[name].reference, verbose=False) == "yours"


def test_untouched_exercise_runs_the_reference(capsys):
    def my_gim(sent, frames, mask, tau):
        raise NotImplementedError

    assert exercises.check("gim", my_gim) == "reference"
    assert "not attempted yet" in capsys.readouterr().out


def test_wrong_answer_fails_with_the_case():
    def unmasked_gim(sent, frames, mask, tau):  # forgets the frame mask
        return exercises.gim(sent, frames, torch.ones_like(mask), tau)

    with pytest.raises(AssertionError, match="gim: your answer differs"):
        exercises.check("gim", unmasked_gim)


def test_show_prints_the_reference(capsys):
    exercises.show("icl")
    assert "def icl(" in capsys.readouterr().out


def test_paired_bootstrap_ci():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    ci = exercises.paired_bootstrap_ci(a, a + 0.5 + 0.1 * rng.normal(size=200))
    assert ci["lo"] < 0.5 < ci["hi"] and ci["hi"] - ci["lo"] < 0.1
    same = exercises.paired_bootstrap_ci(a, a)
    assert same["mean_diff"] == same["lo"] == same["hi"] == 0
