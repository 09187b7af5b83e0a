"""What users install is what is tested: the wheel and the sdist, each installed into a fresh
virtual environment that cannot see the checkout, then used there from the command line.

The fresh environment gets this environment's third-party packages (Keras, TensorFlow, ...)
through a .pth file naming our site-packages directories; .pth files inside those directories
(such as an editable install of reszoo) are not processed that way, so reszoo can only come
from the artifact under test.
"""

import json
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

# Files under reszoo/ that must ship: everything git tracks there (code and data alike).
TRACKED = subprocess.run(
    ["git", "ls-files", "reszoo"], capture_output=True, text=True, cwd=REPO, check=True
).stdout.split()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The sdist and the wheel built from a copy of the tracked files (the build leaves the
    checkout untouched), as `python -m build` makes them for a release."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    files = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.split()
    for name in files:
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        path = REPO / name
        target.write_bytes(path.read_bytes()) if not path.is_symlink() else target.symlink_to(
            path.readlink()
        )
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist")],
        capture_output=True,
        text=True,
        cwd=source,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return {
        "wheel": next((work / "dist").glob("reszoo-*.whl")),
        "sdist": next((work / "dist").glob("reszoo-*.tar.gz")),
    }


def shipped_files(artifact: Path) -> set[str]:
    if artifact.suffix == ".whl":
        with zipfile.ZipFile(artifact) as archive:
            return set(archive.namelist())
    with tarfile.open(artifact) as archive:  # reszoo-0.1.0/reszoo/... -> reszoo/...
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_every_tracked_package_file_ships(artifacts, kind):
    shipped = shipped_files(artifacts[kind])
    missing = [name for name in TRACKED if name not in shipped]
    assert not missing, f"{kind} lacks {missing}"
    if kind == "wheel":  # the registry is the file itself, not the checkout's link
        with zipfile.ZipFile(artifacts[kind]) as archive:
            data = archive.read("reszoo/registry.json")
        assert data == (REPO / "registry.json").read_bytes()


def fresh_venv(where: Path) -> Path:
    """A new virtual environment seeing our third-party packages but not the checkout."""
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "_outer_site_packages.pth").write_text("\n".join(sorted(ours)) + "\n")
    return where / "bin"


def run(command: list, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {"PATH": f"{Path(command[0]).parent}:/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done


SERVE_WITHOUT_RESZOO = """
import importlib.util, json, sys
sys.path[:0] = json.loads(sys.argv[1])
assert importlib.util.find_spec("reszoo") is None, "reszoo must not be importable here"
import numpy as np, tensorflow as tf
signature = tf.saved_model.load(sys.argv[2]).signatures["serving_default"]
out = signature(images=tf.constant(np.full((2, 32, 32, 3), 128.0, np.float32)))
print(json.dumps({"classes": out["classes"].numpy().tolist(),
                  "names": [n.decode() for n in out["class_names"].numpy()]}))
"""


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installed_artifact_lists_trains_exports_and_serves(artifacts, kind, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv")
    run([bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--quiet", artifacts[kind]], tmp_path)  # fmt: skip
    where = run([bin_dir / "python", "-c", "import reszoo; print(reszoo.__file__)"], tmp_path)
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout

    listing = run([bin_dir / "reszoo", "list", "resnet5*"], tmp_path).stdout
    assert "resnet50" in listing and "25.56M" in listing
    run([bin_dir / "reszoo", "train", "resnet20", "synthetic", "--epochs", "1",
         "--steps-per-epoch", "2", "--output", "run", "--quiet"], tmp_path)  # fmt: skip
    # model.keras loads after `import reszoo` alone (its layers register on import)
    loaded = run([bin_dir / "python", "-c", "import reszoo, keras; "
                  "print(keras.saving.load_model('run/model.keras').count_params())"], tmp_path)  # fmt: skip
    assert int(loaded.stdout) > 270_000
    exported = run([bin_dir / "reszoo", "export", "run", "exported"], tmp_path).stdout
    assert "exported/1" in exported

    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    served = run([sys.executable, "-I", "-S", "-c", SERVE_WITHOUT_RESZOO, json.dumps(ours),
                  tmp_path / "exported" / "1"], tmp_path)  # fmt: skip
    answer = json.loads(served.stdout)
    class_names = json.loads((tmp_path / "run" / "config.json").read_text())["class_names"]
    assert len(class_names) == 10 and len(answer["classes"]) == 2
    assert answer["names"] == [class_names[i] for i in answer["classes"]]
