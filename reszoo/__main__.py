"""`python -m reszoo list [PATTERN]`: the zoo as a table."""

from __future__ import annotations

import argparse
import sys

from reszoo.errors import ReszooError


def _si(value: int | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.2f}{suffix}{unit}"
    return f"{value}{unit}"


def zoo_table(pattern: str = "*") -> str:
    """One row per model: name, family, trainable params, MACs, input, reference accuracy,
    and its default weight tag with that tag's published top-1 at its evaluation size."""
    from reszoo.weights import default_weights_cell
    from reszoo.zoo import get_config, list_models

    header = ("name", "family", "params", "MACs", "input", "top-1 (dataset)", "weights top-1@px")
    rows = []
    for name in list_models(pattern):
        config = get_config(name)
        accuracy = config["accuracy"]
        rows.append(
            (
                name,
                config["family"],
                _si(config["params"]),
                _si(config["macs"]),
                "x".join(map(str, config["input_shape"])),
                f"{accuracy['top1']:.2f} ({accuracy['dataset']})" if accuracy else "-",
                default_weights_cell(name),
            )
        )
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header] + rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reszoo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print the zoo as a table")
    listing.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="shell-style wildcard, e.g. 'resnet*' (default: every model)",
    )
    summary = commands.add_parser("summary", help="build a model and print its Keras summary")
    summary.add_argument("model", help="a name from `python -m reszoo list`")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            table = zoo_table(args.pattern)
            if table.count("\n") < 2:
                raise ReszooError(f"no model matches {args.pattern!r}")
            print(table)
        else:
            from reszoo.zoo import build

            build(args.model).summary()
    except ReszooError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
