"""reszoo.export: a SavedModel that TF Serving loads as it is (no reszoo, no Python on the server).

    import reszoo
    reszoo.export(model, "exported/resnet20", class_names=["airplane", ...])  # -> .../1
    python -m reszoo.export runs/resnet20-digits exported/resnet20    # a run directory
    python -m reszoo.export resnet50 exported/resnet50 --version 3     # untrained: for plumbing

Layout (TF Serving's model_base_path): EXPORT_DIR/<version>/ with saved_model.pb, variables/,
assets/class_names.txt (one name a line, line i = class i; a lookup table in the graph reads it)
and assets.extra/ (reszoo_metadata.json; tf_serving_warmup_requests). <version> is an integer,
by default one more than the highest present; an existing version is replaced only with
overwrite=True. Everything is written into a hidden temporary directory inside EXPORT_DIR (TF
Serving ignores non-numeric names) and renamed into place, so a version is complete or absent.

Signatures (every one takes any batch size >= 1; normalization is inside the graph):

    serving_default      images       float32 [-1, -1, -1, 3]  RGB pixel values 0..255
    serving_uint8        images       uint8   [-1, -1, -1, 3]  RGB pixels
    serving_image_bytes  image_bytes  string  [-1]             encoded JPEG/PNG/GIF/BMP files

    outputs (all three): logits float32 [-1, C], probabilities float32 [-1, C] (softmax),
                         classes int64 [-1] (argmax), class_names string [-1]

Images whose height and width differ from the model's input size are resized to it in the graph
(bilinear, aspect ratio not kept); images of the model's size go in unchanged. Bad requests fail
with InvalidArgument errors that name the input: a wrong rank or channel count ("Shape of tensor
images [...] is not compatible with expected shape [?,?,?,3]"), an empty batch, an image without
pixels, bytes that are not an image; a wrong dtype is refused before the graph runs. The network
computes in the dtype policy of the model exported (a run directory: the run's precision).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from reszoo.errors import ExportError, ReszooError, first_line
from reszoo.paths import uncreatable_reason
from reszoo.training.rundir import package_versions

SIGNATURES = {
    "serving_default": ("images", tf.float32),
    "serving_uint8": ("images", tf.uint8),
    "serving_image_bytes": ("image_bytes", tf.string),
}
OUTPUTS = ("logits", "probabilities", "classes", "class_names")
CLASS_NAMES_FILE = "class_names.txt"
METADATA_FILE = "reszoo_metadata.json"
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_VERSION = 1
_TMP_PREFIX = ".reszoo-export-tmp-"


# ----------------------------------------------------------------------------- the serving graph


def _serving_module(
    model: keras.Model, class_names_path: str, height: int, width: int, num_classes: int
) -> tuple[tf.Module, dict]:
    """A tf.Module holding the model's variables and the class-name table, and its signatures.

    The Keras model is only closed over, never tracked: the SavedModel's object graph holds
    plain variables, a lookup table and functions, which tf.saved_model.load and TF Serving
    restore without Keras or reszoo.
    """
    module = tf.Module()
    module.model_variables = list(model.variables)
    module.class_table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            class_names_path,
            key_dtype=tf.int64,
            key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            value_dtype=tf.string,
            value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        ),
        default_value="",
    )

    # One trace of the network, shared by the three signatures.
    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)])
    def run_model(images):
        return model(images, training=False)

    def to_model_size(images):
        """float32 [B, h, w, 3] or [h, w, 3] -> the model's height and width."""
        size = tf.shape(images)[-3:-1]
        same = tf.reduce_all(tf.equal(size, [height, width]))
        images = tf.cond(
            same,
            lambda: images,
            lambda: tf.image.resize(images, [height, width], method="bilinear"),
        )
        return images

    def check_images(images):
        # The signature's shape is not enforced when a server feeds a tensor: check it here,
        # first, so a wrong rank or channel count fails with a message that names the input.
        return tf.ensure_shape(
            images, [None, None, None, 3], name="images_must_be_batch_height_width_3"
        )

    def predict(images):
        """float32 pixels [B, h, w, 3] -> the output dict."""
        shape = tf.shape(images)
        checks = [
            tf.debugging.assert_positive(shape[0], message="empty batch: send at least one image"),
            tf.debugging.assert_positive(
                shape[1:3], message="every image needs a height and width of at least 1 pixel"
            ),
        ]
        with tf.control_dependencies(checks):
            images = tf.ensure_shape(to_model_size(images), [None, height, width, 3])
        logits = tf.cast(run_model(images), tf.float32)
        logits = tf.ensure_shape(logits, [None, num_classes])
        classes = tf.argmax(logits, axis=-1, output_type=tf.int64)
        return {
            "logits": tf.identity(logits, name="logits"),
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "classes": classes,
            "class_names": module.class_table.lookup(classes),
        }

    def decode_one(data):
        image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
        image = tf.ensure_shape(image, [None, None, 3])
        checks = [
            tf.debugging.assert_positive(
                tf.shape(image)[:2], message="image_bytes: a decoded image has no pixels"
            )
        ]
        with tf.control_dependencies(checks):
            image = to_model_size(tf.cast(image, tf.float32))
        return tf.ensure_shape(image, [height, width, 3])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def serving_default(images):
        return predict(check_images(images))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serving_uint8(images):
        return predict(tf.cast(check_images(images), tf.float32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serving_image_bytes(image_bytes):
        image_bytes = tf.ensure_shape(
            image_bytes, [None], name="image_bytes_must_be_a_list_of_encoded_images"
        )
        head = tf.strings.substr(image_bytes, 0, 4)
        known = tf.reduce_any(
            tf.stack(
                [
                    tf.strings.substr(image_bytes, 0, 3) == b"\xff\xd8\xff",  # JPEG
                    head == b"\x89PNG",
                    head == b"GIF8",
                    tf.strings.substr(image_bytes, 0, 2) == b"BM",
                ]
            ),
            axis=0,
        )
        checks = [
            tf.debugging.assert_positive(
                tf.size(image_bytes), message="empty batch: send at least one image"
            ),
            tf.debugging.Assert(
                tf.reduce_all(known),
                [
                    "image_bytes: every element must be an encoded JPEG, PNG, GIF or BMP file; "
                    "element(s) not recognised:",
                    tf.where(tf.logical_not(known))[:, 0],
                ],
            ),
        ]
        with tf.control_dependencies(checks):
            images = tf.map_fn(
                decode_one,
                image_bytes,
                fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
            )
        return predict(images)

    module.serving_default = serving_default
    module.serving_uint8 = serving_uint8
    module.serving_image_bytes = serving_image_bytes
    signatures = {
        "serving_default": serving_default.get_concrete_function(),
        "serving_uint8": serving_uint8.get_concrete_function(),
        "serving_image_bytes": serving_image_bytes.get_concrete_function(),
    }
    return module, signatures


# ------------------------------------------------------------------------- TF Serving warm-up


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2: strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(model_name: str, signature_name: str, inputs: dict) -> bytes:
    """A serialized tensorflow.serving.PredictionLog holding one PredictRequest.

    Written in protobuf's wire format by hand, from the field numbers of
    tensorflow_serving/apis/{prediction_log,predict,model}.proto: PredictionLog.predict_log = 6,
    PredictLog.request = 1, PredictRequest.model_spec = 1 and inputs = 2 (a map: entries with
    key = 1, value = 2), ModelSpec.name = 1 and signature_name = 3. The tensors are TensorFlow's
    own TensorProto (tf.make_tensor_proto). This avoids tensorflow-serving-api, which depends on
    the `tensorflow` distribution and would install a second TensorFlow next to tensorflow-cpu.
    """
    spec = _field(1, model_name.encode()) + _field(3, signature_name.encode())
    request = _field(1, spec)
    for name in sorted(inputs):
        tensor = tf.make_tensor_proto(inputs[name]).SerializeToString()
        request += _field(2, _field(1, name.encode()) + _field(2, tensor))
    return _field(6, _field(1, request))


def warmup_requests(model_name: str, height: int, width: int) -> list[bytes]:
    """One batch-of-one request per signature (a mid-grey image), as serialized PredictionLogs."""
    grey = np.full((1, height, width, 3), 128, np.uint8)
    png = tf.io.encode_png(grey[0]).numpy()
    return [
        prediction_log(model_name, "serving_default", {"images": grey.astype(np.float32)}),
        prediction_log(model_name, "serving_uint8", {"images": grey}),
        prediction_log(
            model_name, "serving_image_bytes", {"image_bytes": np.array([png], dtype=object)}
        ),
    ]


# ------------------------------------------------------------------------------ inputs


def _check_class_names(class_names, num_classes: int, source: str = "class_names") -> list[str]:
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise ExportError(f"{source} must be a list of strings, one per class; got {class_names!r}")
    names = []
    for i, name in enumerate(class_names):
        if isinstance(name, bytes):
            name = name.decode("utf-8")
        if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
            name = str(name)
        if not isinstance(name, str):
            raise ExportError(f"{source}[{i}] must be a string; got {name!r}")
        if not name or "\n" in name or "\r" in name:
            raise ExportError(f"{source}[{i}] must be a non-empty string on one line; got {name!r}")
        names.append(name)
    if len(names) != num_classes:
        raise ExportError(
            f"{len(names)} class names for a model with {num_classes} classes "
            f"({source}); give exactly one name per class"
        )
    return names


def read_class_names(path) -> list[str]:
    """Class names from a file: a JSON list, or one name per line (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ExportError(f"cannot read class names from {path}: {e.strerror or e}") from e
    if str(path).endswith(".json"):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as e:
            raise ExportError(f"{path} is not valid JSON ({e}); expected a list of names") from e
        if not isinstance(names, list):
            raise ExportError(f"{path} must hold a JSON list of class names")
        return names
    return [line.strip() for line in text.splitlines() if line.strip()]


def _check_model(model) -> tuple[int, int, int]:
    """(height, width, num_classes) of an exportable classifier, or ExportError."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"model {model.name!r} has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; export needs one image input and one "
            "logits output"
        )
    in_shape = tuple(model.inputs[0].shape)
    out_shape = tuple(model.outputs[0].shape)
    if len(in_shape) != 4 or in_shape[-1] != 3:
        raise ExportError(
            f"model {model.name!r} takes {in_shape}; export needs RGB images "
            "[batch, height, width, 3]"
        )
    if in_shape[1] is None or in_shape[2] is None:
        raise ExportError(
            f"model {model.name!r} has no fixed input size {in_shape}; rebuild it "
            "with input_shape=(height, width, 3) so encoded images can be resized "
            "to it"
        )
    pooled = bool(model.layers) and "Pooling" in type(model.layers[-1]).__name__
    if len(out_shape) != 2 or not out_shape[-1] or pooled:
        raise ExportError(
            f"model {model.name!r} outputs {out_shape}, not logits [batch, "
            "classes]; export a model built with include_top=True"
        )
    return int(in_shape[1]), int(in_shape[2]), int(out_shape[-1])


def _existing_versions(export_dir: Path) -> dict[int, str]:
    return {int(n): n for n in os.listdir(export_dir) if n.isdigit()}


def check_export_dir(export_dir: Path, version, overwrite: bool) -> int | None:
    """Validate the destination before any work; the version to write (None: the next one)."""
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
            raise ExportError(f"version must be a positive integer; got {version!r}")
        version = int(version)
    if export_dir.exists() and not export_dir.is_dir():
        raise ExportError(
            f"export directory {export_dir} is a file, not a directory; "
            "choose a directory (TF Serving's model_base_path)"
        )
    reason = None if export_dir.exists() else uncreatable_reason(export_dir)
    if reason:
        raise ExportError(f"export directory {export_dir} cannot be created: {reason}")
    if (
        export_dir.is_dir()
        and version is not None
        and not overwrite
        and version in _existing_versions(export_dir)
    ):
        raise ExportError(
            f"version {version} already exists in {export_dir}; pass "
            "overwrite=True (--overwrite) to replace it, or another version"
        )
    return version


def _is_run_dir(source) -> bool:
    return isinstance(source, os.PathLike) or (
        isinstance(source, str)
        and (os.path.isdir(source) or os.sep in source or source.startswith("."))
    )


def _load_run(run_dir: Path):
    """(model, model_name, config, class_names, summary, weights_source) from a reszoo.fit run."""
    if not run_dir.is_dir():
        raise ExportError(f"run directory {run_dir} does not exist")
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ExportError(f"{run_dir} is not a reszoo run directory (no config.json)")
    try:
        run_config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"cannot read {config_path}: {e}") from e
    checkpoint = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    final = run_dir / "model.keras"
    if checkpoint is None and not final.is_file():
        raise ExportError(
            f"run directory {run_dir} has no checkpoint (checkpoints/) and no "
            "model.keras: nothing to export; train first"
        )
    summary = None
    if (run_dir / "summary.json").is_file():
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            summary = None
    # The final model.keras, unless a newer checkpoint exists (a resumed run, interrupted).
    use_final = final.is_file() and (
        checkpoint is None
        or os.path.getmtime(final)
        >= max(os.path.getmtime(p) for p in tf.io.gfile.glob(checkpoint + ".*"))
    )
    build = run_config.get("build")
    config = None
    if build:
        from reszoo.zoo import build as build_model
        from reszoo.zoo import resolve_config

        overrides = dict(build.get("overrides") or {})
        kwargs = dict(
            num_classes=build.get("num_classes"),
            input_shape=tuple(build["input_shape"]) if build.get("input_shape") else None,
        )
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        # The run's precision policy: the export computes what the trained model computed.
        previous_policy = keras.config.dtype_policy()
        try:
            keras.config.set_dtype_policy(run_config.get("precision") or "float32")
            model = build_model(build["name"], **kwargs, **overrides)
            fields = dict(overrides)
            if "num_classes" in kwargs:
                fields["num_classes"] = kwargs["num_classes"]
            if "input_shape" in kwargs:
                fields["input_shape"] = list(kwargs["input_shape"])
            config = resolve_config(build["name"], **fields).to_dict()
        except (ReszooError, ValueError) as e:
            raise ExportError(f"cannot rebuild the model of {run_dir} from config.json: {e}") from e
        finally:
            keras.config.set_dtype_policy(previous_policy)
        name = build["name"]
        if use_final:
            model.load_weights(str(final))
            source = str(final)
        else:
            try:  # fit's checkpoints: tf.train.Checkpoint(model=..., optimizer=..., ...)
                tf.train.Checkpoint(model=model).read(
                    checkpoint
                ).expect_partial().assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as e:
                raise ExportError(
                    f"checkpoint {checkpoint} does not match the model in "
                    f"{config_path}: {str(e).splitlines()[0]}"
                ) from e
            source = checkpoint
    elif final.is_file():
        # A keras.Model passed to reszoo.fit: its architecture lives in model.keras only.
        try:  # safe_mode: a Lambda's bytecode in someone else's model.keras is refused
            model = keras.saving.load_model(str(final), compile=False, safe_mode=True)
        except (ValueError, TypeError, OSError) as e:
            raise ExportError(f"cannot load {final}: {first_line(e)}") from e
        name, source = run_config.get("model") or model.name, str(final)
    else:
        raise ExportError(
            f"{config_path} has no 'build' entry and {run_dir} has no model.keras: "
            "the model cannot be rebuilt"
        )
    return model, name, config, run_config.get("class_names"), summary, source


# ------------------------------------------------------------------------------ export


def export(
    model,
    export_dir,
    *,
    version=None,
    class_names=None,
    model_name=None,
    config=None,
    summary=None,
    overwrite=False,
) -> Path:
    """Write `model` as EXPORT_DIR/<version>/, a SavedModel for TF Serving; returns that path.

    model: a keras.Model (one image input, logits out), a zoo name (built untrained) or a
        reszoo.fit run directory (a str/Path; rebuilt from config.json, weights from
        model.keras or the latest checkpoint, class names and summary.json from the run).
    version: a positive integer; None: one more than the highest version present (1 at first).
    class_names: one string per class (default: the run's, else "0", "1", ...).
    model_name, config, summary: recorded in assets.extra/reszoo_metadata.json (defaults: the
        model's name, its resolved registry config when known, the run's summary.json).
    overwrite: replace an existing version.

    Raises ExportError (a ValueError) for bad input; nothing is left half-written.
    """
    export_dir = Path(export_dir)
    version = check_export_dir(export_dir, version, overwrite)
    weights_source = None
    run_dir = None
    if isinstance(model, keras.Model):
        keras_model = model
    elif _is_run_dir(model):
        run_dir = Path(model)
        keras_model, name, run_config, run_names, run_summary, weights_source = _load_run(run_dir)
        model_name = model_name or name
        config = config if config is not None else run_config
        summary = summary if summary is not None else run_summary
        class_names = class_names if class_names is not None else run_names
    elif isinstance(model, str):
        from reszoo.errors import UnknownModelError
        from reszoo.zoo import build, resolve_config

        try:
            config = config if config is not None else resolve_config(model).to_dict()
            keras_model = build(model)
        except UnknownModelError as e:
            raise ExportError(f"{model!r} is neither a zoo model nor a run directory: {e}") from e
        model_name = model_name or model
        weights_source = "untrained (freshly built)"
    else:
        raise ExportError(
            f"model must be a keras.Model, a zoo name or a run directory; got "
            f"{type(model).__name__}"
        )
    height, width, num_classes = _check_model(keras_model)
    names = _check_class_names(class_names, num_classes)
    model_name = model_name or keras_model.name
    if summary is not None and not isinstance(summary, dict):
        summary_path = Path(summary)
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ExportError(f"cannot read the training summary {summary_path}: {e}") from e

    created = not export_dir.exists()
    try:
        export_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=export_dir))
    except OSError as e:
        if created:
            shutil.rmtree(export_dir, ignore_errors=True)
        raise ExportError(
            f"cannot write into export directory {export_dir}: {e.strerror or e}"
        ) from e
    scratch = Path(tempfile.mkdtemp(prefix="reszoo-export-"))
    try:
        names_path = scratch / CLASS_NAMES_FILE
        names_path.write_text("".join(n + "\n" for n in names), encoding="utf-8")
        module, signatures = _serving_module(
            keras_model, str(names_path), height, width, num_classes
        )
        saved = tmp / "saved"
        tf.saved_model.save(module, str(saved), signatures=signatures)
        extra = saved / "assets.extra"
        extra.mkdir(exist_ok=True)
        with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
            for record in warmup_requests(export_dir.resolve().name, height, width):
                writer.write(record)
        auto_version = version is None
        if auto_version:
            version = max(_existing_versions(export_dir), default=0) + 1
        metadata = {
            "metadata_version": METADATA_VERSION,
            "model_name": model_name,
            "version": version,
            "exported_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "input_size": [height, width],
            "num_classes": num_classes,
            "class_names": names,
            "signatures": {
                name: {"inputs": {key: dtype.name}, "outputs": list(OUTPUTS)}
                for name, (key, dtype) in SIGNATURES.items()
            },
            "weights_source": weights_source,
            "run_dir": str(run_dir) if run_dir else None,
            "dtype_policy": keras_model.dtype_policy.name,
            "config": config,
            "training_summary": summary,
            "versions": package_versions(),
        }
        (extra / METADATA_FILE).write_text(
            json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n"
        )
        while True:
            target = export_dir / str(version)
            if auto_version and target.exists():  # another export took it meanwhile
                version = max(_existing_versions(export_dir), default=0) + 1
                metadata["version"] = version
                (extra / METADATA_FILE).write_text(
                    json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n"
                )
                continue
            _move_into_place(saved, target, overwrite)
            return target
    except BaseException:
        if created:
            shutil.rmtree(export_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _move_into_place(saved: Path, target: Path, overwrite: bool) -> None:
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise ExportError(
                f"version {target.name} already exists in {target.parent}; pass "
                "overwrite=True (--overwrite) to replace it, or another version"
            )
        trash = saved.parent / "replaced"
        os.rename(target, trash)
        try:
            os.rename(saved, target)
        except OSError:
            os.rename(trash, target)
            raise
        return
    try:
        os.rename(saved, target)
    except OSError as e:  # another export took this version in the meantime
        raise ExportError(f"cannot create {target}: {e.strerror or e}") from e
