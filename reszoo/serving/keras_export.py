"""What every export through Keras's own exporters (`model.export(format=...)`) shares.

A format is a `KerasFormat`: its name, the pip extra that installs its converter and runtime,
the file it writes, and hooks for what differs (converter arguments, a check of the converted
file, the operations a converter error names, embedding and reading metadata, running the file
with its runtime). `write` does the rest the same way for every format:

    check the options and the model (nothing written yet)
    -> in a hidden directory beside the target: convert through `model.export(format=...)`,
       embed the metadata, run the artifact with its own runtime on probe images and record how
       far its outputs are from the Keras model's, write reszoo_metadata.json
    -> rename the directory into place (an existing one only with overwrite=True)

so a failed export leaves nothing behind, and every artifact written has been loaded and run by
the runtime users will run it with.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from reszoo.errors import ExportError, first_line
from reszoo.serving import export_view as views
from reszoo.serving.representative import DEFAULT_COUNT, representative_images
from reszoo.serving.staging import staged_directory

METADATA_FILE = "reszoo_metadata.json"
METADATA_KEY = "reszoo_metadata"  # the key under which each format embeds the same JSON
COMMON_OPTIONS = {
    "overwrite": False,
    "representative_data": None,
    "representative_count": DEFAULT_COUNT,
}
# What an operation a converter leaves unconverted usually comes from, for the error message.
OPERATION_ORIGINS = {
    "StatefulPartitionedCall": (
        "a nested TensorFlow function the converter keeps whole; Keras's TensorFlow backend "
        "compiles grouped convolutions (ResNeXt) with XLA into one"
    ),
}
PROBE_IMAGES = 4
PROBE_SIZE = 64  # for a free height or width: any size of at least the network's stride


@dataclass(frozen=True)
class KerasFormat:
    """An export format reached through Keras's `model.export(format=keras_format)`."""

    name: str
    extra: str  # pip install "reszoo[<extra>]" installs the converter and the runtime
    file_name: str
    keras_format: str
    modules: tuple[str, ...]  # what must import: the converter(s), then the runtime
    runtime: str  # the runtime's module, whose version the verification records

    OPTIONS: ClassVar[dict] = {}  # format-specific options and their defaults

    # ------------------------------------------------------------------ hooks of a format

    def export_kwargs(self, options: dict, images: np.ndarray | None) -> dict:
        """Extra keyword arguments for `model.export` (converter settings)."""
        return {}

    def check_artifact(self, path: Path, model) -> None:
        """Raise ExportError when the converter wrote a file its runtime cannot load."""

    def unsupported_ops(self, error_text: str) -> list[str]:
        """The operations a converter error names as impossible to express in this format."""
        return []

    def embed_metadata(self, path: Path, text: str) -> None:
        """Store `text` (the metadata JSON) inside the artifact, as the format allows."""
        raise NotImplementedError

    def read_embedded_metadata(self, path: Path) -> str:
        """The metadata JSON embedded in an artifact, read the way the format's runtime reads it."""
        raise NotImplementedError

    def load(self, path: Path, threads: int | None = None):
        """The artifact in its runtime: a function images [N, h, w, 3] -> {output name: array}."""
        raise NotImplementedError

    def record_options(self, options: dict) -> dict:
        """The options worth recording in the metadata (a quantization mode, an opset)."""
        return {}

    def calibration(self, options: dict) -> str | None:
        """What needs representative images under these options (None: nothing does)."""
        return None

    # ------------------------------------------------------------------ the shared pipeline

    @property
    def artifact_files(self) -> tuple[str, ...]:
        return (self.file_name,)

    def check_available(self) -> None:
        """ExportError naming the pip extra when the converter or the runtime does not import."""
        for module in self.modules:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise ExportError(
                    f"exporting to {self.name} needs the {module.split('.')[0]!r} package, "
                    f"which cannot be imported ({first_line(e)}): "
                    f'pip install "reszoo[{self.extra}]"'
                ) from e

    def resolve_options(self, options: dict | None) -> dict:
        """The options with their defaults (None means the default); ExportError for a name
        this format does not take."""
        known = {**COMMON_OPTIONS, **self.OPTIONS}
        options = dict(options or {})
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ExportError(
                f"format {self.name!r} takes no option(s) {', '.join(map(repr, unknown))}; "
                f"its options: {', '.join(sorted(known))}"
            )
        return {**known, **{k: v for k, v in options.items() if v is not None}}

    def write(
        self, model, target_dir, *, metadata: dict | None, options: dict | None
    ) -> list[Path]:
        """Export `model` as TARGET_DIR/<file_name> plus reszoo_metadata.json; the files written.

        metadata: what the SavedModel records (class names, preprocessing, input size, ...);
            written beside the artifact and embedded in it, with an "export_format" entry added.
        options: "overwrite" (replace an existing TARGET_DIR), "representative_data" and
            "representative_count" (see reszoo.serving.representative), and the format's own.
        """
        if metadata is not None and not isinstance(metadata, dict):
            raise ExportError(f"metadata must be a dict; got {type(metadata).__name__}")
        metadata = dict(metadata or {})
        options = self.resolve_options(options)
        self.check_available()
        spec = views.describe(model)
        images = self._representative(spec, options)
        kwargs = self.export_kwargs(options, images)
        target = Path(target_dir)
        with staged_directory(target, bool(options["overwrite"])) as staging:
            artifact = staging / self.file_name
            view = views.export_view(model, spec)
            self._convert(view, artifact, spec, kwargs)
            record = {**metadata, "export_format": self._format_record(spec, options)}
            self.embed_metadata(artifact, _to_json(record))
            probe = images[:PROBE_IMAGES] if images is not None else _probe_images(spec)
            record["verification"] = self._verify(artifact, view, probe)
            (staging / METADATA_FILE).write_text(_to_json(record))
        return sorted(target / name for name in (*self.artifact_files, METADATA_FILE))

    def _representative(self, spec, options: dict) -> np.ndarray | None:
        source = options["representative_data"]
        if source is None:
            reason = self.calibration(options)
            if reason:
                raise ExportError(
                    f"{reason} calibrates on representative images and none were given: "
                    "pass representative_data "
                    "(--representative-data): a run directory, an image folder, a dataset "
                    "name or an array of images"
                )
            return None
        size = (spec.height, spec.width) if spec.height and spec.width else None
        return representative_images(source, size, options["representative_count"])

    def _convert(self, view, artifact: Path, spec, kwargs: dict) -> None:
        """`view.export(format=...)`; a converter's refusal becomes one ExportError."""
        try:
            view.export(
                str(artifact),
                format=self.keras_format,
                verbose=False,
                input_signature=spec.input_signature(),
                **kwargs,
            )
        except Exception as e:  # noqa: BLE001 - every converter has its own exception types
            raise self._conversion_error(view, e) from e
        self.check_artifact(artifact, view)

    def _conversion_error(self, model, error: Exception) -> ExportError:
        ops = self.unsupported_ops(str(error))
        if not ops:
            return ExportError(
                f"the {self.name} converter failed on model {model.name!r}: {first_line(error)}"
            )
        return unsupported_error(self.name, model, ops)

    def _format_record(self, spec, options: dict) -> dict:
        return {
            "name": self.name,
            "files": list(self.artifact_files),
            "inputs": {
                views.INPUT_NAME: {
                    "dtype": "float32",
                    "shape": [-1 if d is None else d for d in spec.input_shape],
                    "values": "RGB pixel values 0..255 (normalization is inside the model)",
                }
            },
            "outputs": list(spec.output_names),
            "embedded_metadata_key": METADATA_KEY,
            "converter_packages": _versions(self.modules),
            **self.record_options(options),
        }

    def _verify(self, artifact: Path, view, images: np.ndarray) -> dict:
        """Run the artifact with its runtime and the Keras model on the same images."""
        try:
            got = self.load(artifact)(images)
        except Exception as e:  # noqa: BLE001 - a runtime refusing the file it was given
            raise ExportError(
                f"the {self.name} artifact of model {view.name!r} does not run in "
                f"{self.runtime}: {first_line(e)}"
            ) from e
        expected = {k: np.asarray(v) for k, v in view(images, training=False).items()}
        outputs = {}
        for name, want in expected.items():
            if name not in got or np.shape(got[name]) != want.shape:
                raise ExportError(
                    f"the {self.name} artifact returns {sorted(got)} with shapes "
                    f"{[np.shape(v) for v in got.values()]}; expected {name!r} {want.shape}"
                )
            difference = float(np.max(np.abs(np.asarray(got[name], np.float64) - want)))
            scale = float(np.max(np.abs(want))) or 1.0
            outputs[name] = {"max_abs_difference": difference, "max_relative": difference / scale}
        runtime = f"{self.runtime} {_version(self.runtime)}"
        return {"runtime": runtime, "images": len(images), "outputs": outputs}


# ---------------------------------------------------------------------------------- helpers


def unsupported_error(format_name: str, model, ops: list[str]) -> ExportError:
    """ExportError naming the operations a format lacks and the layers that use them."""
    ops = sorted(set(ops))
    layers = _layers_using(model, ops)
    where = f" (used by layer(s) {', '.join(layers)})" if layers else ""
    origins = "".join(f"; {op} is {OPERATION_ORIGINS[op]}" for op in ops if op in OPERATION_ORIGINS)
    return ExportError(
        f"{format_name} cannot express model {model.name!r}: no {format_name} operation for "
        f"{', '.join(ops)}{where}{origins}; replace that computation with Keras ops the format "
        "supports, or export another format"
    )


def _layers_using(model, ops: list[str]) -> list[str]:
    """The model's layers whose TensorFlow graph holds one of `ops` (traced once, by name)."""
    import tensorflow as tf

    spec = views.describe(model)
    graph = (
        tf.function(lambda images: model(images, training=False))
        .get_concrete_function(tf.TensorSpec(spec.input_shape, tf.float32))
        .graph
    )
    paths = ["/" + op.name for op in graph.get_operations() if op.type in ops]
    return [
        layer.name
        for layer in model.layers
        if any(re.search(rf"/{re.escape(layer.name)}(_\d+)?/", path) for path in paths)
    ]


def _probe_images(spec) -> np.ndarray:
    """Reproducible pixels 0..255 (a free height or width gets PROBE_SIZE)."""
    shape = (PROBE_IMAGES, spec.height or PROBE_SIZE, spec.width or PROBE_SIZE, 3)
    return np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)


def _to_json(record: dict) -> str:
    return json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"


def _version(module: str) -> str | None:
    """A package's version from its module (tensorflow-cpu installs the module tensorflow)."""
    top = module.split(".")[0]
    version = getattr(importlib.import_module(top), "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(top.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            pass
    return version


def _versions(modules) -> dict:
    return {top: _version(top) for top in sorted({m.split(".")[0] for m in modules})}
