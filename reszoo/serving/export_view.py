"""The model as Keras's exporters should see it: float32, one named image input, named outputs.

Keras names an unnamed export input after an internal tensor and its outputs `output_0`, ...;
the artifacts of every format instead take `images` and return each output under the name the
Keras model gives it (`logits` for a reszoo classifier). ONNX and the mobile runtimes compute in
float32 (Keras's ONNX exporter requires a float32 dtype policy), so a model trained in mixed
precision is rebuilt in float32 with the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from reszoo.errors import ExportError

INPUT_NAME = "images"
_HALF_DTYPES = ("bfloat16", "float16")


@dataclass(frozen=True)
class ModelSpec:
    """What an exported artifact takes and returns: one image input, named outputs."""

    height: int | None
    width: int | None
    output_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple:
        return (None, self.height, self.width, 3)

    def input_signature(self) -> list:
        """Keras's export input_signature: the batch dimension free, the input named."""
        return [keras.InputSpec(shape=self.input_shape, dtype="float32", name=INPUT_NAME)]


def describe(model) -> ModelSpec:
    """The ModelSpec of an exportable model, or ExportError naming what is wrong with it."""
    if not isinstance(model, keras.Model):
        raise ExportError(f"export needs a keras.Model; got {type(model).__name__}")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as e:
        raise ExportError(
            f"model {model.name!r} has no defined inputs; export a functional model "
            "(reszoo.build returns one)"
        ) from e
    if len(inputs) != 1:
        raise ExportError(
            f"model {model.name!r} has {len(inputs)} inputs; export needs one image input"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ExportError(
            f"model {model.name!r} takes {shape}; export needs RGB images [batch, height, width, 3]"
        )
    names = tuple(named_outputs(model))
    if len(names) != len(outputs):
        raise ExportError(f"model {model.name!r} has outputs without distinct names: {names}")
    return ModelSpec(shape[1], shape[2], names)


def export_view(model, spec: ModelSpec):
    """A float32 functional model over the same weights whose outputs are a dict keyed by name.

    The dict is what makes every exporter name the outputs: LiteRT signatures, tf2onnx and
    OpenVINO all take the output names from the keys of the traced function's result.
    """
    if _computes_in_half_precision(model):
        model = float32_copy(model)
    outputs = named_outputs(model)
    return keras.Model(model.inputs[0], outputs, name=model.name)


def named_outputs(model) -> dict:
    """The model's outputs by name: a dict output's keys, else the output layers' names."""
    if isinstance(model.output, dict):
        return dict(model.output)
    return dict(zip(model.output_names, model.outputs))


def _computes_in_half_precision(model) -> bool:
    return any(
        getattr(layer, "compute_dtype", "float32") in _HALF_DTYPES
        for layer in [model, *model.layers]
    )


def float32_copy(model):
    """The same architecture and weights with every layer's dtype policy set to float32."""
    config = _float32_config(model.get_config())
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = model.__class__.from_config(config)
    except (TypeError, ValueError) as e:
        raise ExportError(
            f"model {model.name!r} computes in {model.dtype_policy.name} and could not be "
            f"rebuilt in float32 for export ({e}); build it under the float32 policy"
        ) from e
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _float32_config(value):
    """`value` (a Keras config) with mixed/half dtype policies and dtypes replaced by float32."""
    if isinstance(value, list):
        return [_float32_config(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        return {**value, "config": {**value.get("config", {}), "name": "float32"}}
    return {
        key: "float32"
        if key == "dtype" and item in _HALF_DTYPES + ("mixed_bfloat16", "mixed_float16")
        else _float32_config(item)
        for key, item in value.items()
    }
