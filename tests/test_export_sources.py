"""Where an export's model comes from (reszoo/serving/sources.py): a reszoo.fit run directory
(model.keras or its checkpoints, checked against config.json), a keras.Model, an export.

A run directory is trusted only as far as it agrees with itself: a hand-edited config.json or a
damaged model.keras is one clear ExportError, never a SavedModel serving other logits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

import reszoo  # noqa: E402
from reszoo.cli import main_for  # noqa: E402
from reszoo.errors import ExportError  # noqa: E402
from reszoo.serving import sources  # noqa: E402


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "resnet20-digits"
    overrides = {"depths": [1, 1, 1], "widths": [8, 16, 16], "stem_width": 8}
    result = reszoo.fit(
        "resnet20",
        "digits",
        epochs=1,
        steps_per_epoch=6,
        batch_size=32,
        overrides=overrides,
        output_dir=str(run),
        verbose=0,
        seed=0,
    )
    from reszoo import data

    _, val, _ = data.load("digits", batch_size=64, image_size=(32, 32), augment="none")
    images, labels = next(iter(val))
    return run, result, images.numpy(), labels.numpy()


def test_trained_run_exports_from_the_cli_and_predicts_the_same_classes(trained_run, tmp_path):
    run, result, images, _ = trained_run
    out = tmp_path / "served" / "digits"
    proc = subprocess.run(
        [sys.executable, "-m", "reszoo.export", str(run), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"reszoo.export: wrote {out / '1'}"
    loaded = tf.saved_model.load(str(out / "1"))
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    logits = result.model(images, training=False).numpy()
    np.testing.assert_array_equal(served["classes"].numpy(), logits.argmax(-1))
    np.testing.assert_allclose(served["logits"].numpy(), logits, atol=1e-5, rtol=0)
    names = result.config["class_names"]
    assert [n.decode() for n in served["class_names"].numpy()] == [
        names[c] for c in logits.argmax(-1)
    ]
    metadata = json.loads((out / "1" / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["training_summary"]["status"] == "completed"
    assert metadata["config"]["depths"] == [1, 1, 1] and metadata["config"]["num_classes"] == 10
    assert metadata["weights_source"].endswith("model.keras")
    assert metadata["dtype_policy"] == result.config["precision"]


def test_trained_run_exports_from_its_checkpoint(trained_run, tmp_path):
    run, result, images, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "model.keras").unlink()  # an interrupted run: checkpoints only
    path = reszoo.export(copy, tmp_path / "out")
    metadata = json.loads((path / "assets.extra" / "reszoo_metadata.json").read_text())
    assert "checkpoints" in metadata["weights_source"]
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["serving_uint8"](images=tf.constant(images.astype(np.uint8)))
    logits = result.model(images.astype(np.uint8).astype(np.float32), training=False).numpy()
    np.testing.assert_array_equal(served["classes"].numpy(), logits.argmax(-1))
    np.testing.assert_allclose(served["logits"].numpy(), logits, atol=1e-5, rtol=0)


def test_exporting_the_fit_result_model_directly(trained_run, tmp_path):
    _, result, images, _ = trained_run
    path = reszoo.export(result.model, tmp_path / "out", class_names=result.config["class_names"])
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_array_equal(
        served["classes"].numpy(), result.model(images, training=False).numpy().argmax(-1)
    )


def _copy(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _edit_build(run, **changes):
    config = json.loads((run / "config.json").read_text())
    for key, value in changes.items():
        if key == "preprocessing":
            config["build"]["overrides"]["preprocessing"] = value
        else:
            config["build"][key] = value
    (run / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "change,where",
    [
        ({"preprocessing": "torch"}, "layers['preprocess'].config.mode"),
        ({"input_shape": [40, 40, 3]}, "layers['images'].config.batch_shape"),
    ],
    ids=["preprocessing", "input_shape"],
)
def test_a_hand_edited_config_json_is_refused(trained_run, tmp_path, change, where):
    run = _copy(trained_run[0], tmp_path)
    _edit_build(run, **change)
    with pytest.raises(
        ExportError, match="config.json does not describe the model in model.keras"
    ) as info:
        reszoo.export(run, tmp_path / "out")
    assert where in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("keep", [0, 100, 5000], ids=["empty", "header-only", "truncated"])
def test_a_damaged_model_keras_is_one_clear_error(trained_run, tmp_path, capsys, keep):
    run = _copy(trained_run[0], tmp_path)
    data = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(data[:keep])
    with pytest.raises(ExportError, match=r"cannot load .*model.keras.*damaged.*latest checkpoint"):
        reszoo.export(run, tmp_path / "out")
    assert main_for("export", [str(run), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_newer_than_model_keras_is_exported(trained_run, tmp_path):
    """A finished run resumed and interrupted: the newest weights are the checkpoint's, put into
    model.keras's architecture."""
    from reszoo.training import make_checkpoint

    run, _, images, _ = trained_run
    run = _copy(run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    build = config["build"]
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config["precision"])  # as fit builds it
    try:
        later = reszoo.build(
            build["name"],
            num_classes=build["num_classes"],
            input_shape=tuple(build["input_shape"]),
            **build["overrides"],
        )
    finally:
        keras.config.set_dtype_policy(policy)
    later.load_weights(run / "model.keras")
    for variable in later.trainable_variables:
        variable.assign(variable * 1.25)
    checkpoint = make_checkpoint(later, step=tf.Variable(999, dtype=tf.int64))
    manager = tf.train.CheckpointManager(
        checkpoint, str(run / "checkpoints"), max_to_keep=None, checkpoint_name="ckpt"
    )
    manager.save(checkpoint_number=999)
    path = reszoo.export(run, tmp_path / "out")
    metadata = json.loads((path / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["weights_source"].endswith("(step 999)")
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    logits = served(images=tf.constant(images))["logits"].numpy()
    np.testing.assert_allclose(logits, later(images, training=False).numpy(), atol=1e-4, rtol=0)


def test_an_export_is_a_source_but_not_exported_again(trained_run, tmp_path):
    run, result, images, _ = trained_run
    path = reszoo.export(run, tmp_path / "exported")
    expected = result.model(images, training=False).numpy()
    for where in (tmp_path / "exported", path):  # the versions' directory, or one version
        source = sources.load(where)
        assert source.model is None and source.export_path == path
        assert source.class_names == result.config["class_names"]
        assert source.input_size == (32, 32)
        np.testing.assert_allclose(source.logits(images), expected, atol=1e-5, rtol=0)
    with pytest.raises(ExportError, match="already an export"):
        reszoo.export(tmp_path / "exported", tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_a_run_directory_source_for_evaluation(trained_run):
    run, result, images, _ = trained_run
    source = sources.load(run)
    assert source.name == "resnet20" and source.run_dir == run
    assert source.weights == str(run / "model.keras")
    assert source.class_names == result.config["class_names"]
    assert source.summary["status"] == "completed"
    assert source.config["depths"] == [1, 1, 1]
    np.testing.assert_array_equal(
        source.logits(images).argmax(-1), result.model(images, training=False).numpy().argmax(-1)
    )
