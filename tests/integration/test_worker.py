"""The worker side: prefect.yaml's pull step really clones the code, and infra/worker/Dockerfile is consistent with the
repository (Docker is not available here, so the image is checked, not built).

The pull step runs through Prefect's own `run_step` (what a worker runs before a flow run, less the events) against a local git
repository given by `$TOOLTUNE_REPO` / `$TOOLTUNE_BRANCH`, so the `{{ $VAR }}` templating is Prefect's, not ours.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.integration
DOCKERFILE = REPO / "infra" / "worker" / "Dockerfile"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_pull_step_clones_the_branch_named_in_the_environment(tmp_path, monkeypatch):
    from prefect.deployments.steps.core import run_step
    from prefect.settings import PREFECT_API_URL, temporary_settings

    origin = tmp_path / "origin"
    origin.mkdir()
    _git(origin, "init", "-q", "-b", "main")
    (origin / "params.yaml").write_text("on: main\n")
    _git(origin, "add", "-A")
    _git(origin, "commit", "-qm", "main")
    _git(origin, "checkout", "-q", "-b", "nightly")
    (origin / "params.yaml").write_text("on: nightly\n")
    _git(origin, "commit", "-qam", "nightly")
    _git(origin, "checkout", "-q", "main")

    pull = yaml.safe_load((REPO / "prefect.yaml").read_text())["pull"]
    workdir = tmp_path / "worker"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("TOOLTUNE_REPO", origin.as_uri())
    monkeypatch.setenv("TOOLTUNE_BRANCH", "nightly")
    # Prefect's step runner opens an API client; with no API URL it would start a temporary server (~15 s) that the
    # step never calls (no block or variable placeholders). A closed port: any real call would fail, not hang.
    (step,) = pull
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        clone = workdir / asyncio.run(run_step(step))["directory"]  # relative to the worker's folder
    assert clone.parent == workdir and (clone / "params.yaml").read_text() == "on: nightly\n"
    assert _git(clone, "rev-parse", "HEAD") == _git(origin, "rev-parse", "nightly")


def test_prefect_yaml_has_no_hard_coded_checkout():
    text = (REPO / "prefect.yaml").read_text()
    (step,) = yaml.safe_load(text)["pull"]
    assert step == {"prefect.deployments.steps.git_clone": {
        "id": "clone", "repository": "{{ $TOOLTUNE_REPO }}", "branch": "{{ $TOOLTUNE_BRANCH }}"}}
    assert "/opt/tooltune" not in text
    template = (REPO / "infra" / "workpools" / "gpu-job-template.json").read_text()
    assert "/opt/tooltune" not in template and "infra/worker/Dockerfile" in template


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in joined.splitlines()
            if line.strip()]


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (a FROM starts one)."""
    found: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(ins)
    return found


def test_dockerfile_copies_only_files_that_exist():
    for name, args in instructions(DOCKERFILE.read_text()):
        if name != "COPY" or args.startswith("--from="):
            continue
        *sources, _ = shlex.split(args)
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile: COPY {source}: not in the repository (the build context)"


def test_dockerfile_wheel_stage_has_what_pyproject_packages():
    wheel_stage, _ = stages(DOCKERFILE.read_text())
    copied = {source.rstrip("/") for name, args in wheel_stage if name == "COPY" for source in shlex.split(args)[:-1]}
    pyproject = (REPO / "pyproject.toml").read_text()
    packages = re.search(r"include = \[([^\]]*)\]", pyproject).group(1)
    tops = {p.strip().strip('"').split(".")[0] for p in packages.split(",") if p.strip()}
    assert tops == {"components", "flows"} and tops <= copied
    assert {"pyproject.toml", "README.md"} <= copied  # README.md is the package's readme
    assert any(name == "RUN" and "pip wheel" in args for name, args in wheel_stage)


def test_dockerfile_worker_runs_a_real_pool_and_pins_the_stack():
    _, worker = stages(DOCKERFILE.read_text())
    cmd = [json.loads(args) for name, args in worker if name == "CMD"][-1]
    assert cmd[:2] == ["sh", "-c"] and re.fullmatch(r'exec prefect worker start --pool "\$POOL"', cmd[2])
    pool_default = [args for name, args in worker if name == "ARG" and args.startswith("POOL=")]
    assert pool_default == ["POOL=cpu"] and any(name == "ENV" and "POOL=${POOL}" in args for name, args in worker)
    pools = {d["work_pool"]["name"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    assert pools == {"cpu", "gpu"}  # the values POOL takes
    run = " ".join(args for name, args in worker if name == "RUN")
    assert "-c /tmp/constraints-image.txt /tmp/wheels/tooltune-*.whl" in run
    assert "download.pytorch.org/whl/${TORCH_INDEX}" in run and "git" in run
    # the sed in the Dockerfile swaps the +cpu local version of the one torch pin; it must find exactly one
    (pin,) = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line.startswith("torch==")]
    assert re.fullmatch(r"torch==([^+]+)\+cpu", pin), pin
