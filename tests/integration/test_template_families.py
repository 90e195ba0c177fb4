"""Any base model transformers can load goes end to end or is refused at `base` in one line: tiny random models of
real template families (tests/families.py) through the real `base` stage (from a local folder, as `base.model`
takes a path), a few steps of the real `sft` stage, and one decoded turn through the evaluation's engine and the
shared parser. Marked `integration` (about a minute on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from components import base, build, ingest, sft, toolcalls
from components.config import ConfigError, load_params
from components.evaluation import rollout
from components.training import models
from tests import families
from tests.conftest import REPO, write_params

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    """Splits of the quick profile's domain (shared by every family; `build` does not read the base)."""
    tmp = tmp_path_factory.mktemp("families")
    p = load_params(write_params(tmp, "quick", ingest={"n_episodes": 400},
                                 sft={"max_steps": 3, "batch_size": 2, "padding_free": False}), profile="")
    for stage in (ingest, build):
        stage.run(p)
    return p


def _for(params, family: str, folder) -> object:
    """`params` with `base.model` the family's folder and its own base, SFT and checkpoint paths."""
    paths = params.paths.model_copy(update={"base": f"artifacts/{family}/base", "sft_model": f"artifacts/{family}/sft",
                                            "checkpoints": f"artifacts/{family}/checkpoints",
                                            "reports": f"reports/{family}"})
    return params.model_copy(update={"paths": paths,
                                     "base": params.base.model_copy(update={"model": str(folder)})})


@pytest.mark.parametrize(("family", "template"), [("llama", "tooltune-chatml"), ("gemma", "tooltune-chatml"),
                                                  ("qwen_xml", "native")])
def test_family_goes_base_sft_generate(params, tmp_path, family, template):
    p = _for(params, family, families.save(family, tmp_path / family))
    prepared = base.run(p)
    assert prepared.details["template"] == template
    if template == "native":  # Qwen3.5's template lists every tool's JSON schema: ~1.9k tokens of this tokenizer
        with pytest.raises(ConfigError, match=r"^sft.max_length 1024: truncation leaves none of the 6 episodes"):
            sft.run(p)  # one line, not TRL's sampler crash on an empty dataset
        p = p.model_copy(update={"sft": p.sft.model_copy(update={"max_length": 4096})})
    result = sft.run(p)
    assert result.metrics["loss_first"] > 0 and result.metrics["loss_last"] > 0
    before, after = load_file(str(p.path("base") / "model.safetensors")), load_file(str(p.path("sft_model") /
                                                                                          "model.safetensors"))
    assert max((before[k] - after[k]).abs().max().item() for k in before if k in after) > 1e-5
    model, tok = models.load(p.path("sft_model"))
    own = families.tokenizer(family).chat_template
    assert (tok.chat_template == own) == (template == "native")  # the chosen template travels with the model
    conversation = [{"role": "system", "content": "You help."}, {"role": "user", "content": "Weather in Paris?"}]
    text = rollout.generate(model, tok, [conversation], [families.TOOLS], 8)[0]
    parsed = toolcalls.parse_output(text, tok=tok, tools=families.TOOLS)  # a random model: any verdict, no crash
    assert isinstance(parsed, toolcalls.Parsed) and text
    turn = base.template_problem(tok)  # the SFT'd tokenizer still renders, masks and parses its calls back
    assert turn is None


def test_unsupported_family_is_refused_at_base_in_one_line(params, tmp_path, migrated_db):
    """`python -m components.base` on a model whose tokenizer lowercases (tool-call JSON would not survive it):
    exit 2, one `error:` line naming the model and why, and no base folder written."""
    folder = families.save("uncased", tmp_path / "uncased")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(migrated_db, work / "mlflow.db")
    write_params(work, "quick", base={"model": str(folder)})
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOOLTUNE_PROFILE": "", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "components.base"], check=False, cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert f"base.model '{folder}' cannot be trained for tool calls" in lines[0]
    assert "does not reproduce tool-call text" in lines[0]
    assert not (work / "artifacts" / "base").exists()
