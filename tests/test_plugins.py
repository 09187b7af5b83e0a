"""Plugins: real packages pip-installed into the test environment, one good and one broken.

Each check runs in a fresh interpreter, because plugins load once, on the first lookup.
"""

import subprocess
import sys

import pytest
from conftest import REPO, run_python

PLUGINS = REPO / "tests" / "plugins"
PACKAGES = {
    "reszoo-demo-plugin": PLUGINS / "reszoo_demo_plugin",
    "reszoo-broken-plugin": PLUGINS / "reszoo_broken_plugin",
}


def pip(*args):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed_plugins():
    pip("install", "--quiet", "--no-deps", "--no-build-isolation", *map(str, PACKAGES.values()))
    yield
    pip("uninstall", "--quiet", "--yes", *PACKAGES)


def test_a_plugin_adds_models_and_a_block_and_each_gets_the_battery(installed_plugins, tmp_path):
    code = f"""
import warnings, numpy as np, keras, reszoo
from reszoo.models import count_trainable_params, count_macs
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    names = reszoo.list_models("demo_*")
print("names", names)
for name in names:
    model = reszoo.build(name)
    config = reszoo.get_config(name)
    assert count_trainable_params(model) == config["params"], name
    assert count_macs(model) == config["macs"], name
    out = model(np.random.rand(2, 32, 32, 3).astype("float32") * 255)
    assert out.shape == (2, 10) and np.isfinite(np.asarray(out)).all()
    path = {str(tmp_path)!r} + "/" + name + ".keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.ones((1, 32, 32, 3), "float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
print("source", reszoo.registry.REGISTRY.source("demo_resnet8"))
print("resnet50 still there", "resnet50" in reszoo.list_models())
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "names ['demo_resnet8', 'demo_triple_net']" in result.stdout
    assert "source plugin 'demo_json'" in result.stdout
    assert "resnet50 still there True" in result.stdout


def test_broken_plugins_warn_by_name_and_are_skipped_whole(installed_plugins):
    code = """
import warnings, reszoo
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    names = reszoo.list_models()
for warning in caught:
    print("WARNING", warning.message)
print("half registered", [n for n in names if n.startswith("broken_half")])
print("failures", sorted(reszoo.registry.REGISTRY.plugin_failures))
reszoo.build("resnet20")
print("zoo works", len(names) >= 30)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "WARNING reszoo: skipped plugin 'broken_import'" in out
    assert "No module named 'reszoo_broken_plugin.no_such_module'" in out
    assert "WARNING reszoo: skipped plugin 'broken_entries'" in out
    assert "broken_half_bad" in out and "'depths'" in out
    assert "half registered []" in out  # the good half was rolled back with the bad one
    assert "failures ['broken_entries', 'broken_import']" in out
    assert "zoo works True" in out
