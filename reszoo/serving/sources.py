"""Where a classifier comes from: a keras.Model, a zoo name, a run directory or an export.

    from reszoo.serving import sources
    source = sources.load("runs/resnet20-cifar10")    # or a keras.Model, "resnet50", "exported/r20"
    source.logits(images)             # float32 RGB 0..255 [B, h, w, 3] -> logits [B, C] (numpy)
    source.class_names, source.input_size, source.weights, source.config, source.summary

`load` tries the kinds of SOURCE_KINDS in order (a table: one entry per kind). Export, evaluation
and prediction share it, so a run directory or an export is read the same way everywhere.

A run directory (written by reszoo.fit) is trusted only as far as it agrees with itself: when
model.keras is there, the architecture is model.keras's own (loaded with safe_mode=True) and
config.json's "build" entry must rebuild exactly that architecture (a hand-edited preprocessing
or input_shape is refused, naming the first field that differs); a damaged model.keras is refused,
never silently replaced. The weights are model.keras's unless a checkpoint newer than it exists
(a resumed run that was interrupted), and an interrupted run without model.keras is rebuilt
from config.json with the latest checkpoint's weights: there config.json is the only record of
the architecture, and the checkpoint must hold every variable of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from reszoo.errors import ExportError, ReszooError, UnknownModelError, first_line
from reszoo.serving.metadata import METADATA_FILE, read_metadata
from reszoo.weights.hdf5_guard import keras_archive_problem


@dataclasses.dataclass
class ModelSource:
    """A classifier (pixels 0..255 in, logits out) and what is known about it.

    model: the keras.Model, or None for an export (then `logits` runs its serving_default).
    weights: where the weights came from (a file, a checkpoint, "untrained ...", an export).
    config: the resolved registry config when known; summary: the training summary.json.
    """

    name: str
    weights: str | None
    model: keras.Model | None = None
    class_names: list | None = None
    config: dict | None = None
    summary: dict | None = None
    run_dir: Path | None = None
    export_path: Path | None = None
    metadata: dict | None = None
    saved_model: object = dataclasses.field(default=None, repr=False)

    @property
    def input_size(self) -> tuple:
        """(height, width) the classifier expects; None for a free dimension."""
        if self.model is not None:
            return tuple(self.model.inputs[0].shape[1:3])
        return tuple((self.metadata or {}).get("input_size") or (None, None))

    def logits(self, images) -> np.ndarray:
        """float32 RGB pixels 0..255 [B, h, w, 3] -> float32 logits [B, C]. A keras.Model needs
        images of its input size; an export resizes them in its graph."""
        if self.model is not None:
            return keras.ops.convert_to_numpy(self.model(images, training=False))
        serving = self.saved_model.signatures["serving_default"]
        return serving(images=tf.constant(images, tf.float32))["logits"].numpy()


def classifier_size(model: keras.Model) -> tuple:
    """(height, width, num_classes) of a classifier reszoo can serve (height/width None when
    free), or ExportError saying what is wrong with it."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} "
            "outputs; export needs one image input and one logits output"
        )
    in_shape = tuple(model.inputs[0].shape)
    out_shape = tuple(model.outputs[0].shape)
    if len(in_shape) != 4 or in_shape[-1] != 3:
        raise ExportError(
            f"model {model.name!r} takes {in_shape}; export needs RGB images "
            "[batch, height, width, 3]"
        )
    pooled = bool(model.layers) and "Pooling" in type(model.layers[-1]).__name__
    if len(out_shape) != 2 or not out_shape[-1] or pooled:
        raise ExportError(
            f"model {model.name!r} outputs {out_shape}, not logits [batch, classes]; export a "
            "model built with include_top=True"
        )
    return in_shape[1], in_shape[2], int(out_shape[-1])


# ---------------------------------------------------------------------------- simple kinds


def from_keras(model: keras.Model) -> ModelSource:
    return ModelSource(name=model.name, weights=None, model=model)


def from_zoo(name: str) -> ModelSource:
    """A zoo model built untrained (for plumbing: the serving path without weights)."""
    from reszoo.zoo import build, resolve_config

    try:
        config = resolve_config(name).to_dict()
        model = build(name)
    except UnknownModelError as e:
        raise ExportError(f"{name!r} is neither a zoo model nor a run directory: {e}") from e
    return ModelSource(name=name, weights="untrained (freshly built)", model=model, config=config)


def _version_dir(path: Path) -> Path:
    """An export's version directory: `path` itself, or its highest numeric version."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    if not versions:
        raise ExportError(f"{path} holds no SavedModel version (<n>/saved_model.pb)")
    return max(versions, key=lambda p: int(p.name))


def is_export(source) -> bool:
    if not isinstance(source, (str, os.PathLike)) or not os.path.isdir(source):
        return False
    path = Path(source)
    return (path / "saved_model.pb").is_file() or any(
        p.name.isdigit() and (p / "saved_model.pb").is_file() for p in path.iterdir()
    )


def from_export(path) -> ModelSource:
    """A SavedModel written by reszoo.export (a version directory, or the directory holding the
    versions: the highest is taken). Runs without reszoo's Keras model: `logits` calls the
    export's serving_default."""
    version = _version_dir(Path(path))
    metadata_path = version / "assets.extra" / METADATA_FILE
    metadata = read_metadata(metadata_path) if metadata_path.is_file() else {}
    try:
        loaded = tf.saved_model.load(str(version))
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise ExportError(f"cannot load the SavedModel {version}: {first_line(e)}") from e
    if "serving_default" not in loaded.signatures:
        raise ExportError(f"the SavedModel {version} has no serving_default signature")
    return ModelSource(
        name=metadata.get("model_name") or version.parent.name,
        weights=f"SavedModel {version}",
        class_names=metadata.get("class_names"),
        config=metadata.get("config"),
        summary=metadata.get("training_summary"),
        export_path=version,
        metadata=metadata,
        saved_model=loaded,
    )


# ---------------------------------------------------------------------------- run directories


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"cannot read {path}: {e}") from e
    if not isinstance(value, dict):
        raise ExportError(f"{path} must hold a JSON object, not {type(value).__name__}")
    return value


def _read_optional_json(path: Path) -> dict | None:
    try:
        return _read_json(path) if path.is_file() else None
    except ExportError:
        return None


def _newest_checkpoint(run_dir: Path) -> tuple | None:
    """(name, newest modification time of its files) of the highest-numbered ckpt-N on disk, or
    None. Found from the files themselves, not from the `checkpoint` state file."""
    found = {}
    for index in (run_dir / "checkpoints").glob("ckpt-*.index"):
        number = index.name[len("ckpt-") : -len(".index")]
        if number.isdigit():
            found[int(number)] = index
    if not found:
        return None
    index = found[max(found)]
    files = index.parent.glob(index.name[: -len(".index")] + ".*")
    return index.stem, max(p.stat().st_mtime for p in files)


@contextlib.contextmanager
def _dtype_policy(name: str, run_dir: Path):
    """The run's precision policy while its model is built or loaded: the export then computes
    what the trained model computed."""
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(name)
    except ValueError as e:
        raise ExportError(f"{run_dir}/config.json: precision {name!r}: {first_line(e)}") from e
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _build_kwargs(build: dict) -> dict:
    kwargs = dict(build.get("overrides") or {})
    if build.get("num_classes") is not None:
        kwargs["num_classes"] = build["num_classes"]
    if build.get("input_shape"):
        kwargs["input_shape"] = tuple(build["input_shape"])
    return kwargs


def _rebuild(build: dict, run_dir: Path) -> keras.Model:
    from reszoo.zoo import build as build_model

    try:
        return build_model(build["name"], **_build_kwargs(build))
    except (ReszooError, ValueError, TypeError, KeyError) as e:
        raise ExportError(
            f"cannot rebuild the model of {run_dir} from config.json: {first_line(e)}"
        ) from e


def _resolved_config(build: dict, run_dir: Path) -> dict:
    from reszoo.zoo import resolve_config

    fields = _build_kwargs(build)
    if "input_shape" in fields:
        fields["input_shape"] = list(fields["input_shape"])
    try:
        return resolve_config(build["name"], **fields).to_dict()
    except (ReszooError, ValueError, TypeError) as e:
        raise ExportError(f"cannot resolve the config of {run_dir}: {first_line(e)}") from e


def _load_keras_file(path: Path, newest_checkpoint) -> keras.Model:
    from reszoo.zoo import list_models

    list_models()  # registers the layer classes of reszoo and its plugins, which the file names
    problem = keras_archive_problem(path)  # weights stored in other files are never read
    if problem:
        raise ExportError(f"cannot load {path}: {problem}; it is not a model that loads safely")
    try:  # safe_mode: a Lambda's bytecode in someone else's model.keras is refused
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - a damaged zip or HDF5 file raises many kinds
        hint = (
            f"; move it away to export the latest checkpoint ({newest_checkpoint[0]})"
            if newest_checkpoint
            else ""
        )
        raise ExportError(
            f"cannot load {path}: {first_line(e)} (the file is damaged, truncated or not a "
            f"model that loads safely){hint}"
        ) from e


def _architecture(model: keras.Model):
    """The model's Keras config without the ids Keras numbers shared objects with."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "shared_object_id"}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return clean(json.loads(json.dumps(model.get_config(), default=str)))


def first_difference(saved, rebuilt, path: str = "") -> tuple | None:
    """(path, saved value, rebuilt value) of the first place two configs differ, or None.
    Lists of layers are labelled by layer name."""
    if isinstance(saved, dict) and isinstance(rebuilt, dict):
        for key in sorted(set(saved) | set(rebuilt)):
            found = first_difference(saved.get(key), rebuilt.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(saved, list) and isinstance(rebuilt, list) and len(saved) == len(rebuilt):
        for i, (a, b) in enumerate(zip(saved, rebuilt)):
            label = a.get("name") if isinstance(a, dict) and a.get("name") else i
            found = first_difference(a, b, f"{path}[{label!r}]")
            if found:
                return found
        return None
    return None if saved == rebuilt else (path.lstrip("."), saved, rebuilt)


def _verify_build(model: keras.Model, build: dict, run_dir: Path) -> None:
    """config.json's build entry must rebuild model.keras's architecture exactly."""
    found = first_difference(_architecture(model), _architecture(_rebuild(build, run_dir)))
    if found:
        where = found[0]
        saved, rebuilt = (json.dumps(value, default=str)[:120] for value in found[1:])
        raise ExportError(
            f"{run_dir}/config.json does not describe the model in model.keras: {where} is "
            f"{saved} in model.keras but {rebuilt} when rebuilt from config.json's build entry "
            "(edited after training?); restore config.json"
        )


def _load_checkpoint(model: keras.Model, run_dir: Path) -> str:
    from reszoo.training import load_checkpoint_weights

    try:
        step = load_checkpoint_weights(model, str(run_dir))
    except ReszooError as e:
        raise ExportError(f"cannot load the checkpoint of {run_dir}: {first_line(e)}") from e
    return f"{run_dir / 'checkpoints'} (step {step})"


def _run_model(run_dir: Path, build, newest) -> tuple:
    """(model, weights source) of a run directory; see the module docstring for the rules."""
    final = run_dir / "model.keras"
    if final.is_file():
        model = _load_keras_file(final, newest)
        if build:
            _verify_build(model, build, run_dir)
        if newest is not None and newest[1] > final.stat().st_mtime:
            return model, _load_checkpoint(model, run_dir)  # resumed, then interrupted
        return model, str(final)
    if not build:
        raise ExportError(
            f"{run_dir}/config.json has no 'build' entry and {run_dir} has no model.keras: "
            "the model cannot be rebuilt"
        )
    model = _rebuild(build, run_dir)
    return model, _load_checkpoint(model, run_dir)


def from_run(run_dir) -> ModelSource:
    """A reszoo.fit run directory: its model, weights, class names, config and summary."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ExportError(f"{run_dir} is a file, not a run directory or an export")
    if not run_dir.is_dir():
        raise ExportError(f"run directory {run_dir} does not exist")
    if not (run_dir / "config.json").is_file():
        raise ExportError(f"{run_dir} is not a reszoo run directory (no config.json)")
    run_config = _read_json(run_dir / "config.json")
    newest = _newest_checkpoint(run_dir)
    if newest is None and not (run_dir / "model.keras").is_file():
        raise ExportError(
            f"run directory {run_dir} has no checkpoint (checkpoints/) and no model.keras: "
            "nothing to export; train first"
        )
    build = run_config.get("build")
    with _dtype_policy(run_config.get("precision") or "float32", run_dir):
        model, weights = _run_model(run_dir, build, newest)
    return ModelSource(
        name=(build or {}).get("name") or run_config.get("model") or model.name,
        weights=weights,
        model=model,
        class_names=run_config.get("class_names"),
        config=_resolved_config(build, run_dir) if build else None,
        summary=_read_optional_json(run_dir / "summary.json"),
        run_dir=run_dir,
    )


# ---------------------------------------------------------------------------- the table


def _is_path_like(source) -> bool:
    return isinstance(source, os.PathLike) or (
        isinstance(source, str)
        and (os.path.isdir(source) or os.sep in source or source.startswith("."))
    )


# (what it is, does this source look like one, load it): tried in order.
SOURCE_KINDS = (
    ("a keras.Model", lambda source: isinstance(source, keras.Model), from_keras),
    ("an export directory", is_export, from_export),
    ("a run directory", _is_path_like, from_run),
    ("a zoo name", lambda source: isinstance(source, str), from_zoo),
)


def load(source) -> ModelSource:
    """The ModelSource of a keras.Model, an export directory, a run directory or a zoo name."""
    for _, matches, loader in SOURCE_KINDS:
        if matches(source):
            return loader(source)
    kinds = ", ".join(kind for kind, _, _ in SOURCE_KINDS)
    raise ExportError(f"model must be one of: {kinds}; got {type(source).__name__}")
