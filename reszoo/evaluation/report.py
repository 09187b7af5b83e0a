"""What evaluate shows and writes: the printed summary, evaluation.json and the confusion
matrix as a PNG. Files are written to temporary names and renamed into place, so a failed
write leaves the previous file or none."""

from __future__ import annotations

import json
import os

MAX_CLASSES_SHOWN = 20
JSON_FILE = "evaluation.json"
PNG_FILE = "confusion_matrix.png"


def summary_lines(result: dict) -> list:
    """The lines evaluate prints: source, data, preprocessing, the numbers, per-class accuracy."""
    speed = result["images_per_sec"]
    lines = [
        f"model: {result['source']}",
        f"data: {result['dataset']}, split {result['split']}: {result['split_description']}",
        f"preprocessing: {result['preprocessing']}" + (", flip TTA" if result["tta"] else ""),
        f"top-1 {result['top1']:.4f} ({result['top1_correct']}/{result['images']})  "
        f"top-5 {result['top5']:.4f} ({result['top5_correct']}/{result['images']})  "
        f"loss {result['loss']:.4f}  " + (f"{speed:.1f} images/s" if speed else ""),
    ]
    if result.get("note"):
        lines.append(f"note: {result['note']}")
    return lines + _per_class_lines(result["per_class"])


def _per_class_lines(per_class: list) -> list:
    shown = [row for row in per_class if row["images"]]
    title = "per-class accuracy:"
    if len(shown) > MAX_CLASSES_SHOWN:
        shown = sorted(shown, key=lambda row: (row["accuracy"], row["class"]))[:MAX_CLASSES_SHOWN]
        title = f"per-class accuracy, the {MAX_CLASSES_SHOWN} lowest of {len(per_class)}:"
    width = max([len("class")] + [len(row["class"]) for row in shown])
    lines = [title, f"  {'class':<{width}}  images  accuracy"]
    lines += [
        f"  {row['class']:<{width}}  {row['images']:>6}  {row['accuracy']:.4f}" for row in shown
    ]
    return lines


def _replace(path: str, write) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(result: dict, directory: str) -> str:
    path = os.path.join(directory, JSON_FILE)

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")

    _replace(path, write)
    return path


def _write_counts(ax, confusion) -> None:
    """Each non-zero cell's count, white on the dark cells."""
    largest = max(max(row) for row in confusion) or 1
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            if count:
                color = "white" if count > largest / 2 else "black"
                ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)


def write_confusion_png(result: dict, directory: str) -> tuple:
    """(path written or None, why it was skipped or None)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, f"matplotlib is not installed (pip install matplotlib): {PNG_FILE} skipped"
    names = [row["class"] for row in result["per_class"]]
    size = min(16, 3 + 0.4 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(result["confusion_matrix"], cmap="Blues")
    fig.colorbar(image, ax=ax, label="images")
    if len(names) <= 30:
        ax.set_xticks(range(len(names)), names, rotation=90)
        ax.set_yticks(range(len(names)), names)
    if len(names) <= MAX_CLASSES_SHOWN:
        _write_counts(ax, result["confusion_matrix"])
    ax.set_xlabel("predicted class (top-1)")
    ax.set_ylabel("true class")
    ax.set_title(f"{result['dataset']} ({result['split']}): top-1 {result['top1']:.4f}")
    fig.tight_layout()
    path = os.path.join(directory, PNG_FILE)
    try:
        _replace(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
    return path, None
