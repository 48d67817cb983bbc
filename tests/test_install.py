"""Installed like a tool: a non-editable ``pip install .`` runs the packaged configs from any folder.

The temporary venv sees the dependencies already installed for the tests through a ``.pth`` file (lines in a
``.pth`` add folders to ``sys.path`` but do not run the ``.pth`` files inside them, so the editable install
of the test venv stays out), and seqlight itself is installed with ``--no-deps --no-build-isolation`` from a
copy of the sources (so the build writes nothing into the checkout). Then the ``seqlight`` console script
runs from an unrelated folder and must use the installed copy, not ``src/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(bin folder, env)`` of a temporary venv holding a non-editable install of this checkout."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src-copy"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", src / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    target = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, os.environ
        ).stdout.strip()
    )
    (target / "_seqlight_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # The venv has no pip of its own: the test venv's pip installs into it (--python, pip >= 22.3).
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-build-isolation"]
    done = _run([*pip, "--ignore-installed", "--quiet", src], tmp, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return bindir, env


def test_installed_copy_is_used(installed, tmp_path):
    bindir, env = installed
    code = "import seqlight, seqlight.commands as c; print(seqlight.__file__); print(c.CONFIG_DIR)"
    done = _run([bindir / "python", "-c", code], tmp_path, env)
    assert done.returncode == 0, done.stderr
    module, configs = (Path(line) for line in done.stdout.splitlines())
    assert module.is_relative_to(bindir.parent) and not module.is_relative_to(ROOT), module
    assert (configs / "jena_gru.yaml").is_file() and configs.is_relative_to(bindir.parent)


def test_installed_console_script_lists_and_rejects(installed, tmp_path):
    bindir, env = installed
    done = _run([bindir / "seqlight", "configs"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "jena_gru" in done.stdout and "6.3.5" in done.stdout and str(bindir.parent) in done.stdout
    done = _run([bindir / "seqlight", "fit", "--config", "no_such_config"], tmp_path, env)
    assert done.returncode == 2
    assert "no packaged config of that name" in done.stderr and "jena_gru" in done.stderr


def test_installed_fit_by_name_from_another_folder(installed, jena_dir, tmp_path):
    """The issue's acceptance check: ``seqlight fit --config jena_gru --trainer.fast_dev_run 1`` exits 0.

    The data is the offline stand-in, found under $SEQLIGHT_HOME/datasets (``source synthetic``: a test never
    downloads the real file)."""
    bindir, env = installed
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (home / "datasets").mkdir(parents=True)
    (home / "datasets" / "jena_climate_synthetic.csv").symlink_to(jena_dir / "jena_climate_synthetic.csv")
    cwd.mkdir()
    env = dict(env, SEQLIGHT_HOME=str(home), SEQLIGHT_NUM_THREADS="1")
    cmd = [bindir / "seqlight", "fit", "--config", "jena_gru", "--trainer.fast_dev_run", "1"]
    done = _run([*cmd, "--data.init_args.source", "synthetic", "--trainer.enable_progress_bar", "false"], cwd, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "RecurrentForecaster (fit)" in done.stdout
    said = "seqlight: fit: run folder: none (no logger, or fast_dev_run: nothing is written); data folder"
    assert f"{said} {home / 'datasets'}\n" in done.stderr
    assert list(cwd.iterdir()) == []
