"""The wheel carries everything: built, installed in a new virtual environment, used there."""

import subprocess
import sys
import venv
import zipfile

from conftest import REPO


def test_wheel_installs_into_a_fresh_venv_and_builds_resnet50(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(dist),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("reszoo-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "reszoo/registry.json" in names
        # The shipped registry is the file itself, not a link to a path outside the wheel.
        assert archive.read("reszoo/registry.json") == (REPO / "registry.json").read_bytes()

    # System site-packages provide Keras and TensorFlow (hundreds of MB); reszoo itself must
    # come from the wheel in the venv, which the check of reszoo.__file__ below makes sure of.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    code = (
        "import reszoo, sys; "
        f"assert reszoo.__file__.startswith({str(env_dir)!r}), reszoo.__file__; "
        "from reszoo.models import count_trainable_params; "
        "model = reszoo.build('resnet50'); "
        "print(count_trainable_params(model), len(reszoo.list_models()))"
    )
    used = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert used.returncode == 0, used.stderr[-3000:]
    params, models = used.stdout.split()
    assert int(params) == 25_557_032 and int(models) >= 30
