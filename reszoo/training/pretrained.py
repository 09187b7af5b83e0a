"""A run that starts from pretrained weights (``weights=`` / ``--weights``).

The weights decide part of the architecture (a tag's preprocessing), which is recorded in
config.json's "build" so that export, evaluate and resume rebuild the same model without them.
They are loaded only when the run starts: a resumed run takes its trained weights from its
checkpoint, and the weights file need not exist any more. A tag also gives the image size its
weights were trained at, used when the config does not set one.
"""

from __future__ import annotations

import os

from reszoo.training import checkpoint_store


def build_overrides(name: str, config) -> dict:
    """The architecture overrides of the run: the weights' own, then the user's."""
    if config.weights is None:
        return dict(config.overrides)
    from reszoo.weights import weights_overrides

    return {**weights_overrides(name, config.weights), **config.overrides}


def weights_to_load(config, output_dir) -> str | None:
    """``config.weights``, or None when the run resumes from a checkpoint (trained weights win).

    Only the files are listed: the restore reads the checkpoint, and refuses a directory whose
    checkpoints all fail to read, so reading it here too would only double the work."""
    if config.weights is None or output_dir is None:
        return config.weights
    on_disk = checkpoint_store.list_checkpoints(os.path.join(output_dir, "checkpoints"))
    return None if any(c.problem is None for c in on_disk) else config.weights


def tag_image_size(name: str, config) -> tuple[int, int] | None:
    """A weight tag's training size, when the config sets no image size (None otherwise)."""
    from reszoo.weights.tags import is_tag_name

    if config.weights is None or config.image_size or not is_tag_name(name, config.weights):
        return None
    from reszoo.weights import weights_inputs

    size = weights_inputs(name, config.weights).train_size
    return (size, size)


def record(name: str, config) -> dict:
    """What config.json's "build" says about the starting weights."""
    if config.weights is None:
        return {}
    from reszoo.weights import source_description

    return {"weights": config.weights, "weights_source": source_description(name, config.weights)}
