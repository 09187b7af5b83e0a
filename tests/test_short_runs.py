"""Short runs on a tiny data set must not collapse: `python -m reszoo.train smallresnet digits
--epochs 4` (the digits recipe, 1,437 training images) must end well above chance on the
held-out digits. At batch 128 (11 steps an epoch) that run ended at 29-56%; the recipe's
batch 32 gives it 176 steps."""

import pytest

from reszoo.training import recipes


def test_digits_recipe_gives_a_four_epoch_run_enough_steps():
    import reszoo

    cfg = recipes.resolve(reszoo.get_config("smallresnet"), "digits", options={"epochs": 4})
    train_images = 1797 - round(0.2 * 1797)  # 20% of the 1,797 digits held out
    assert train_images // cfg["batch_size"] * cfg["epochs"] >= 150


def test_four_epoch_digits_run_reaches_85_percent():
    pytest.importorskip("sklearn")
    from reszoo.training import fit

    r = fit("smallresnet", "digits", epochs=4, verbose=0)
    assert r.history["val_accuracy"][-1] > 0.85, r.history
