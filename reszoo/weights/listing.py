"""Tables of weight tags for `reszoo list`: one line per model, or every tag."""

from __future__ import annotations

import fnmatch

from reszoo.weights.tags import WeightTag, default_tag, get_tag, list_tags, models_with_weights


def default_weights_cell(model: str) -> str:
    """'a1_in1k 81.24@288' for `reszoo list`, '-' for a model without weights."""
    tag = default_tag(model)
    if tag is None:
        return "-"
    weights = get_tag(model, tag)
    return f"{tag} {weights.top1:.2f}@{weights.eval_transform.image_size}"


def _row(weights: WeightTag) -> tuple:
    transform = weights.eval_transform
    return (
        weights.model,
        weights.tag + (" *" if weights.is_default else ""),
        f"{weights.top1:.2f}",
        "-" if weights.top5 is None else f"{weights.top5:.2f}",
        f"{transform.image_size} / {transform.crop_fraction:g} {transform.interpolation}",
        str(weights.train_size),
        weights.preprocessing.mode,
        weights.license,
    )


def weights_table(pattern: str = "*") -> str:
    """Every weight tag of the models matching `pattern`; '*' marks each model's default."""
    header = ("model", "tag", "top-1", "top-5", "eval size / crop", "train", "preproc", "licence")
    rows = [
        _row(get_tag(model, tag))
        for model in models_with_weights()
        if fnmatch.fnmatchcase(model, pattern)
        for tag in list_tags(model)
    ]
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
