"""params.yaml loads into frozen typed models; bad keys and values are rejected with the key named."""

import pytest
import yaml

from components.config import ConfigError, load_params, section
from tests.conftest import REPO


def test_real_params_and_quick_profile_load():
    default = load_params(REPO / "params.yaml", profile="")
    quick = load_params(REPO / "params.yaml", profile="quick")
    assert default.base.model == "smollm2-135m" and quick.base.model == "tiny"
    assert quick.project.workdir == "runs/quick" and quick.sft.lora.enabled is False
    assert quick.sft.lora.r == default.sft.lora.r  # presets merge, they do not replace sections
    assert section(default, "register").model_name == "tooltune-travel"


def test_params_are_frozen():
    params = load_params(REPO / "params.yaml", profile="")
    with pytest.raises(Exception):
        params.sft.max_steps = 1


def _write(tmp_path, mutate):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    path = _write(tmp_path, lambda raw: raw["sft"].update(lerning_rate=1))
    with pytest.raises(ConfigError, match=r"sft\.lerning_rate"):
        load_params(path, profile="")


def test_rule_violations_name_the_key(tmp_path):
    path = _write(tmp_path, lambda raw: raw["ingest"]["shares"].update(single=0.9))
    with pytest.raises(ConfigError, match="sum to 1"):
        load_params(path, profile="")
    path = _write(tmp_path, lambda raw: raw["rl"].update(batch_size=6, num_generations=4))
    with pytest.raises(ConfigError, match="divisible"):
        load_params(path, profile="")


def test_unknown_profile_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        load_params(REPO / "params.yaml", profile="nope")
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "missing.yaml", profile="")
    path = _write(tmp_path, lambda raw: raw["profiles"]["quick"]["sft"].update(bogus=1))
    with pytest.raises(ConfigError, match=r"profiles\.quick\.sft\.bogus"):
        load_params(path, profile="quick")


@pytest.mark.parametrize(("key", "value", "rule"), [("samples", 0, "greater than or equal to 1"),
                                                   ("temperature", 0.0, "greater than 0"),
                                                   ("top_p", 1.5, "less than or equal to 1")])
def test_k_sample_evaluation_settings_are_checked(tmp_path, key, value, rule):
    path = _write(tmp_path, lambda raw: raw["evaluate"].update({key: value}))
    with pytest.raises(ConfigError, match=rf"evaluate\.{key}: Input should be {rule}"):
        load_params(path, profile="")


def test_k_sample_evaluation_is_off_by_default():
    assert load_params(REPO / "params.yaml", profile="").evaluate.samples == 1
    assert load_params(REPO / "params.yaml", profile="quick").evaluate.samples == 1
