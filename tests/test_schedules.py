"""Learning-rate schedules of the SCHEDULES table, checked against their formulas written out
by hand."""

import pytest

import reszoo
from reszoo.training import recipes
from reszoo.training.schedules import SCHEDULES


def test_linear_warms_up_then_decays_to_zero_on_a_straight_line():
    lr, total, warmup = 0.2, 100, 20
    s = SCHEDULES["linear"](lr, total_steps=total, warmup_steps=warmup)

    def expected(step):  # warm-up, then the fraction of the decay steps still to go
        if step < warmup:
            return lr * (step + 1) / warmup
        return lr * max(0.0, 1.0 - (step - warmup) / (total - warmup))

    for step in (0, 9, 19, 20, 40, 60, 99, 100, 130):
        assert float(s(step)) == pytest.approx(expected(step), abs=1e-7), step
    assert float(s(60)) == pytest.approx(0.1)  # half-way through the decay: half the rate
    assert float(s(100)) == pytest.approx(0.0, abs=1e-7)


def test_linear_ends_at_min_lr_and_is_a_recipe_choice():
    s = SCHEDULES["linear"](0.1, total_steps=10, min_lr=0.02)
    assert [round(float(s(i)), 6) for i in (0, 5, 10)] == [0.1, 0.06, 0.02]
    cfg = recipes.resolve(reszoo.get_config("resnet20"), "digits", options={"schedule": "linear"})
    assert cfg["schedule"] == "linear"
