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


# --- `-S key=value` overrides (tooltune run/stage), `dvc exp run -S` syntax ---------------------------------


def test_overrides_change_the_loaded_values():
    default = load_params(REPO / "params.yaml", profile="")
    params = load_params(REPO / "params.yaml", profile="", overrides=[
        "sft.max_steps=120", "sft.lora.r=4", "validate.max_tokens=99", "evaluate.models=[base, sft]",
        "rl.reward_weights={correctness: 2.0, completion: 1, efficiency: 0, reward_model: 0}"])
    assert (params.sft.max_steps, params.sft.lora.r, params.validate_.max_tokens) == (120, 4, 99)
    assert params.evaluate.models == ["base", "sft"] and params.rl.reward_weights.correctness == 2.0
    assert params.sft.learning_rate == default.sft.learning_rate  # only the named keys change
    assert params.overrides == ("sft.max_steps=120", "sft.lora.r=4", "validate.max_tokens=99",
                                "evaluate.models=[base, sft]",
                                "rl.reward_weights={correctness: 2.0, completion: 1, efficiency: 0, reward_model: 0}")
    assert default.overrides == ()


def test_overrides_apply_after_the_profile_and_in_order():
    quick = load_params(REPO / "params.yaml", profile="quick")
    assert quick.sft.max_steps == 60  # the profile's value ...
    params = load_params(REPO / "params.yaml", profile="quick", overrides=["sft.max_steps=7", "sft.max_steps=9"])
    assert params.sft.max_steps == 9  # ... loses to the override; the last override wins
    assert params.profile == "quick" and params.base.model == "tiny"  # the rest of the profile stays
    assert params.profiles["quick"]["sft"]["max_steps"] == 60  # the preset itself is not rewritten


@pytest.mark.parametrize(("override", "message"), [
    ("sft.max_step=120", r"-S sft\.max_step=120: sft\.max_step is not a key of params\.yaml"),
    ("sft.lora.r.x=1", r"sft\.lora\.r\.x is not a key"),
    ("profile=quick", r"profile is not a key"),
    ("+sft.extra=1", r"an override is key\.path=value"),
    ("sft.max_steps", r"an override is key\.path=value"),
    ("sft.max_steps=[1", r"-S sft\.max_steps=\[1: the value is not YAML"),
    ("sft.max_steps=many", r"sft\.max_steps: Input should be a valid integer.*\(set by -S sft\.max_steps=many\)"),
    ("validate.max_tokens=-1", r"validate\.max_tokens: Input should be greater than 0 \(set by -S"),
    ("sft.lora=3", r"sft\.lora: Input should be a valid dictionary"),
    ("ingest.shares.single=0.9", r"ingest\.shares must sum to 1.*\(set by -S ingest\.shares\.single=0\.9\)"),
])
def test_bad_overrides_are_config_errors_naming_them(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_params(REPO / "params.yaml", profile="", overrides=[override])
    assert "\n" not in str(err.value)  # one line


def test_a_null_system_prompt_is_the_domains_own():
    """`base.system_prompt: null` (the default) gives each domain its own system turn: finance is not told it is a
    travel assistant, a catalog domain is named; a prompt that is set is kept."""
    from components.domains import finance, travel

    assert load_params(REPO / "params.yaml", profile="").base.system_prompt == travel.SYSTEM_PROMPT
    assert load_params(REPO / "params.yaml", profile="", overrides=["project.domain=finance"]).base.system_prompt == \
        finance.SYSTEM_PROMPT
    clinic = load_params(REPO / "params.yaml", profile="", overrides=[
        "project.domain=clinic", "project.catalog=tools.json", "ingest.source=none",
        "ingest.imports=[{source: openai, path: a.jsonl, domain: clinic}]"]).base.system_prompt
    assert clinic.startswith("You are a helpful clinic assistant.") and "travel" not in clinic
    assert load_params(REPO / "params.yaml", profile="", overrides=["base.system_prompt=Be brief."]).base.system_prompt == \
        "Be brief."


@pytest.mark.parametrize(("overrides", "message"), [
    (["sft.cooldown_steps=5"], r"sft\.cooldown_steps \(5\) is for lr_schedule wsd only \(lr_schedule is constant\)"),
    (["sft.lr_schedule=wsd"], r"sft\.lr_schedule wsd needs 0 < cooldown_steps <= max_steps - warmup_steps"),
    (["rl.lr_schedule=wsd", "rl.max_steps=10", "rl.warmup_steps=3", "rl.cooldown_steps=8"],
     r"rl\.lr_schedule wsd needs .* \(10 - 3\); got 8"),
])
def test_a_cool_down_belongs_to_the_wsd_schedule_and_fits_after_the_warm_up(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_params(REPO / "params.yaml", profile="", overrides=overrides)
    params = load_params(REPO / "params.yaml", profile="",
                         overrides=["sft.lr_schedule=wsd", "sft.cooldown_steps=13", "rl.lr_schedule=wsd",
                                    "rl.max_steps=10", "rl.warmup_steps=3", "rl.cooldown_steps=7"])
    assert (params.sft.cooldown_steps, params.rl.cooldown_steps) == (13, 7)
