"""benchmarks/common.record_results: each run lands in history/<benchmark>.md, and only the
latest run of a configuration is shown on the results page (RESULTS.md)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import common  # noqa: E402  (benchmarks/common.py)


def fake_run(title, body, argv=None):
    return common.Run(
        title=title,
        date=f"2026-12-02T{len(body):02d}:00:00",
        machine="Test CPU, 2 cores",
        command="python benchmarks/bench_x.py",
        note="a test",
        body=body,
    )


@pytest.fixture
def record(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(common, "describe_run", fake_run)

    def call(benchmark, body, **kwargs):
        return common.record_results(benchmark, f"{benchmark} run", body, root=tmp_path, **kwargs)

    return call


def page(tmp_path):
    return (tmp_path / "RESULTS.md").read_text()


def history(tmp_path, benchmark):
    return (tmp_path / "history" / f"{benchmark}.md").read_text()


def test_latest_run_replaces_its_slot_and_history_keeps_every_run(record, tmp_path):
    record("training", "| img/s | 111 |", slot="resnet20")
    record("training", "| img/s | 222 |", slot="resnet20")
    text = page(tmp_path)
    assert "222" in text and "111" not in text
    assert text.count("### resnet20") == 1
    assert "Command: `python benchmarks/bench_x.py`" in text
    assert "Machine: Test CPU, 2 cores" in text
    assert "Goal: reszoo.fit with precision auto >= 1.3x" in text  # from common.BENCHMARKS
    runs = history(tmp_path, "training")
    assert runs.index("111") < runs.index("222")  # newest last


def test_other_slots_sections_and_hand_written_text_are_kept(record, tmp_path):
    record("training", "resnet20 figure", slot="resnet20")
    notes = "\nWritten by hand: keep me.\n"
    (tmp_path / "RESULTS.md").write_text(page(tmp_path) + notes)
    record("training", "resnet50 figure", slot="resnet50")
    record("ceiling", "ceiling figure")
    record("training", "resnet20 again", slot="resnet20")
    text = page(tmp_path)
    for kept in ("resnet50 figure", "ceiling figure", "resnet20 again", "keep me."):
        assert kept in text
    assert "resnet20 figure" not in text
    assert text.index("### resnet20") < text.index("### resnet50")  # first recorded stays first
    assert text.count("<!-- section: training -->") == 1


def test_quick_checks_go_to_history_only(record, tmp_path):
    record("data", "current figure")
    record("data", "quick figure", current=False)
    assert "quick figure" not in page(tmp_path)
    assert "quick figure" in history(tmp_path, "data")


def test_no_record_writes_nothing(record, tmp_path):
    record("data", "printed only", record=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_benchmark_is_refused(record, tmp_path):
    with pytest.raises(ValueError, match="add it to common.BENCHMARKS"):
        record("nonsense", "x")
    assert list(tmp_path.iterdir()) == []
