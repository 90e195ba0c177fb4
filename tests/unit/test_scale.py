"""Scale-out settings: the accelerate configs under infra/accelerate/ go through accelerate's own config loader and
launch pipeline (to the environment a launched process reads, and the plugin it builds from it); params.yaml's
`base.dtype` / `base.quantization` and the `gpu` profile load and are honoured where training loads its model;
4-bit on a machine without CUDA fails before any work with one line naming the setting.
"""

from __future__ import annotations

import os
import shutil
from unittest import mock

import pytest
import torch

from components import sft, training
from components.config import ConfigError, load_params
from components.training import models
from tests.conftest import REPO, write_params

CONFIGS = REPO / "infra" / "accelerate"
# file -> (accelerate's launch flag it turns on, environment the launched processes get)
EXPECTED = {
    "ddp": ("multi_gpu", {}),
    "zero2": ("use_deepspeed", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}),
    "zero3": ("use_deepspeed", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3",
                                "ACCELERATE_DEEPSPEED_ZERO3_INIT": "true",
                                "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "true"}),
    "fsdp": ("use_fsdp", {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_SHARDING_STRATEGY": "FULL_SHARD",
                          "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT",
                          "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP"}),
}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def _launch_env(name: str) -> tuple[object, dict[str, str]]:
    """What `accelerate launch --config_file <name>.yaml -m components.sft` resolves: its arguments and the
    environment it starts each process with (accelerate's own functions, short of starting processes)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / f"{name}.yaml"), "-m", "components.sft"])
    args, defaults, mixed_from_config = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does before its deepspeed launcher
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mixed_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        return args, prepare_deepspeed_cmd_env(args)[1]
    return args, prepare_multi_gpu_env(args)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_config_loads_and_launches(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert isinstance(config, ClusterConfig)
    # params.yaml's base.dtype is the one home of precision: a value here would override the trainer's bf16 flag
    assert config.mixed_precision == "no" and config.num_processes == 8
    flag, expected = EXPECTED[name]
    args, env = _launch_env(name)
    assert getattr(args, flag) is True and args.num_processes == 8
    assert {k: env.get(k) for k in expected} == expected
    assert env["ACCELERATE_MIXED_PRECISION"] == "no"


@pytest.mark.parametrize("name,stage", [("zero2", 2), ("zero3", 3)])
def test_deepspeed_configs_build_accelerates_plugin(name, stage):
    """The plugin each launched process builds from that environment (DeepSpeed itself is not needed for this)."""
    from accelerate.utils import DeepSpeedPlugin

    with mock.patch.dict(os.environ, _launch_env(name)[1]):
        plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == stage
    zero = plugin.deepspeed_config["zero_optimization"]
    assert zero["stage3_gather_16bit_weights_on_model_save"] is (stage == 3)  # ZeRO-3: whole weights to save
    # batch sizes, accumulation and clipping come from the trainer (params.yaml), not from here
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"
    assert plugin.deepspeed_config["gradient_accumulation_steps"] == "auto"


def test_fsdp_config_builds_accelerates_plugin():
    from accelerate.utils import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import StateDictType

    with mock.patch.dict(os.environ, _launch_env("fsdp")[1]):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT and plugin.cpu_ram_efficient_loading


def test_gpu_profile_loads_a_bf16_lora_recipe():
    gpu = load_params(REPO / "params.yaml", profile="gpu")
    assert gpu.base.model == "Qwen/Qwen2.5-1.5B-Instruct" and gpu.base.dtype == "bfloat16"
    assert gpu.base.quantization is None
    assert all(stage.lora.enabled for stage in (gpu.sft, gpu.reward_model, gpu.rl))
    assert gpu.sft.batch_size * gpu.sft.grad_accum == 16 and gpu.sft.max_length == 2048
    default = load_params(REPO / "params.yaml", profile="")
    assert default.base.dtype == "auto" and default.base.quantization is None and default.sft.grad_accum == 1
    qlora = load_params(REPO / "params.yaml", profile="gpu", overrides=["base.quantization=4bit"])
    assert qlora.base.quantization == "4bit"


def test_4bit_needs_lora_on_every_trained_model():
    with pytest.raises(ConfigError, match=r"base\.quantization: 4bit trains LoRA adapters only.*sft\.lora\.enabled"):
        load_params(REPO / "params.yaml", profile="", overrides=["base.quantization=4bit", "sft.lora.enabled=false"])
    with pytest.raises(ConfigError, match=r"base\.dtype"):
        load_params(REPO / "params.yaml", profile="", overrides=["base.dtype=float16"])


def test_precision_follows_base_dtype(params_factory):
    cpu = not torch.cuda.is_available()
    flags = {dtype: training.precision(params_factory(base={"dtype": dtype}).base)
             for dtype in ("float32", "bfloat16", "auto")}
    assert flags["float32"]["bf16"] is False and flags["bfloat16"]["bf16"] is True
    assert flags["auto"] == training.precision()  # auto: what the stages did before the setting
    if cpu:
        assert flags["auto"]["bf16"] is False and flags["auto"]["use_cpu"] is True  # fp32 on CPU by default


def test_training_loads_bf16_only_where_weights_stay_frozen(params_factory, tmp_path):
    """bf16 under LoRA: the frozen base in bf16; full fine-tuning keeps fp32 weights (the optimizer's copy)."""
    params = params_factory(base={"dtype": "bfloat16"})
    model, tok = models.build_tiny(params.base.tiny, ["hello world, a tool call"] * 20, seed=0)
    folder = tmp_path / "tiny"
    models.save(model, tok, folder, {})
    assert training.load_for_training(params, folder, lora=True)[0].dtype == torch.bfloat16
    assert training.load_for_training(params, folder, lora=False)[0].dtype == torch.float32
    fp32 = params_factory(base={"dtype": "float32"})
    assert training.load_for_training(fp32, folder, lora=True)[0].dtype == torch.float32
    reward, _ = training.load_for_training(params, folder, lora=True, sequence_classification=True)
    assert reward.dtype == torch.bfloat16 and reward.config.num_labels == 1


@NO_CUDA
def test_4bit_on_cpu_fails_before_any_work(params_factory):
    params = params_factory(base={"quantization": "4bit"}, sft={"lora": {"enabled": True}},
                            reward_model={"lora": {"enabled": True}})
    assert not params.path("splits").exists()  # no data: the stage must stop before reading any
    with pytest.raises(ConfigError, match=r"^base\.quantization: 4bit .*needs a CUDA GPU.*base\.quantization: null"):
        sft.run(params)


@NO_CUDA
def test_4bit_on_cpu_is_one_line_from_the_stage_command(tmp_path, monkeypatch, capsys, migrated_db):
    """`python -m components.sft`'s entry (`stage_main`), in this process: exit 2 and one `error:` line."""
    from components.tracking import stage_main

    write_params(tmp_path, "quick", base={"quantization": "4bit"}, sft={"lora": {"enabled": True}},
                 reward_model={"lora": {"enabled": True}})
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLTUNE_PROFILE", "")
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    with pytest.raises(SystemExit) as stopped:
        stage_main("sft")
    assert stopped.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: base.quantization: 4bit (QLoRA, bitsandbytes) needs a CUDA GPU and this machine has "
                      "none; set base.quantization: null"]
    assert not (tmp_path / "artifacts").exists()
