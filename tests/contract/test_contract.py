"""Contract tests on real files: params.yaml, dvc.yaml, the stage modules and the import boundaries.

Nothing is mocked: the real params file goes through the real loader, dvc.yaml through the real DVC
(in a scratch git repo), and the source tree is read as it is.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, load_params

REPO = Path(__file__).resolve().parents[2]
STAGES = ["base", "ingest", "validate", "build", "sft", "reward_model", "rl", "evaluate", "register"]  # the design
# Upstream stages of each stage, as the design describes the data flow (dvc.yaml must give this DAG).
UPSTREAM = {
    "base": set(), "ingest": set(), "validate": {"base", "ingest"}, "build": {"ingest", "validate"},
    "sft": {"base", "build"}, "reward_model": {"base", "build", "sft"},  # on-policy pairs: the SFT model sampled
    "rl": {"sft", "reward_model", "build"},
    "evaluate": {"base", "sft", "rl", "build"}, "register": {"evaluate", "rl", "sft", "ingest", "build"},
}
# Imports that shape logging and reporting, not a stage's outputs: not DVC deps (editing them would
# rerun every stage). `register` imports the whole `tracking` module for registry calls: a dep there.
REPORTING_ONLY = {("components.tracking", "stage_main"), ("components.tracking", "step_metrics_callback"),
                  ("components.result", "StageResult")}
# Data files a stage may list beyond its imports (the chat template is read, not imported).
EXTRA_DEPS = {"components/templates/"}
PATH_REF = re.compile(r"\$\{\s*([\w.]+)\s*\}")


@cache
def dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))


@cache
def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def stage(name: str) -> dict:
    return dvc_yaml()["stages"][name]


def lookup(tree: dict, dotted: str) -> object:
    """The value at `a.b.c` in a nested dict; KeyError naming the key when absent."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


# --- (a) params.yaml ------------------------------------------------------------------------------

def test_real_params_load():
    params = load_params(REPO / "params.yaml", profile="")
    assert params.profile is None
    assert params.paths.metrics


@pytest.mark.parametrize("profile", sorted(raw_params().get("profiles", {})))
def test_every_profile_loads(profile):
    assert load_params(REPO / "params.yaml", profile=profile).profile == profile


@pytest.mark.parametrize("where", [("sft",), ("rl", "reward_weights"), ("profiles", "quick", "sft")])
def test_unknown_key_is_rejected_by_name(tmp_path, where):
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    lookup(raw, ".".join(where))["bogus_knob"] = 1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError, match="bogus_knob"):
        load_params(path, profile="quick" if where[0] == "profiles" else "")


def test_unknown_section_is_rejected_by_name(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text(encoding="utf-8") + "\nmystery_stage: {a: 1}\n")
    with pytest.raises(ConfigError, match="mystery_stage"):
        load_params(path, profile="")


# --- (b)-(f) dvc.yaml against the stage list, the modules and params.yaml --------------------------

def test_dvc_stages_are_the_pipeline_in_order():
    assert list(dvc_yaml()["stages"]) == STAGES


@pytest.mark.parametrize("name", STAGES)
def test_stage_module_has_run_and_main(name):
    assert (REPO / "components" / f"{name}.py").is_file(), f"components/{name}.py is missing"
    module = importlib.import_module(f"components.{name}")
    assert callable(getattr(module, "run", None)), f"components.{name}.run is missing"
    assert callable(getattr(module, "main", None)), f"components.{name}.main is missing"


@pytest.mark.parametrize("name", STAGES)
def test_stage_cmd_runs_its_module(name):
    assert stage(name)["cmd"] == f"python -m components.{name}"


@pytest.mark.parametrize("name", STAGES)
def test_stage_params_name_real_sections(name):
    listed = stage(name)["params"]
    assert name in listed, f"stage {name} must list its own params section"
    for key in listed:
        assert isinstance(key, str), f"stage {name}: params from other files are not used here: {key}"
        lookup(raw_params(), key)  # KeyError names a key that params.yaml lacks


def test_interpolations_are_real_paths():
    refs = {ref for text in strings(dvc_yaml()) for ref in PATH_REF.findall(text)}
    assert refs, "dvc.yaml should take its paths from params.yaml"
    for ref in refs:
        assert ref.startswith("paths."), f"${{{ref}}}: dvc.yaml should only interpolate paths.*"
        assert ref.split(".", 1)[1] in raw_params()["paths"], f"${{{ref}}} is not in params.yaml paths"


@pytest.mark.parametrize("name", STAGES)
def test_stage_writes_its_metrics_file_uncached(name):
    metrics = stage(name)["metrics"]
    assert metrics == [{f"${{paths.metrics}}/{name}.json": {"cache": False}}]


@pytest.mark.parametrize("name", STAGES)
def test_code_deps_exist(name):
    for dep in code_deps(name):
        assert (REPO / dep).exists(), f"stage {name}: dep {dep} does not exist"


@pytest.mark.parametrize("name", STAGES)
def test_code_deps_match_imports(name):
    """The deps list exactly the project code the stage runs, so `dvc repro` reruns it when that changes."""
    needed = imported_code(f"components/{name}.py") | {f"components/{name}.py", "components/config.py"}
    listed = code_deps(name)
    assert needed - listed == set(), f"stage {name}: add to deps in dvc.yaml"
    assert listed - needed - EXTRA_DEPS == set(), f"stage {name}: deps it does not import"


@pytest.mark.parametrize("name", STAGES)
def test_stage_lists_the_params_its_module_reads(name):
    """Every `params.<section>[.<key>]` the stage module reads is covered by its `params:` list."""
    source = (REPO / "components" / f"{name}.py").read_text(encoding="utf-8")
    sections = set(raw_params()) - {"paths", "profiles"}
    listed = stage(name)["params"]
    for section, key in set(re.findall(r"\bparams\.(\w+)(?:\.(\w+))?", source)):
        section = section.rstrip("_")  # `validate_` / `register_` are aliased attributes
        if section not in sections or (section, key) == ("project", "workdir"):
            continue
        read = f"{section}.{key}" if key and isinstance(raw_params()[section], dict) and key in raw_params()[section] \
            else section
        assert any(read == p or read.startswith(p + ".") for p in listed), f"stage {name} reads {read}: list it"


def test_plots_are_stage_outputs():
    outs = [str(o) for s in STAGES for o in stage(s).get("outs", [])]
    for plot in dvc_yaml()["plots"]:
        (path,) = plot
        assert any(path == o or path.startswith(o + "/") for o in outs), f"plot {path} is no stage's output"
    assert (REPO / ".dvc" / "plots" / "grouped_bar.json").is_file()


def strings(node: object) -> list[str]:
    """Every string (keys included) in parsed YAML; comments are not in it."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def code_deps(name: str) -> set[str]:
    return {d for d in stage(name)["deps"] if not d.startswith("${")}


# Packages that load their parts by name (a domain, an importer): a stage depends on the whole folder.
WHOLE_PACKAGES = ("components.domains", "components.data.importers", "components.toolcalls")


def _dep(module: str) -> str:
    """The dvc.yaml dep of a module: its file (a package: its __init__.py), or the folder of a package that is one
    unit (`WHOLE_PACKAGES`; DVC hashes folders whole)."""
    for package in WHOLE_PACKAGES:
        if module == package or module.startswith(package + "."):
            return package.replace(".", "/") + "/"
    path = module.replace(".", "/")
    return f"{path}/__init__.py" if (REPO / path / "__init__.py").is_file() else f"{path}.py"


def imported_code(path: str, seen: set[str] | None = None) -> set[str]:
    """Project files (packages such as components/domains/ as one folder) a module imports, transitively."""
    seen = set() if seen is None else seen
    for module in project_imports(REPO / path):
        dep = _dep(module)
        if dep in seen or module == "components":
            continue
        seen.add(dep)
        files = sorted((REPO / dep).glob("*.py")) if dep.endswith("/") else [REPO / dep]
        for file in files:
            imported_code(str(file.relative_to(REPO)), seen)
    return seen


def project_imports(file: Path) -> set[str]:
    """Dotted `components...` modules a file imports (also inside functions); `from components.p import m` names
    the submodule `components.p.m` (and `components.p` only when a name defined there is imported too)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {a.name for a in node.names if module_exists(f"{node.module}.{a.name}")}
            found |= {f"{node.module}.{name}" for name in submodules}
            if any(a.name not in submodules and (node.module, a.name) not in REPORTING_ONLY for a in node.names):
                found.add(node.module)  # names defined in the module itself
    return {m for m in found if m.split(".")[0] == "components" and module_exists(m)}


def module_exists(module: str) -> bool:
    base = REPO / module.replace(".", "/")
    return module == "components" or base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


# --- (g) import boundaries ----------------------------------------------------------------------

def top_level_imports(file: Path) -> set[str]:
    """Top-level package names a file imports, anywhere in the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def python_files(*folders: str) -> list[Path]:
    files = [f for folder in folders for f in sorted((REPO / folder).rglob("*.py"))]
    assert files, f"no Python files under {folders}"
    return files


def importers(package: str, *folders: str) -> set[str]:
    return {str(f.relative_to(REPO)) for f in python_files(*folders) if package in top_level_imports(f)}


def test_components_never_import_prefect():
    assert importers("prefect", "components") == set()


@pytest.mark.parametrize("package", ["torch", "transformers", "trl", "peft"])
def test_flows_hold_no_ml_code(package):
    assert importers(package, "flows") == set()


def test_mlflow_folder_is_not_a_package():
    assert not (REPO / "mlflow" / "__init__.py").exists(), "mlflow/__init__.py would shadow the mlflow package"


def test_only_tracking_register_and_the_mlflow_model_import_mlflow():
    # promotion_lock, retention: the registry lease and the pruning of old versions are MLflow calls (split out of
    # register for size)
    allowed = {"components/tracking/__init__.py", "components/tracking/promotion_lock.py", "components/register.py",
               "components/tracking/retention.py",
               "components/serving/pyfunc.py", "components/serving/card.py"}
    assert importers("mlflow", "components", "flows") - allowed == set()


def test_only_validate_gx_imports_great_expectations():
    assert importers("great_expectations", "components", "flows") - {"components/validation/gx.py"} == set()


# --- (h) the real DVC reads dvc.yaml --------------------------------------------------------------

# One Python process runs `dvc init`, `dvc stage list` and `dvc dag` through DVC's own CLI entry point:
# DVC takes ~3 s to start, so three subprocesses would cost three times that.
DVC_SCRIPT = """
import sys
from dvc.cli import main
for args in sys.argv[1:]:
    print("@@@ " + args, flush=True)
    code = main(args.split())
    sys.stdout.flush()
    if code:
        sys.exit(code)
"""
DVC_COMMANDS = ("init -q", "stage list", "dag --md")


@pytest.fixture(scope="module")
def dvc_outputs(tmp_path_factory) -> dict[str, str]:
    """What the real DVC prints for each command, in a scratch git repo with dvc.yaml and params.yaml."""
    root = tmp_path_factory.mktemp("dvc")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run([sys.executable, "-c", DVC_SCRIPT, *DVC_COMMANDS], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"dvc failed:\n{done.stdout}\n{done.stderr}"
    chunks = done.stdout.split("@@@ ")[1:]
    return {chunk.split("\n", 1)[0]: chunk.split("\n", 1)[1] for chunk in chunks}


def test_dvc_lists_every_stage(dvc_outputs):
    listed = [line.split()[0] for line in dvc_outputs["stage list"].splitlines() if line.strip()]
    assert listed == STAGES


def test_dvc_dag_is_the_designed_pipeline(dvc_outputs):
    """`dvc dag` resolves every stage's deps against the others' outs (and checks for overlaps)."""
    text = dvc_outputs["dag --md"]
    nodes = dict(re.findall(r'(node\d+)\["(\w+)"\]', text))
    assert sorted(nodes.values()) == sorted(STAGES)
    upstream = {name: set() for name in nodes.values()}
    for src, dst in re.findall(r"(node\d+)-->(node\d+)", text):
        upstream[nodes[dst]].add(nodes[src])
    assert upstream == UPSTREAM
