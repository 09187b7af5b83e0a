"""reszoo.export, the export side: versions, bad input, cleanup, formats, every family.

What TF Serving sees of an export is in tests/test_serving_signatures.py, model sources (run
directories, zoo names, exports) in tests/test_export_sources.py, the command line in
tests/test_export_cli.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from serving_support import families, tiny_overrides  # noqa: E402

import reszoo  # noqa: E402
from reszoo.errors import ExportError  # noqa: E402
from reszoo.serving import exporter as export_module  # noqa: E402
from reszoo.serving import warmup as warmup_module  # noqa: E402


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(1)
    return reszoo.build("resnet20", **tiny_overrides("resnet20", size=16, classes=3))


def test_versions_increment_and_are_never_replaced_silently(small_model, tmp_path):
    base = tmp_path / "models" / "small"
    assert reszoo.export(small_model, base) == base / "1"
    (base / "notes").mkdir()  # non-numeric entries are ignored
    assert reszoo.export(small_model, str(base)) == base / "2"
    assert export_module.export(small_model, base, version=7) == base / "7"
    assert reszoo.export(small_model, base) == base / "8"
    stamp = (base / "2" / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ExportError, match="version 2 already exists.*overwrite"):
        reszoo.export(small_model, base, version=2)
    assert (base / "2" / "saved_model.pb").stat().st_mtime_ns == stamp
    (base / "2" / "marker").write_text("old")
    assert (
        reszoo.export(small_model, base, version=2, overwrite=True, class_names=["a", "b", "c"])
        == base / "2"
    )
    assert not (base / "2" / "marker").exists()
    assert (base / "2" / "assets" / "class_names.txt").read_text() == "a\nb\nc\n"
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7", "8", "notes"]
    default_names = (base / "1" / "assets" / "class_names.txt").read_text().split()
    assert default_names == ["0", "1", "2"]


def test_bad_input_raises_export_error(small_model, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        reszoo.export(small_model, a_file)
    with pytest.raises(ExportError, match="2 class names for a model with 3 classes"):
        reszoo.export(small_model, tmp_path / "e1", class_names=["a", "b"])
    with pytest.raises(ExportError, match="non-empty string on one line"):
        reszoo.export(small_model, tmp_path / "e1", class_names=["a", "b\nc", "d"])
    with pytest.raises(ExportError, match="neither a zoo model nor a run directory"):
        reszoo.export("resnet_does_not_exist", tmp_path / "e1")
    with pytest.raises(ExportError, match="version must be a positive integer"):
        reszoo.export(small_model, tmp_path / "e1", version=0)
    headless = reszoo.build(
        "resnet20", include_top=False, pooling="avg", **tiny_overrides("resnet20", size=16)
    )
    with pytest.raises(ExportError, match="include_top=True"):
        reszoo.export(headless, tmp_path / "e1")
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ExportError, match="not a reszoo run directory"):
        reszoo.export(run, tmp_path / "e1")
    (run / "config.json").write_text(json.dumps({"model": "resnet20", "class_names": ["a"]}))
    (run / "checkpoints").mkdir()
    with pytest.raises(ExportError, match="no checkpoint"):
        reszoo.export(str(run), tmp_path / "e1")
    assert not (tmp_path / "e1").exists()  # nothing written by any of the failures
    assert issubclass(ExportError, ValueError)


def test_a_failure_mid_export_leaves_nothing(small_model, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    base = tmp_path / "models"
    reszoo.export(small_model, base)
    monkeypatch.setattr(warmup_module, "warmup_requests", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        reszoo.export(small_model, base)
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    with pytest.raises(RuntimeError, match="disk full"):
        reszoo.export(small_model, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_a_failed_export_removes_only_what_it_created(small_model, tmp_path, monkeypatch):
    """A failed export into a directory it created keeps a version another export wrote there
    meanwhile (and removes its own staging folder)."""
    base = tmp_path / "new" / "models"
    real = warmup_module.warmup_requests

    def another_export_then_failure(*args, **kwargs):
        monkeypatch.setattr(warmup_module, "warmup_requests", real)
        assert reszoo.export(small_model, base) == base / "1"  # the other export, meanwhile
        raise RuntimeError("disk full")

    monkeypatch.setattr(warmup_module, "warmup_requests", another_export_then_failure)
    with pytest.raises(RuntimeError, match="disk full"):
        reszoo.export(small_model, base)
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    loaded = tf.saved_model.load(str(base / "1"))
    images = np.zeros((1, 16, 16, 3), np.float32)
    out = loaded.signatures["serving_default"](images=tf.constant(images))["logits"].numpy()
    np.testing.assert_allclose(out, small_model(images).numpy(), atol=1e-5, rtol=0)


def test_reszoo_fit_and_export_stay_functions_after_the_cli_and_packages_are_imported():
    import reszoo.serving
    import reszoo.train  # noqa: F401
    import reszoo.training
    import reszoo.training.trainer  # noqa: F401

    assert reszoo.export is reszoo.serving.export is export_module.export
    assert reszoo.fit is reszoo.training.fit is reszoo.training.trainer.fit


@pytest.mark.parametrize("family,name", sorted(families().items()))
def test_every_family_exports(family, name, tmp_path):
    keras.utils.set_random_seed(2)
    model = reszoo.build(name, **tiny_overrides(name))
    path = reszoo.export(model, tmp_path / family, model_name=name)
    loaded = tf.saved_model.load(str(path))
    images = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(
        out["logits"].numpy(), model(images, training=False).numpy(), atol=1e-5, rtol=0
    )
    metadata = json.loads((path / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["model_name"] == name
