"""Feature extraction: which tensors a `features_only` model returns, and what each one is.

`out_indices` follow timm's meaning: index 0 is the stem's output, index i >= 1 the output of
stage i. Where reszoo differs from timm:

* reszoo's Stem layer includes the max-pool, so on ImageNet stems index 0 is at stride 4 (timm's
  index 0 is the stride-2 activation before the pool). On CIFAR stems it is at stride 1.
* The default is every stage, (1, ..., n), not (0, ..., n): index 0 has the same stride as stage 1
  in every built-in layout, and a feature model returns one map per stride.
* A stage that downsamples in its last block (downsample_at="last", keras.applications'
  ResNetV2 layout) has no output at its own resolution: its map is the last one computed there,
  the output of the block before the strided one. Every map is then at stride 4, 8, 16, 32 as in
  the other layouts.
* Pre-activation networks' maps are the raw stage outputs: the final BN-ReLU (`post_bn`,
  `post_relu`) belongs to the classifier, as in timm's ResNetV2 features and keras-hub's
  `pyramid_outputs`.

Each map is named after keras-hub's pyramid levels: "P{k}" for stride 2**k ("S{stride}" for a
stride that is not a power of two). Plain data, no Keras.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reszoo.choices import STEM_STRIDES
from reszoo.config import ModelConfig, short_repr
from reszoo.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class FeatureMap:
    """One output of a feature model. timm calls `stride` "reduction", `channels` "num_chs" and
    `layer` "module"."""

    name: str  # "P3": the output's key, log2 of the stride
    index: int  # 0 for the stem, i for stage i
    stride: int  # input size / map size
    channels: int
    layer: str  # the Keras layer whose output it is (same name as in the classifier)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def level_name(stride: int) -> str:
    """keras-hub's pyramid level name for a stride: 4 -> "P2", 32 -> "P5"."""
    level = stride.bit_length() - 1
    return f"P{level}" if stride == 1 << level else f"S{stride}"


def all_feature_maps(config: ModelConfig, plan: list[dict], expansion: int) -> list[FeatureMap]:
    """The map of every index, 0 (stem) to the number of stages, for a network and its block plan."""
    stride, channels, layer = STEM_STRIDES[config.stem], config.stem_width, "stem"
    maps = [FeatureMap(level_name(stride), 0, stride, channels, layer)]
    blocks = iter(plan)
    for index, depth in enumerate(config.depths, start=1):
        # (layer, stride, channels) after each step: the stage's input, then each of its blocks.
        steps = [(layer, stride, channels)]
        for block in (next(blocks) for _ in range(depth)):
            stride *= block["strides"]
            channels = block["filters"] * expansion
            layer = block["name"]
            steps.append((layer, stride, channels))
        working = steps[0][1] if config.downsample_at == "last" else steps[1][1]
        name, map_stride, map_channels = [step for step in steps if step[1] == working][-1]
        maps.append(FeatureMap(level_name(map_stride), index, map_stride, map_channels, name))
    return maps


def select_feature_maps(
    config: ModelConfig, plan: list[dict], expansion: int, out_indices: Any
) -> list[FeatureMap]:
    """The maps `out_indices` asks for (None: every stage), after checking the request."""
    maps = all_feature_maps(config, plan, expansion)
    stages = len(config.depths)
    if out_indices is None:
        return maps[1:]
    indices = _checked_indices(config.name, out_indices, stages)
    chosen = [maps[index] for index in indices]
    for first, second in zip(chosen, chosen[1:]):
        if first.stride == second.stride:
            raise ConfigError(
                f"out_indices {first.index} and {second.index} of {config.name!r} both give a "
                f"stride-{first.stride} map ({first.name}); a feature model returns one map per "
                f"stride: keep one of them"
            )
    return chosen


def _checked_indices(model: str, out_indices: Any, stages: int) -> tuple[int, ...]:
    usage = (
        f"{model!r} has {stages} stages: use indices 0 (the stem) to {stages}, "
        f"e.g. out_indices={tuple(range(1, stages + 1))}"
    )
    if not isinstance(out_indices, (list, tuple)) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in out_indices
    ):
        raise ConfigError(
            f"out_indices must be a list of stage numbers; got {short_repr(out_indices)}. {usage}"
        )
    if not out_indices:
        raise ConfigError(f"out_indices is empty: name at least one map. {usage}")
    outside = [i for i in out_indices if not 0 <= i <= stages]
    if outside:
        raise ConfigError(f"out_indices names stage {outside[0]}, which does not exist. {usage}")
    repeated = sorted({i for i in out_indices if out_indices.count(i) > 1})
    if repeated:
        raise ConfigError(f"out_indices repeats {repeated[0]}: name each map once. {usage}")
    if list(out_indices) != sorted(out_indices):
        raise ConfigError(
            f"out_indices must go from shallow to deep (increasing); got {tuple(out_indices)}, "
            f"use {tuple(sorted(out_indices))}"
        )
    return tuple(out_indices)


def check_feature_arguments(
    features_only: Any,
    out_indices: Any,
    include_top: Any,
    pooling: Any,
    num_classes: Any = None,
) -> None:
    """The build arguments that make no sense with (or without) features_only raise here."""
    if not isinstance(features_only, bool):
        raise ConfigError(f"features_only must be True or False; got {short_repr(features_only)}")
    if not features_only:
        if out_indices is not None:
            raise ConfigError(
                "out_indices chooses a feature model's maps: pass features_only=True too"
            )
        return
    head = "a feature model returns the feature maps and has no classifier"
    if include_top:
        raise ConfigError(f"include_top=True asks for the classifier, but {head}: drop include_top")
    if pooling is not None:
        raise ConfigError(
            f"pooling={pooling!r} pools the last map into a vector, but {head}: pool the maps "
            f"you need yourself, or build with include_top=False, pooling={pooling!r} instead"
        )
    if num_classes is not None:
        raise ConfigError(
            f"num_classes sets the classifier's outputs, but {head}: drop num_classes"
        )
