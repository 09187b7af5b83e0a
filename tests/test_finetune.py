"""Fine-tuning from the trainer: `reszoo.fit(..., weights=...)` and `reszoo train --weights`.

The starting weights are a reszoo .weights.h5 of a 7-class resnet20 drawn here; the run trains
on 10 synthetic classes, so everything but the classifier must come from the file and the head
must be new. The finetune recipe's values are the ones README documents.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import reszoo
from reszoo.training import recipes

HEAD = "logits"


class FirstWeights(keras.callbacks.Callback):
    """The model's weights, by layer, when training begins (after any restore)."""

    def on_train_begin(self, logs=None):
        self.weights = {layer.name: layer.get_weights() for layer in self.model.layers}


@pytest.fixture(scope="module")
def donor(tmp_path_factory):
    keras.utils.set_random_seed(11)
    model = reszoo.build("resnet20", num_classes=7)
    path = tmp_path_factory.mktemp("donor") / "resnet20-7.weights.h5"
    model.save_weights(path)
    return path, {layer.name: layer.get_weights() for layer in model.layers}


def fit_from(weights, output_dir, epochs=1, **options):
    first = FirstWeights()
    result = reszoo.fit(
        "resnet20",
        "synthetic",
        weights=str(weights),
        epochs=epochs,
        steps_per_epoch=2,
        output_dir=str(output_dir),
        callbacks=[first],
        verbose=0,
        **options,
    )
    return result, first.weights


def test_the_backbone_starts_from_the_file_and_the_head_is_new(donor, tmp_path):
    path, donor_weights = donor
    result, start = fit_from(path, tmp_path / "run")
    backbone = [name for name, values in donor_weights.items() if values and name != HEAD]
    assert len(backbone) == 10  # the stem and ResNet-20's 9 blocks (He et al.: 3 stages, n=3)
    for name in backbone:
        for got, want in zip(start[name], donor_weights[name], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=name)
    kernel = start[HEAD][0]
    assert kernel.shape == (64, 10) and donor_weights[HEAD][0].shape == (64, 7)
    build = json.loads((tmp_path / "run" / "config.json").read_text())["build"]
    assert build["weights"] == str(path) and str(path) in build["weights_source"]
    assert result.config["recipe"] == "finetune"


def test_weights_choose_the_finetune_recipe_unless_another_is_named():
    config = reszoo.get_config("resnet20")
    tuned = recipes.resolve(config, "synthetic", options={"weights": "any.weights.h5"})
    # README: SGD, Nesterov momentum 0.9, 0.01 per 256 images, 1 warm-up epoch, cosine,
    # label smoothing 0.1, 10 epochs at batch 64.
    assert (tuned["optimizer"], tuned["nesterov"], tuned["momentum"]) == ("sgd", True, 0.9)
    assert (tuned["schedule"], tuned["warmup_epochs"], tuned["label_smoothing"]) == (
        "cosine",
        1,
        0.1,
    )
    assert (tuned["epochs"], tuned["batch_size"]) == (10, 64)
    assert tuned["lr"] == pytest.approx(0.01 * 64 / 256)
    plain = recipes.resolve(config, "synthetic")
    own = recipes.resolve(config, "synthetic", options={"weights": "w.h5", "recipe": "default"})
    assert own["recipe"] == "default" and plain["recipe"] is None
    assert {k: own[k] for k in ("lr", "schedule", "epochs", "label_smoothing")} == {
        k: plain[k] for k in ("lr", "schedule", "epochs", "label_smoothing")
    }


def test_a_resumed_run_keeps_its_trained_weights_without_the_file(donor, tmp_path):
    path, _ = donor
    copy = tmp_path / "start.weights.h5"
    copy.write_bytes(path.read_bytes())
    first, _ = fit_from(copy, tmp_path / "run")
    trained = {layer.name: layer.get_weights() for layer in first.model.layers}
    copy.unlink()  # a resume must not need the starting weights any more
    second, start = fit_from(copy, tmp_path / "run", epochs=2)
    for name, values in trained.items():
        for got, want in zip(start[name], values, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=name)
    assert second.summary["status"] == "completed"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--weights", "no/such.weights.h5"], "neither a weight tag"),
        (["--weights", "imagenet"], "resnet20 has no pretrained weights"),
        (["--recipe", "no_such_recipe"], "invalid choice"),
    ],
)
def test_bad_weights_or_recipe_is_one_line_and_nothing_written(tmp_path, flags, message):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "reszoo", "train", "resnet20", "synthetic"]
    command += ["--epochs", "1", "--steps-per-epoch", "1", "--output", str(out), *flags]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("reszoo train")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert not out.exists()
