"""`reszoo experiment degradation`: plain and residual nets trained alike, the paper's figure."""

import json
import subprocess
import sys

import pytest

from reszoo.errors import ConfigError
from reszoo.experiments import degradation
from reszoo.experiments.degradation import Curve


def curve(kind, depth, train, heldout=(50.0, 40.0)):
    return Curve(f"{kind}{depth}", kind, depth, 1000, tuple(train), tuple(heldout), 60.0)


def test_claims_are_checked_epoch_by_epoch_between_the_shallowest_and_deepest_pair():
    curves = [
        curve("plain", 20, [60, 40, 30]),
        curve("plain", 56, [70, 50, 25]),  # worse at epochs 1-2, better at the end
        curve("resnet", 20, [55, 35, 20]),
        curve("resnet", 56, [55, 30, 15]),  # equal at epoch 1 counts as "no worse"
        curve("plain", 32, [99, 99, 99]),  # a middle depth takes no part in the claims
    ]
    verdict = degradation.claims(curves)
    assert (verdict["shallow"], verdict["deep"], verdict["epochs"]) == (20, 56, 3)
    assert verdict["plain_deeper_trains_worse_epochs"] == 2
    assert verdict["plain_deeper_trains_worse_at_end"] is False
    assert verdict["residual_deeper_trains_no_worse_epochs"] == 3
    assert verdict["residual_deeper_trains_no_worse_at_end"] is True
    text = degradation.table(curves, verdict)
    assert "| plain56 | plain | 56 | 1,000 | 25.00 | 40.00 | 40.00 | 1.0 min |" in text
    assert "at 2 of 3 epochs (at the end: no)" in text


def test_depths_need_both_kinds_in_the_zoo_and_two_depths():
    assert [name for name, _, _ in degradation.model_names([56, 20])] == [
        "plain20", "resnet20", "plain56", "resnet56",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="at least two depths"):
        degradation.model_names([20])
    with pytest.raises(ConfigError, match=r"no plain1202.*20, 32, 44, 56, 110"):
        degradation.model_names([20, 1202])


def test_a_tiny_run_trains_all_four_networks_and_writes_figure_table_and_numbers(tmp_path):
    curves = degradation.run(
        "synthetic", depths=(20, 32), output_dir=tmp_path, verbose=0,
        epochs=2, examples=64, batch_size=32, validation_split=32, seed=3,
    )  # fmt: skip
    assert [c.model for c in curves] == ["plain20", "resnet20", "plain32", "resnet32"]
    for c in curves:
        assert len(c.train_error) == len(c.heldout_error) == 2
        assert all(0.0 <= e <= 100.0 for e in c.train_error + c.heldout_error)
        config = json.loads((tmp_path / c.model / "config.json").read_text())
        assert (config["seed"], config["epochs"], config["batch_size"]) == (3, 2, 32)
    assert curves[0].params == curves[1].params == 269_722  # plain and residual: same weights
    record = json.loads((tmp_path / "degradation.json").read_text())
    assert record["claims"]["epochs"] == 2 and len(record["curves"]) == 4
    png = (tmp_path / "degradation.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "| resnet32 | resnet | 32 | 464,154 |" in (tmp_path / "degradation.md").read_text()


def test_cli_bad_depth_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "reszoo", "experiment", "degradation", "synthetic",
         "--depths", "20", "21", "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "no plain21, resnet21" in result.stderr
    assert not (tmp_path / "out").exists()
