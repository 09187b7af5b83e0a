"""The typed training config: one field per recipes.json option, frozen, and config.json is the
options with the run's facts over them."""

import dataclasses

import pytest

import reszoo
from reszoo.training import recipes
from reszoo.training.config import RUN_KEYS, RunFacts, TrainConfig, record


def _config(**options):
    return TrainConfig.from_dict(
        recipes.prepare("resnet20", reszoo.get_config("resnet20"), "digits", options=options)
    )


def test_every_recipe_option_is_a_field_and_nothing_else():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields == set(recipes.defaults()) | {"kind", "model", "dataset", "reszoo_config_version"}


def test_config_is_frozen_and_lists_are_tuples():
    cfg = _config(lr_steps=[3, 6], image_size=16, overrides={"depths": [1, 1, 1]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3
    assert cfg.lr_steps == (3, 6) and cfg.image_size == (16, 16)
    as_dict = cfg.to_dict()
    assert as_dict["lr_steps"] == [3, 6] and as_dict["image_size"] == [16, 16]
    assert as_dict["overrides"] == {"depths": [1, 1, 1]}
    as_dict["overrides"]["depths"].append(1)  # a copy: the config is not changed through it
    assert cfg.overrides == {"depths": [1, 1, 1]}


def test_record_puts_the_chosen_precision_over_the_requested_one():
    cfg = _config()
    facts = RunFacts(
        precision="float32",
        precision_reason="requested",
        strategy_name="default",
        num_replicas=1,
        class_names=("a", "b"),
        steps_per_epoch_resolved=5,
        total_steps=75,
        build=None,
    )
    out = record(cfg, facts)
    assert cfg.precision == "auto" and out["precision"] == "float32"
    assert out["class_names"] == ["a", "b"] and out["total_steps"] == 75
    assert set(out) == set(recipes.defaults()) | set(RUN_KEYS)
