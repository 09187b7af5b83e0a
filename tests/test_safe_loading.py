"""Loading model files: reszoo's .keras files load with safe_mode=True; a Lambda .keras file is
refused and its code never runs, also through reszoo.export of a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from serving_support import tiny_overrides  # noqa: E402

import reszoo  # noqa: E402
from reszoo.errors import ExportError  # noqa: E402

# ----------------------------------------------------------------------------- 7. loading


@pytest.mark.parametrize(
    "name",
    [
        "resnet20",
        "resnet50",
        "resnet50_v2",
        "resnet50d",
        "preact_resnet164",
        "resnext50_32x4d",
        "seresnet50",
        "smallresnet",
        "wrn16_8",
    ],
)
def test_reszoo_keras_files_load_with_safe_mode(name, tmp_path):
    model = reszoo.build(name, **tiny_overrides(name))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.RandomState(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def _lambda_model(marker: Path):
    # an anonymous lambda: Keras stores its bytecode, which only safe_mode=False would run
    touch = lambda x, m=str(marker): (open(m, "w").close(), x * 2.0)[1]  # noqa: E731
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(touch)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_a_keras_file_with_a_lambda_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    model = _lambda_model(marker)
    marker.unlink(missing_ok=True)  # building traced the function once
    path = tmp_path / "lambda.keras"
    model.save(path)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"(?s)Lambda.*safe_mode|safe_mode.*Lambda|unsafe"):
        keras.saving.load_model(path)
    assert not marker.exists()
    # reszoo.export of a run directory holding such a model.keras: a clear ExportError
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(path.read_bytes())
    (run / "config.json").write_text(
        json.dumps({"model": "custom", "build": None, "class_names": ["a", "b", "c"]})
    )
    with pytest.raises(ExportError, match="safe_mode|Lambda"):
        reszoo.export(str(run), tmp_path / "exported")
    assert not marker.exists() and not (tmp_path / "exported").exists()
