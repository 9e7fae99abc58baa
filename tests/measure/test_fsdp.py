from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lorabench.cli.main import main
from lorabench.errors import ConfigError
from lorabench.measure.runner import check_engine, fsdp_plugin, fsdp_wrap_policy
from lorabench.models import resolve_model
from lorabench.models.load import load_for_training
from lorabench.recipe import prepare_for_training
from lorabench.spec import RunSpec, parse_spec


def _spec(parallelism: str, offload: bool = False) -> RunSpec:
    return parse_spec({"model": "tiny", "parallelism": parallelism, "fsdp_offload": offload, "hardware": {"count": 2}})


def test_plugin_follows_the_spec() -> None:
    from torch.distributed.fsdp import ShardingStrategy

    full = fsdp_plugin(_spec("fsdp_full_shard", offload=True))
    assert full.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert full.cpu_offload.offload_params is True
    assert full.use_orig_params is True and full.auto_wrap_policy is fsdp_wrap_policy
    grad_op = fsdp_plugin(_spec("fsdp_shard_grad_op"))
    assert grad_op.sharding_strategy == ShardingStrategy.SHARD_GRAD_OP
    assert grad_op.cpu_offload.offload_params is False


def test_fsdp_without_cuda_is_bad_input_not_silent_ddp() -> None:
    with pytest.raises(ConfigError, match=r"needs CUDA GPUs.*silently be DDP"):
        check_engine(_spec("fsdp_full_shard"), cuda=False)
    check_engine(_spec("fsdp_full_shard"), cuda=True)


@pytest.mark.parametrize("parallelism", ["fsdp_full_shard", "fsdp_shard_grad_op"])
def test_cli_run_with_fsdp_on_cpu_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, parallelism: str) -> None:
    out_dir = tmp_path / "never"
    args = ["run", "--model", "tiny", "--out", str(out_dir), "--parallelism", parallelism, "--nproc", "2"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "needs CUDA GPUs" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out_dir.exists()


def test_wrap_policy_units_are_decoder_layers_and_trainable_leaves() -> None:
    spec = parse_spec({"model": "tiny", "targets": "q_proj,v_proj"})
    model = prepare_for_training(load_for_training(resolve_model("tiny"), spec, torch.device("cpu"), True, 0), spec)
    wrapped = [name for name, module in model.named_modules() if name and fsdp_wrap_policy(module, False, 0)]
    layers = [n for n in wrapped if n.endswith(tuple(f"layers.{i}" for i in range(64)))]
    leaves = [n for n in wrapped if n not in layers]
    assert layers and all("lora_" in n for n in leaves) and leaves
    assert all(fsdp_wrap_policy(m, True, 0) for m in model.modules())  # always descend
    # every trainable parameter sits in a leaf unit: one dtype per FSDP flat parameter
    trainable = {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable <= set(leaves)


SCRIPT = textwrap.dedent(
    """
    import json, sys, torch, torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP, ShardingStrategy
    from lorabench.measure.runner import fsdp_wrap_policy
    from lorabench.models import resolve_model
    from lorabench.models.load import load_for_training
    from lorabench.recipe import prepare_for_training
    from lorabench.spec import RunSpec, parse_spec

    dist.init_process_group("gloo")
    spec = parse_spec({"model": "tiny", "parallelism": sys.argv[2], "hardware": {"count": 2}})
    model = prepare_for_training(load_for_training(resolve_model("tiny"), spec, torch.device("cpu"), True, 0), spec)
    strategy = ShardingStrategy.FULL_SHARD if sys.argv[2] == "fsdp_full_shard" else ShardingStrategy.SHARD_GRAD_OP
    fsdp = FSDP(model, auto_wrap_policy=fsdp_wrap_policy, use_orig_params=True, device_id=torch.device("cpu"),
                sharding_strategy=strategy)
    optimizer = torch.optim.AdamW([p for p in fsdp.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(dist.get_rank())
    ids = torch.randint(0, 100, (2, 16))
    losses = []
    for _ in range(4):
        loss = fsdp(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    units = sum(1 for m in fsdp.modules() if isinstance(m, FSDP))
    if dist.get_rank() == 0:
        open(sys.argv[1], "w").write(json.dumps({"losses": losses, "units": units, "world": dist.get_world_size()}))
    dist.destroy_process_group()
    """
)


@pytest.mark.integration
@pytest.mark.slow
def test_peft_model_trains_under_torch_fsdp_on_two_gloo_processes(tmp_path: Path) -> None:
    parallelism = "fsdp_full_shard"
    # accelerate runs FSDP only on GPUs, so this drives torch's FSDP directly with the runner's wrap policy
    script = tmp_path / "fsdp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*command, str(script), str(out), parallelism],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["world"] == 2 and result["units"] > 2
    assert result["losses"][-1] < result["losses"][0]
