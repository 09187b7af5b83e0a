"""The degradation experiment of He et al. 2015 (section 4.2, figure 6), on any dataset.

Plain networks (the CIFAR ResNets with `shortcut: "none"`: the same layers, no identity paths)
and residual networks of two or more depths are trained on the same data with the same recipe
and seed. The paper's finding: deeper plain networks have *higher training error* (the
optimisation gets harder, not the model worse), while deeper residual networks have lower.
The result is one figure in the paper's style (training and held-out error per epoch; plain
dashed, residual solid, one colour per depth), a Markdown table and the numbers as JSON.

    from reszoo.experiments import degradation
    result = degradation.run("/data/cifar10/train", depths=(20, 56), epochs=8, output_dir="runs/deg")

Each network trains in its own run directory under `output_dir`, so rerunning resumes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from reszoo.errors import ConfigError

KINDS = ("plain", "resnet")  # model name = kind + depth: plain20, resnet20, ...
PAPER_DEPTHS = (20, 32, 44, 56)
# The paper's CIFAR-10 schedule: 64k iterations at batch 128 on 45k images (~182 epochs), lr
# x0.1 at 32k and 48k iterations: reszoo's "cifar" recipe, which `epochs` scales when shortened.
PAPER_EPOCHS = 182


@dataclasses.dataclass(frozen=True)
class Curve:
    """One network's per-epoch errors (percent)."""

    model: str
    kind: str
    depth: int
    params: int | None
    train_error: tuple[float, ...]
    heldout_error: tuple[float, ...]
    wall_time_sec: float | None


def model_names(depths) -> list[tuple[str, str, int]]:
    """(model, kind, depth) for every network of the experiment, checked against the zoo."""
    from reszoo.zoo import list_models

    known = set(list_models())
    depths = sorted({int(d) for d in depths})
    if len(depths) < 2:
        raise ConfigError(f"give at least two depths to compare; got {depths}")
    runs = [(f"{kind}{depth}", kind, depth) for depth in depths for kind in KINDS]
    missing = [name for name, _, _ in runs if name not in known]
    if missing:
        available = sorted(
            {int(n[5:]) for n in known if n.startswith("plain") and n[5:].isdigit()}
            & {int(n[6:]) for n in known if n.startswith("resnet") and n[6:].isdigit()}
        )
        raise ConfigError(
            f"no {', '.join(missing)} in the zoo; depths with both a plain and a residual "
            f"network: {', '.join(map(str, available))}"
        )
    return runs


def train_one(name: str, dataset, output_dir: Path, options: dict, verbose: int):
    """Train (or resume) one network; its run directory is output_dir/name."""
    from reszoo.training import fit

    return fit(name, dataset, output_dir=str(output_dir / name), verbose=verbose, **options)


def curve_of(result, name: str, kind: str, depth: int) -> Curve:
    """Errors per epoch from fit's history. Training error is measured, as in the paper, on the
    (augmented) training batches while the epoch trains; held-out error after the epoch."""
    from reszoo.zoo import get_config

    history = result.history

    def errors(key):
        return tuple(round(100.0 * (1.0 - a), 3) for a in history[key] if a is not None)

    return Curve(
        model=name,
        kind=kind,
        depth=depth,
        params=get_config(name)["params"],
        train_error=errors("accuracy"),
        heldout_error=errors("val_accuracy"),
        wall_time_sec=result.summary.get("wall_time_sec"),
    )


def run(dataset, *, depths=(20, 56), output_dir="runs/degradation", verbose=1, **options):
    """Train every plain/residual pair and write degradation.png, .md and .json to output_dir.

    options: training options for every network (epochs, batch_size, seed, examples,
    validation_split, ...), as `reszoo.fit` takes them. Returns the list of Curves.
    """
    output_dir = Path(output_dir)
    curves = []
    for name, kind, depth in model_names(depths):
        if verbose:
            print(f"reszoo experiment degradation: training {name}", flush=True)
        result = train_one(name, dataset, output_dir, options, verbose)
        curves.append(curve_of(result, name, kind, depth))
    write_results(curves, output_dir)
    return curves


def claims(curves: list[Curve]) -> dict:
    """The paper's two claims, checked epoch by epoch between the shallowest and deepest pair:
    for how many epochs is the deeper plain net's training error above the shallower one's,
    and the deeper residual net's at or below the shallower one's."""
    by = {(c.kind, c.depth): c for c in curves}
    shallow, deep = min(c.depth for c in curves), max(c.depth for c in curves)

    def epochs_where(kind, holds):
        a, b = by[(kind, deep)].train_error, by[(kind, shallow)].train_error
        n = min(len(a), len(b))
        return sum(1 for i in range(n) if holds(a[i], b[i])), n

    plain_hits, n = epochs_where("plain", lambda deeper, shallower: deeper > shallower)
    res_hits, _ = epochs_where("resnet", lambda deeper, shallower: deeper <= shallower)
    final = {kind: (by[(kind, deep)].train_error[-1], by[(kind, shallow)].train_error[-1])
             for kind in KINDS}  # fmt: skip
    return {
        "shallow": shallow,
        "deep": deep,
        "epochs": n,
        "plain_deeper_trains_worse_epochs": plain_hits,
        "residual_deeper_trains_no_worse_epochs": res_hits,
        "plain_deeper_trains_worse_at_end": final["plain"][0] > final["plain"][1],
        "residual_deeper_trains_no_worse_at_end": final["resnet"][0] <= final["resnet"][1],
    }


def table(curves: list[Curve], verdict: dict) -> str:
    """The results as Markdown: one row per network, then the two claims."""
    lines = [
        "| model | kind | depth | trainable params | final training error % | "
        "final held-out error % | best held-out error % | wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(curves, key=lambda c: (c.kind, c.depth)):
        best = f"{min(c.heldout_error):.2f}" if c.heldout_error else "-"
        final = f"{c.heldout_error[-1]:.2f}" if c.heldout_error else "-"
        wall = f"{c.wall_time_sec / 60:.1f} min" if c.wall_time_sec else "-"
        params = f"{c.params:,}" if c.params else "-"
        lines.append(
            f"| {c.model} | {c.kind} | {c.depth} | {params} | {c.train_error[-1]:.2f} | "
            f"{final} | {best} | {wall} |"
        )
    v = verdict
    lines += [
        "",
        f"Deeper plain net ({v['deep']} layers) trains worse than the shallower one "
        f"({v['shallow']}) at {v['plain_deeper_trains_worse_epochs']} of {v['epochs']} epochs "
        f"(at the end: {'yes' if v['plain_deeper_trains_worse_at_end'] else 'no'}).",
        f"Deeper residual net trains at least as well as the shallower one at "
        f"{v['residual_deeper_trains_no_worse_epochs']} of {v['epochs']} epochs "
        f"(at the end: {'yes' if v['residual_deeper_trains_no_worse_at_end'] else 'no'}).",
    ]
    return "\n".join(lines) + "\n"


def plot(curves: list[Curve], path: Path) -> str | None:
    """The paper's figure: training error (left) and held-out error (right) per epoch, plain
    dashed and residual solid, one colour per depth. Returns why it was skipped, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): degradation.png skipped"
    depths = sorted({c.depth for c in curves})
    colours = dict(zip(depths, plt.get_cmap("viridis")(
        [i / max(len(depths) - 1, 1) * 0.85 for i in range(len(depths))])))  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, key, title in zip(axes, ("train_error", "heldout_error"), ("training", "held-out")):
        for c in sorted(curves, key=lambda c: (c.kind, c.depth)):
            values = getattr(c, key)
            ax.plot(range(1, len(values) + 1), values, color=colours[c.depth],
                    linestyle="--" if c.kind == "plain" else "-", label=c.model)  # fmt: skip
        ax.set_title(f"{title} error")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("error (%)")
    axes[1].legend(title="dashed: plain, solid: residual", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_results(curves: list[Curve], output_dir: Path) -> None:
    verdict = claims(curves)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "degradation.md").write_text(table(curves, verdict))
    record = {"claims": verdict, "curves": [dataclasses.asdict(c) for c in curves]}
    note = plot(curves, output_dir / "degradation.png")
    if note:
        record["plot"] = note
    (output_dir / "degradation.json").write_text(json.dumps(record, indent=2) + "\n")
