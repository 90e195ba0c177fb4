"""The project as a wheel, installed into a fresh venv: every module of the checkout is in it and imports.

A worker image installs tooltune as a wheel, not as an editable checkout. A hand-kept package list in
pyproject.toml once dropped `components.toolcalls` from the wheel without any test noticing, because every
test imported the checkout. Here the checkout is kept off the path: the fresh venv holds only the wheel, and
the dependencies come from this environment's site-packages on PYTHONPATH (entries there do not run .pth
files, so the editable install's finder stays out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

PACKAGES = ("components", "flows")


def _modules_in_checkout() -> set[str]:
    """Dotted names of every Python module under the checkout's packages."""
    found = set()
    for top in PACKAGES:
        for path in (REPO / top).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("src")
    # built from a copy: setuptools leaves build/ and *.egg-info in the source folder
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for top in PACKAGES:
        shutil.copytree(REPO / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("tooltune-*.whl")
    return built


def test_wheel_holds_every_module_and_template(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {n[:-3].replace("/", ".").removesuffix(".__init__") for n in names if n.endswith(".py")}
    assert _modules_in_checkout() <= in_wheel, sorted(_modules_in_checkout() - in_wheel)
    templates = {p.name for p in (REPO / "components" / "templates").glob("*.jinja")}
    assert templates and templates <= {Path(n).name for n in names if n.endswith(".jinja")}
    handwritten = {str(p.relative_to(REPO)) for p in (REPO / "components" / "domains" / "handwritten").glob("*.jsonl")}
    assert handwritten and handwritten <= set(names)  # the hand-written test sets are package data


@pytest.mark.slow
def test_wheel_in_fresh_venv_imports_every_module(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    script = (
        "import importlib, json, sys\n"
        "names = json.loads(sys.argv[1])\n"
        "files = {n: importlib.import_module(n).__file__ for n in names}\n"
        "print(json.dumps(files))\n")
    deps = sysconfig.get_paths()["purelib"]  # this venv's packages, without its .pth files
    env = {**os.environ, "PYTHONPATH": deps, "HF_HUB_OFFLINE": "1"}
    modules = sorted(_modules_in_checkout())
    done = subprocess.run([str(python), "-c", script, json.dumps(modules)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    files = json.loads(done.stdout.splitlines()[-1])
    outside = {n: f for n, f in files.items() if not f.startswith(str(env_dir))}
    assert not outside, f"imported from outside the fresh venv: {outside}"
    assert (env_dir / "bin" / "tooltune").is_file()  # the console script
