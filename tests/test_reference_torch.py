"""benchmarks/reference_torch.py, the plain-PyTorch ResNet-20 that reszoo's trainer is compared
with: the paper's architecture (parameter count, option-A shortcuts), its schedule formulas,
and a couple of training steps on a tiny folder. torch is not in the test extras: skipped
without it."""

import json
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import reference_torch as ref  # noqa: E402


def paper_resnet20_parameters(num_classes=10):
    """Counted from He et al. 2016, section 4.2: a 3x3 conv (3 -> 16), then 3 stages of 6 3x3
    convs (16, 32, 64 filters; the first conv of a stage takes the previous width), each conv
    followed by BatchNorm (a scale and a shift per channel), no conv biases, option-A shortcuts
    (no parameters), and a fully connected layer 64 -> classes with biases."""
    convs = [(3, 16)] + [(16, 16)] * 6
    convs += [(16, 32)] + [(32, 32)] * 5 + [(32, 64)] + [(64, 64)] * 5
    weights = sum(9 * cin * cout for cin, cout in convs)
    batchnorm = sum(2 * cout for _, cout in convs)
    return weights + batchnorm + 64 * num_classes + num_classes


def test_resnet20_has_the_papers_parameter_count():
    model = ref.CifarResNet()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == paper_resnet20_parameters() == 269_722  # the paper's "0.27M"
    # 20 weighted layers: 19 convolutions and the fully connected layer
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 19 and all(m.bias is None for m in convs)


def test_option_a_shortcut_subsamples_and_pads_zero_channels():
    x = torch.randn(2, 16, 32, 32)
    out = ref.option_a_shortcut(x, 32, 2)
    assert out.shape == (2, 32, 16, 16)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0
    assert ref.option_a_shortcut(x, 16, 1) is x


def test_stage_outputs_have_the_papers_sizes():
    model = ref.CifarResNet().eval()
    sizes = []
    model.blocks[2].register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    model.blocks[5].register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    model.blocks[8].register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    with torch.no_grad():
        logits = model(torch.randn(3, 3, 32, 32))
    assert logits.shape == (3, 10)
    assert sizes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_cosine_schedule_with_warmup_follows_its_formula():
    c = {"kind": "cosine", "lr": 0.1, "min_lr": 0.0, "warmup": 10, "total": 110}
    assert ref.learning_rate(0, c) == pytest.approx(0.01)  # (step + 1) / warm-up steps
    assert ref.learning_rate(9, c) == pytest.approx(0.1)
    assert ref.learning_rate(10, c) == pytest.approx(0.1)
    assert ref.learning_rate(60, c) == pytest.approx(0.05)  # half way down the cosine
    assert ref.learning_rate(35, c) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert ref.learning_rate(110, c) == pytest.approx(0.0, abs=1e-12)
    steps = {"kind": "steps", "lr": 0.1, "decay": 0.1, "boundaries": [5, 8], "warmup": 0}
    assert [round(ref.learning_rate(s, steps), 6) for s in (4, 5, 7, 8)] == [0.1, 0.01, 0.01, 0.001]


def test_augment_keeps_size_and_pads_with_zeros():
    batch = torch.full((64, 3, 8, 8), 200, dtype=torch.uint8)
    out = ref.augment(batch, torch.Generator().manual_seed(0), pad=4)
    assert out.shape == batch.shape and out.dtype == torch.uint8
    assert set(out.unique().tolist()) == {0, 200}  # shifted crops show the zero border


def make_folder(root: Path, classes=("cat", "dog"), per_class=6):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.full((32, 32, 3), 40 + 150 * c + i, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture
def keep_threads():
    """main() calls torch.set_num_threads; give other torch tests their threads back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_trains_a_couple_of_steps_on_a_tiny_folder(tmp_path, keep_threads):
    folder = make_folder(tmp_path / "data")
    out = tmp_path / "result.json"
    argv = ["--data", str(folder), "--holdout-per-class", "2", "--epochs", "1"]
    argv += ["--batch-size", "4", "--precision", "float32", "--output", str(out)]
    result = ref.main(argv)
    assert (result["train_examples"], result["validation_examples"]) == (8, 4)
    (epoch,) = result["epochs"]
    assert math.isfinite(epoch["loss"]) and 0.0 <= epoch["val_accuracy"] <= 1.0
    assert epoch["images_per_sec"] > 0
    assert json.loads(out.read_text())["epochs"][0]["loss"] == epoch["loss"]


def test_a_folder_with_one_class_is_refused_with_one_line(tmp_path, capsys, keep_threads):
    folder = make_folder(tmp_path / "data", classes=("cat",))
    with pytest.raises(SystemExit) as exit_info:
        ref.main(["--data", str(folder), "--holdout-per-class", "1", "--epochs", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "one sub-folder per class" in err
