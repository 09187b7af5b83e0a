"""Hostile model and weight files given to reszoo's file entry points are refused, never run or read.

Entry points that take a file: ``reszoo.build(..., weights=PATH)`` (reszoo/weights/files.py:
safetensors, keras.applications .h5 / .weights.h5, reszoo .weights.h5) and ``reszoo.export`` /
``reszoo export`` of a run directory holding a model.keras (reszoo/serving/sources.py, loaded
with safe_mode=True). The files: a .keras with a Lambda (its bytecode would create a marker
file), a .keras with a TFSMLayer (it would load a SavedModel from a path named in the file), and
HDF5 weights with a dataset stored in another file (/etc/passwd, or a file of 7.0s of exactly the
right shape). Keras 3.15 refuses the Lambda, the TFSMLayer (safe_mode) and the external datasets
itself; reszoo checks the HDF5 files first (reszoo/weights/hdf5_guard.py), so the refusal names
the file the data would come from instead of "does not fit" or a layer name.
"""

import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
pytest.importorskip("tensorflow")

import reszoo  # noqa: E402
from reszoo.errors import ConfigError, ExportError  # noqa: E402


def _lambda_keras(path, marker):
    touch = lambda x, m=str(marker): (open(m, "w").close(), x * 2.0)[1]  # noqa: E731
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(touch)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3)(x)).save(path)
    marker.unlink(missing_ok=True)  # building traced the function once


def _tfsm_keras(path, saved_model_dir):
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(3)(inputs)).export(str(saved_model_dir), verbose=0)
    outer_in = keras.Input((4,))
    layer = keras.layers.TFSMLayer(str(saved_model_dir), call_endpoint="serve")
    keras.Model(outer_in, layer(outer_in)).save(path)


def _make_external(h5_path, dataset_name, target, offset=0):
    """Replace ``dataset_name`` by a dataset of the same shape stored in ``target``."""
    with h5py.File(h5_path, "r+") as handle:
        shape, dtype = handle[dataset_name].shape, handle[dataset_name].dtype
        del handle[dataset_name]
        size = int(np.prod(shape)) * dtype.itemsize
        handle.create_dataset(dataset_name, shape, dtype, external=[(str(target), offset, size)])
    return shape


def _first_dataset(h5_path, *words):
    names = []
    with h5py.File(h5_path, "r") as handle:
        handle.visititems(
            lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None,
        )
    return next(n for n in names if all(w in n for w in words))


def _run_dir(tmp_path, model_keras_bytes):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(model_keras_bytes)
    (run / "config.json").write_text(
        json.dumps({"model": "custom", "build": None, "class_names": ["a", "b", "c"]})
    )
    return run


def _export_refused(tmp_path, run, capsys, *patterns):
    with pytest.raises(ExportError) as info:
        reszoo.export(str(run), tmp_path / "exported")
    assert "\n" not in str(info.value)
    from reszoo.cli import main

    code = main(["export", str(run), str(tmp_path / "exported-cli")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for pattern in patterns:
        assert pattern in str(info.value) and pattern in err
    assert not (tmp_path / "exported").exists() and not (tmp_path / "exported-cli").exists()


def test_keras_file_with_a_lambda_everywhere(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    path = tmp_path / "lambda.keras"
    _lambda_keras(path, marker)
    with pytest.raises(ConfigError, match="not a weight file reszoo reads"):
        reszoo.build("resnet20", weights=str(path))
    _export_refused(tmp_path, _run_dir(tmp_path, path.read_bytes()), capsys, "Lambda")
    assert not marker.exists()


def test_keras_file_with_a_tfsm_layer_is_refused(tmp_path, capsys):
    path = tmp_path / "tfsm.keras"
    _tfsm_keras(path, tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="not a weight file reszoo reads"):
        reszoo.build("resnet20", weights=str(path))
    _export_refused(tmp_path, _run_dir(tmp_path, path.read_bytes()), capsys, "TFSMLayer")


def test_model_keras_whose_weights_are_stored_in_etc_passwd(tmp_path, capsys):
    inputs = keras.Input((4,))
    path = tmp_path / "m.keras"
    keras.Model(inputs, keras.layers.Dense(3)(inputs)).save(path)
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(members["model.weights.h5"])
    _make_external(weights, _first_dataset(weights, "vars"), "/etc/passwd")
    members["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    _export_refused(
        tmp_path, _run_dir(tmp_path, path.read_bytes()), capsys, "stored in '/etc/passwd'"
    )


def test_reszoo_weights_file_with_an_external_dataset_is_refused_by_name(tmp_path):
    path = tmp_path / "resnet20.weights.h5"
    reszoo.build("resnet20").save_weights(path)
    _make_external(path, _first_dataset(path, "stem"), "/etc/passwd")
    with pytest.raises(ConfigError, match=r"is refused: .*stored in '/etc/passwd'"):
        reszoo.build("resnet20", weights=str(path))


@pytest.mark.parametrize("target", ["sevens", "/etc/passwd"])
def test_keras_applications_h5_with_an_external_dataset_is_refused_by_name(tmp_path, target):
    path = tmp_path / "resnet50_notop.h5"
    keras.applications.ResNet50(weights=None, include_top=False).save(path)
    name = _first_dataset(path, "conv1_conv", "kernel")
    if target == "sevens":  # exactly what the kernel needs: a reader would load it as weights
        with h5py.File(path, "r") as handle:
            shape = handle[name].shape
        target = tmp_path / "sevens.bin"
        target.write_bytes(np.full(shape, 7.0, np.float32).tobytes())
    _make_external(path, name, target)
    with pytest.raises(ConfigError, match=r"is refused: .*stored in") as info:
        reszoo.build("resnet50_v1", weights=str(path), include_top=False, input_shape=(64, 64, 3))
    assert str(target) in str(info.value) and "\n" not in str(info.value)
