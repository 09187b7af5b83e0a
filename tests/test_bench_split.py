"""benchmarks/bench_time_to_accuracy.write_split: the train/held-out file lists the PyTorch
reference reads are reszoo's own split of the folder (every file once, held out per class)."""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_time_to_accuracy  # noqa: E402  (benchmarks/bench_time_to_accuracy.py)


def test_the_split_holds_out_per_class_and_lists_every_file_once(tmp_path):
    folder = tmp_path / "train"
    names = []
    for label, cls in enumerate(("cat", "dog")):
        (folder / cls).mkdir(parents=True)
        for i in range(5):
            pixels = np.full((8, 8, 3), 40 * i + label, np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{i}.png")
            names.append(f"{cls}/{i}.png")
    split = bench_time_to_accuracy.write_split(str(folder), 4, str(tmp_path / "split.json"))
    assert json.loads((tmp_path / "split.json").read_text()) == split
    assert split["class_names"] == ["cat", "dog"]
    train = {name for name, _ in split["train"]}
    held = [(name, label) for name, label in split["validation"]]
    assert train.isdisjoint(name for name, _ in held)
    assert sorted(train | {name for name, _ in held}) == sorted(names)
    assert sorted(label for _, label in held) == [0, 0, 1, 1]  # 4 held out: 2 per class
    for name, label in split["train"] + split["validation"]:
        assert name.startswith(("cat/", "dog/")[label])
