"""Training recipes: data in recipes.json, resolved in one place.

``resolve()`` is the only function that turns (model, dataset, config file, overrides) into the
training config that ``reszoo.fit`` runs and writes to ``config.json``. The layers, later ones
winning:

    defaults -> recipes[kind] -> recipes["kind/dataset"] -> config file -> keyword arguments
    (the CLI's flags and ``--set key=value``) -> validation

``kind`` is "cifar" for the small-input ResNets (resnet20..resnet1202, pre-activation, wide
ResNets: models whose input is 64x64 or smaller) and "imagenet" for the others.

If ``epochs`` is overridden but ``lr_steps`` is not, the recipe's step epochs are scaled to the
new length (91/136 of 182 become 8/11.956 of 16), so a shortened recipe keeps its shape.
"""

from __future__ import annotations

import copy
import difflib
import importlib.resources
import json
import math
import os

from reszoo.errors import ConfigError, TrainingError
from reszoo.paths import uncreatable_reason
from reszoo.training.choices import OPTIMIZERS, PRECISIONS, SCHEDULES, STRATEGIES
from reszoo.training.config import RUN_KEYS

_RECIPES = None


# Families whose models are the CIFAR-style ResNets (also recognised by a small input).
CIFAR_FAMILIES = (
    "cifar",
    "cifar_resnet",
    "resnet_cifar",
    "preact",
    "preact_resnet",
    "wrn",
    "wide_resnet_cifar",
)


def _load():
    global _RECIPES
    if _RECIPES is None:
        # Package data, read through importlib.resources: it works from a wheel, a zip or a checkout.
        text = importlib.resources.files("reszoo").joinpath("recipes.json").read_text("utf-8")
        _RECIPES = json.loads(text)
    return _RECIPES


def defaults() -> dict:
    """The default value of every training option (a copy)."""
    return _strip(copy.deepcopy(_load()["defaults"]))


def recipe_names() -> list:
    return sorted(k for k in _load()["recipes"])


def named_recipe_names() -> list:
    """The recipes a run asks for by name (``recipe=``, ``--recipe``): recipes.json "named"."""
    return sorted(_load()["named"])


def named_recipe(name: str) -> dict:
    """The options a named recipe sets over the model kind's recipe."""
    named = _load()["named"]
    if not isinstance(name, str) or name not in named:
        raise ConfigError(f"recipe must be one of {', '.join(named_recipe_names())}, got {name!r}")
    return _strip(copy.deepcopy(named[name]))


def _chosen_recipe(layers) -> str | None:
    """The named recipe the option layers ask for: their last ``recipe``, else "finetune" when
    they start from ``weights`` (pretrained weights want a gentler recipe than random ones)."""
    chosen = weights = None
    for layer in layers:
        chosen = layer.get("recipe", chosen)
        weights = layer.get("weights", weights)
    if chosen is None and weights is not None:
        return "finetune"
    return chosen


def _strip(d):
    return {k: v for k, v in d.items() if not k.startswith("_")}


def model_kind(model_config: dict | None) -> str:
    """'cifar' or 'imagenet' for a model config from reszoo.get_config (or None)."""
    if not model_config:
        return "cifar"
    family = str(model_config.get("family", "")).lower()
    name = str(model_config.get("name", "")).lower()
    if family in CIFAR_FAMILIES or "cifar" in family:
        return "cifar"
    shape = model_config.get("input_shape") or [224, 224, 3]
    try:
        if shape[0] is not None and int(shape[0]) <= 64:
            return "cifar"
    except (TypeError, ValueError, IndexError):
        pass
    if name.startswith(("wrn", "preact_resnet")) and "imagenet" not in name:
        return "cifar"
    return "imagenet"


def dataset_key(dataset) -> str:
    """The name used to look up dataset-specific recipe entries ('custom' for dataset objects)."""
    if not isinstance(dataset, str):
        return "custom"
    if os.path.sep in dataset or os.path.isdir(dataset):
        return "folder"
    return dataset.split(":")[0].split("/")[0].lower()


def recipe(kind: str, dataset: str | None = None) -> dict:
    """The recipe for a model kind ('cifar'/'imagenet') and dataset: defaults merged with it."""
    data = _load()["recipes"]
    if kind not in data:
        raise ConfigError(f"unknown recipe {kind!r}; known: {', '.join(recipe_names())}")
    out = defaults()
    out.update(_strip(data[kind]))
    if dataset is not None and f"{kind}/{dataset}" in data:
        out.update(_strip(data[f"{kind}/{dataset}"]))
    return out


def load_config_file(path: str) -> dict:
    """A JSON (or, with PyYAML installed, YAML) file of option overrides."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        text = f.read()
    try:
        if path.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                raise ConfigError(
                    f"{path}: YAML config files need PyYAML (pip install pyyaml)"
                ) from None
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, Exception) as e:  # json.JSONDecodeError, yaml.YAMLError
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"config file {path} does not parse: {e}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    # A run's own config.json may be passed back in: keep only the training options.
    known = set(defaults())
    return {k: v for k, v in data.items() if k in known or k not in _RUN_KEYS}


_RUN_KEYS = RUN_KEYS  # keys fit adds to the resolved config (not options a user sets)


def parse_set(items) -> dict:
    """['key=value', 'overrides.depths=[1,1,1]'] -> nested dict; values parsed as JSON when they
    parse, else kept as strings."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            low = raw.strip().lower()
            value = {"true": True, "false": False}.get(low, raw)
        parts = key.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                raise ConfigError(f"--set {key}: {p} is not a mapping")
        d[parts[-1]] = value
    return out


def _merge(base: dict, layer: dict):
    for k, v in layer.items():
        if k == "overrides" and isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v


def resolve(model_config: dict | None, dataset, *, config=None, options=None) -> dict:
    """The one place a training config is resolved.

    model_config: reszoo.get_config(name) (or None for a model object without one).
    dataset: a dataset name/path, or a tf.data.Dataset ('custom').
    config: a path to a JSON/YAML file, or a dict, of overrides.
    options: keyword overrides (fit's kwargs, the CLI's flags and --set), None values ignored.
    Returns a new dict with every key of defaults() plus 'kind' and 'lr' resolved.
    """
    kind = model_kind(model_config)
    cfg = recipe(kind, dataset_key(dataset))
    layers = []
    if config is not None:
        layers.append(
            load_config_file(config) if isinstance(config, (str, os.PathLike)) else dict(config)
        )
    if options:
        layers.append({k: v for k, v in options.items() if v is not None})
    chosen = _chosen_recipe(layers)
    if chosen is not None:
        cfg.update(named_recipe(chosen), recipe=chosen)
    recipe_epochs, recipe_steps = cfg["epochs"], list(cfg["lr_steps"])
    known = set(cfg)
    for layer in layers:
        for k in layer:
            if k not in known and k not in _RUN_KEYS:
                close = difflib.get_close_matches(k, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown training option {k!r}{hint}")
        _merge(cfg, {k: v for k, v in layer.items() if k in known})
    if cfg["epochs"] != recipe_epochs and cfg["lr_steps"] == recipe_steps and recipe_steps:
        try:
            cfg["lr_steps"] = [round(s * cfg["epochs"] / recipe_epochs, 3) for s in recipe_steps]
        except TypeError:
            pass  # epochs invalid: validate() says so
    cfg["kind"] = kind
    validate(cfg)
    if cfg["lr"] is None:
        cfg["lr"] = cfg["base_lr"] * cfg["batch_size"] / cfg["base_batch_size"]
    return cfg


def _check(cond, msg):
    if not cond:
        raise ConfigError(msg)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):  # finite: an inf/NaN learning rate or momentum is bad input, not a run
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(allow_none=False, allow_zero=False):
    """A check: a positive (or non-negative) integer, or None when allowed."""
    word = "non-negative" if allow_zero else "positive"

    def check(key, v):
        if v is None and allow_none:
            return
        _check(
            _is_int(v) and (v >= 0 if allow_zero else v >= 1),
            f"{key} must be a {word} integer, got {v!r}",
        )

    return check


def _number(lo=None, hi=None, allow_none=False, lo_open=False):
    """A check: a finite number in [lo, hi] ((lo, hi] with lo_open), or None when allowed."""
    if hi is not None:
        rng = f" in {'(' if lo_open else '['}{lo}, {hi}]"
    else:
        rng = f" {'>' if lo_open else '>='} {lo}" if lo is not None else ""

    def check(key, v):
        if v is None and allow_none:
            return
        ok = (
            _is_num(v)
            and (lo is None or (v > lo if lo_open else v >= lo))
            and (hi is None or v <= hi)
        )
        _check(ok, f"{key} must be a number{rng}, got {v!r}")

    return check


def _one_of(choices):
    def check(key, v):
        _check(
            isinstance(v, str) and v in choices,
            f"{key} must be one of {', '.join(choices)}, got {v!r}",
        )

    return check


def _boolean(key, v):
    _check(isinstance(v, bool), f"{key} must be true/false, got {v!r}")


def _lr_steps(key, v):
    _check(
        isinstance(v, (list, tuple)) and all(_is_num(s) and s > 0 for s in v),
        f"{key} must be a list of epochs, got {v!r}",
    )


def _augment(key, v):
    _check(isinstance(v, (str, bool)) or v is None, f"{key} must be a string, got {v!r}")


def _image_size(key, v):
    if v is None:
        return
    if _is_int(v):
        v = [v, v]
    _check(
        isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) and x > 0 for x in v),
        f"{key} must be an integer or [height, width], got {v!r}",
    )


def _num_classes(key, v):
    _integer(allow_none=True)(key, v)
    _check(v is None or v >= 2, f"{key} must be >= 2, got {v!r}")


def _overrides(key, v):
    _check(isinstance(v, dict), f"{key} must be a mapping of architecture fields, got {v!r}")


def _path(key, v):
    _check(v is None or isinstance(v, str), f"{key} must be a path, got {v!r}")


def _weights(key, v):
    _check(
        v is None or (isinstance(v, str) and v.strip()),
        f"{key} must be a weight tag (reszoo list --weights) or a weights file, got {v!r}",
    )


def _recipe(key, v):
    if v is not None:
        named_recipe(v)


# Every option's check, in the order validate() tries them (the first bad value is named).
CHECKS = (
    ("epochs", _integer()),
    ("batch_size", _integer()),
    ("base_batch_size", _integer()),
    ("base_lr", _number(0, lo_open=True)),
    ("lr", _number(0, lo_open=True, allow_none=True)),
    ("optimizer", _one_of(OPTIMIZERS)),
    ("momentum", _number(0, 1)),
    ("nesterov", _boolean),
    ("weight_decay", _number(0)),
    ("schedule", _one_of(SCHEDULES)),
    ("warmup_epochs", _number(0)),
    ("lr_steps", _lr_steps),
    ("lr_decay", _number(0, lo_open=True)),
    ("min_lr", _number(0)),
    ("label_smoothing", _number(0, 1)),
    ("grad_clip_norm", _number(0, lo_open=True, allow_none=True)),
    ("ema_decay", _number(0, 1, allow_none=True)),
    ("augment", _augment),
    ("image_size", _image_size),
    ("num_classes", _num_classes),
    ("validation_split", _number(0, allow_none=True)),  # a fraction < 1, or a count
    ("examples", _integer(allow_none=True)),
    ("seed", _integer(allow_zero=True)),
    ("steps_per_epoch", _integer(allow_none=True)),
    ("validation_steps", _integer(allow_none=True)),
    ("steps_per_execution", _integer()),
    ("jit_compile", _boolean),
    ("checkpoint_every", _integer(allow_zero=True)),
    ("keep_checkpoints", _integer()),
    ("precision", _one_of(PRECISIONS)),
    ("strategy", _one_of(STRATEGIES)),
    ("collective_timeout", _number(0, lo_open=True, allow_none=True)),
    ("overrides", _overrides),
    ("data_dir", _path),
    ("follow_links", _boolean),
    ("weights", _weights),
    ("recipe", _recipe),
)


def validate(cfg: dict):
    """Raise ConfigError naming the first bad value; then write lr_steps and image_size in
    their one form (a list; [height, width])."""
    for key, check in CHECKS:
        check(key, cfg[key])
    cfg["lr_steps"] = list(cfg["lr_steps"])
    if _is_int(cfg["image_size"]):
        cfg["image_size"] = [cfg["image_size"]] * 2
    elif cfg["image_size"] is not None:
        cfg["image_size"] = list(cfg["image_size"])


# --------------------------------------------------------------------------- run directories

CONFIG_VERSION = 1

# Keys of config.json that may change between the run in a directory and a rerun that resumes
# it: the length of the run (epochs, and lr_steps that scale with it) and how it is executed.
# Every other key (model, build, dataset, classes, batch size, optimiser, schedule shape,
# precision, augmentation, seed, ...) must be equal, or the directory is refused.
RESUMABLE_CHANGES = frozenset(
    {
        "epochs",
        "lr_steps",
        "total_steps",
        "strategy",
        "strategy_name",
        "collective_timeout",  # how long a collective may wait, not what is trained (and
        # run directories written before it existed have no such key)
        "num_replicas",
        "steps_per_execution",
        "jit_compile",
        "checkpoint_every",
        "keep_checkpoints",
        "data_dir",
        "follow_links",  # (run directories written before it existed have no such key)
        "cache",
        "validation_steps",
        "precision_reason",
    }
)


def jsonable(value):
    return json.loads(
        json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    )


def config_differences(old: dict, new: dict) -> list:
    """Keys (outside RESUMABLE_CHANGES) whose values differ between two config.json dicts."""
    old, new = jsonable(old), jsonable(new)
    return [
        k
        for k in sorted(set(old) | set(new))
        if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)
    ]


def check_output_dir(output_dir, cfg, *, partial=False) -> bool:
    """True when output_dir holds a compatible run to resume, False when it is new or empty.
    Raises TrainingError for a directory of another config or a non-run directory. With
    partial=True only the keys present in cfg are compared (an early check before the data
    and model are known)."""
    if output_dir is None:
        return False
    if not os.path.exists(output_dir):
        reason = uncreatable_reason(output_dir)
        if reason:
            raise TrainingError(
                f"output directory {output_dir} cannot be created: {reason}; "
                "choose another --output"
            )
        return False
    if not os.path.isdir(output_dir):
        raise TrainingError(f"output directory {output_dir} is a file")
    path = os.path.join(output_dir, "config.json")
    if not os.path.exists(path):
        # (a chief's config.json.tmp, renamed in a moment, is not "another run": other
        # workers of a multi-worker run check the directory while the chief writes it)
        if [n for n in os.listdir(output_dir) if not n.startswith(".") and not n.endswith(".tmp")]:
            raise TrainingError(
                f"output directory {output_dir} is not empty and holds no "
                "reszoo run (config.json); choose another --output"
            )
        return False
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError) as e:
        raise TrainingError(f"{path} is unreadable ({e}); choose another --output") from None
    if partial:
        old = {k: v for k, v in old.items() if k in cfg}
    diffs = config_differences(old, cfg)
    if diffs:
        shown = "; ".join(
            f"{k}: {json.dumps(jsonable(old.get(k)))} there, {json.dumps(jsonable(cfg.get(k)))} now"
            for k in diffs[:3]
        )
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        raise TrainingError(
            f"output directory {output_dir} holds a run of another config "
            f"({shown}{more}); use another --output or remove it"
        )
    return True


def prepare(model_name, model_config, dataset, *, config=None, options=None, output_dir=None):
    """resolve() plus the run keys (model, dataset, config version) and an early check of
    output_dir against the keys known before data and model exist. Pure Python: the CLI calls
    it before importing TensorFlow, and fit calls it first."""
    cfg = resolve(model_config, dataset, config=config, options=options)
    cfg["model"] = model_name
    cfg["dataset"] = dataset if isinstance(dataset, str) else "custom"
    cfg["reszoo_config_version"] = CONFIG_VERSION
    # precision is "auto" here and resolved in config.json: the full check in fit compares it.
    check_output_dir(output_dir, {k: v for k, v in cfg.items() if k != "precision"}, partial=True)
    return cfg
