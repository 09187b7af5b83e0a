"""`reszoo list [PATTERN]`: the zoo as a table."""

from __future__ import annotations

from reszoo.errors import ReszooError

HELP = "print the zoo as a table (params, MACs, input, reference top-1)"
DESCRIPTION = (
    "Print the registered models: trainable parameters, MACs, input size, reference top-1."
)
EPILOG = """\
examples:
  reszoo list
  reszoo list 'resnet*'
  reszoo list '*wide*'
  reszoo list resnet50 --weights      # every weight tag: source, licence, top-1, eval transform"""


def add_arguments(parser):
    parser.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="shell-style wildcard, e.g. 'resnet*' (default: every model)",
    )
    parser.add_argument(
        "--weights", action="store_true", help="list every weight tag of the matching models"
    )


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


def run(args) -> int:
    if args.weights:
        from reszoo.weights import weights_table

        table = weights_table(args.pattern)
    else:
        table = zoo_table(args.pattern)
    if table.count("\n") < 2:
        if args.weights:
            raise ReszooError(f"no model matching {args.pattern!r} has weight tags")
        raise ReszooError(f"no model matches {args.pattern!r}")
    print(table)
    return 0
