"""One real fine-tuning run of a RunSpec, measured: transformers + PEFT (+ bitsandbytes), driven by accelerate.

The loop stays visible here (no Trainer): load data, build the model and adapter, then for each optimizer
step run ``grad_accum`` micro-batches (forward with labels masked to the target, backward) and one
optimizer step, while :class:`~lorabench.measure.trackers.ResourceTracker` times it and counts tokens and
memory. Under ``torchrun`` / ``accelerate launch`` each process is one data-parallel rank (DDP; DeepSpeed
ZeRO when the spec asks for it and DeepSpeed is installed); rank 0 gathers every rank's figures and writes
the record. Peaks are per device (max over ranks, never summed); throughput sums all ranks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from lorabench import interrupts
from lorabench.data import (
    Example,
    batch_token_counts,
    build_tokenizer,
    collate,
    load_tokenizer,
    make_batches,
    model_inputs,
    pad_to_for,
)
from lorabench.data.dataset import LoadedDataset, load_dataset_records, training_texts
from lorabench.data.encode import MAX_CHARS_PER_TOKEN, encode_rendered
from lorabench.errors import (
    ConfigError,
    DataError,
    EnvironmentFailure,
    Interrupted,
    LorabenchError,
    MeasurementError,
    is_environment_failure,
    signal_name,
)
from lorabench.measure.aggregate import combine_ranks_metrics, gather_metrics
from lorabench.measure.environment import describe_environment
from lorabench.measure.options import RunOptions
from lorabench.measure.record import write_run_record
from lorabench.measure.trackers import ResourceTracker
from lorabench.models import ResolvedModel, resolve_model
from lorabench.models.build import quiet_hf
from lorabench.models.load import TrainingDtype, load_for_training, training_dtype
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "PreparedData",
    "StepHook",
    "check_engine",
    "fsdp_plugin",
    "fsdp_wrap_policy",
    "load_records",
    "prepare_data",
    "run_training",
]


class PreparedData:
    """Tokenized, batched training data for one rank, and how it was made."""

    def __init__(self, batches: list[list[Example]], pad_id: int, pad_to: int | None, info: dict[str, Any]) -> None:
        self.batches = batches
        self.pad_id = pad_id
        self.pad_to = pad_to
        self.info = info


def load_records(options: RunOptions) -> LoadedDataset:
    """The dataset's rows and format: any supported file or folder, a cached dataset, or a synthetic task.

    Every record is rendered once (chat without a template) so a bad one fails here, before a run starts.

    Raises:
        DataError: Missing, empty or malformed dataset (file and record named), or unknown synthetic task.
    """
    loaded = load_dataset_records(options.dataset, options.format, options.fields, options.examples, options.seed)
    loaded.render(None)
    return loaded


def _tokenizer(
    model: ResolvedModel, loaded: LoadedDataset, seq_len: int
) -> tuple[PreTrainedTokenizerBase, str, list[Any], str | None]:
    """The tokenizer (the model's local one, else a byte-level BPE trained on the data) and the rendered data."""
    if model.local_dir is not None:
        local = load_tokenizer(model.local_dir)
        if local is not None:
            rendered, template = loaded.render(local)
            return local, f"local: {model.local_dir}", rendered, template
    rendered, template = loaded.render(None)
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    texts = training_texts(rendered, MAX_CHARS_PER_TOKEN * seq_len)
    built = build_tokenizer(texts, vocab_size=min(vocab, 32_000) if vocab else 4096)
    return built, f"byte-level BPE trained offline on the dataset (vocab {len(built)})", rendered, template


def prepare_data(spec: RunSpec, model: ResolvedModel, options: RunOptions, rank: int, world: int) -> PreparedData:
    """Read, render, tokenize, encode and batch the data; each rank keeps every ``world``-th batch.

    Raises:
        DataError: Bad dataset, or too few batches for the number of ranks.
    """
    loaded = load_records(options)
    tokenizer, how, rendered, template = _tokenizer(model, loaded, spec.seq_len)
    examples = encode_rendered(rendered, tokenizer, spec.seq_len)
    batches = make_batches(examples, spec.micro_batch, options.batching, spec.seq_len, options.seed)
    if len(batches) < world:
        raise DataError(f"{options.dataset}: {len(batches)} batches cannot feed {world} ranks; use more examples")
    pad_id = tokenizer.pad_token_id if isinstance(tokenizer.pad_token_id, int) else int(tokenizer.eos_token_id)
    info = {
        **loaded.describe(),
        "examples": len(examples),
        "truncated": examples.truncated,
        "dropped": examples.dropped,
        "tokenizer": how,
        "chat_template": template,
        "batching": options.batching,
        "batches_per_epoch": len(batches),
        "rows_per_epoch": sum(len(b) for b in batches),
    }
    return PreparedData(batches[rank::world], pad_id, pad_to_for(options.batching, spec.seq_len), info)


def _optimizer(spec: RunSpec, params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, str]:
    from lorabench.recipe import make_optimizer, optimizer_name

    return make_optimizer(spec, params), optimizer_name(spec)


def _prepare_model(
    spec: RunSpec, model: ResolvedModel, options: RunOptions, device: torch.device, dtype: TrainingDtype
) -> Any:
    from lorabench.models.build import without_bitsandbytes
    from lorabench.recipe import prepare_for_training

    # a 16-bit base has no bitsandbytes layer for PEFT's 8/4-bit dispatchers to match: keep bitsandbytes (and the
    # torch compiler it pulls in, ~1.3 s) unimported while the model is built; an 8-bit optimizer imports it later
    unquantized = without_bitsandbytes() if spec.bits == 16 else contextlib.nullcontext()
    with unquantized:
        base = load_for_training(model, spec, device, options.random_weights, options.seed, dtype=dtype.dtype)
        return prepare_for_training(base, spec)


def _total_steps(spec: RunSpec, options: RunOptions, batches_per_rank: int) -> int:
    if options.max_steps is not None:
        return options.max_steps
    epochs = options.epochs or spec.epochs
    return max(1, math.ceil(batches_per_rank * epochs / spec.grad_accum))


def _step_shape(micros: Sequence[list[Example]], pad_to: int | None) -> tuple[tuple[int, int, bool], ...]:
    """Per micro-batch: rows, padded length, whether a 4-D mask is built (padding or packed rows).

    These are what allocations depend on.
    """
    shapes = []
    for batch in micros:
        length = pad_to or max((len(e) for e in batch), default=0)
        masked = any(len(e) < length or len(e.lengths or ()) > 1 for e in batch)
        shapes.append((len(batch), length, masked))
    return tuple(shapes)


def _cycle(batches: list[list[Example]]) -> Iterator[list[Example]]:
    return itertools.cycle(batches)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


def _distributed() -> tuple[int, int, int]:
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def check_engine(spec: RunSpec, cuda: bool | None = None) -> None:
    """Fail early when the spec needs an engine that is not installed or a device that is not there.

    Args:
        spec: The run.
        cuda: Whether the run has CUDA GPUs; None asks torch.

    Raises:
        ConfigError: ZeRO requested without DeepSpeed; FSDP requested without CUDA GPUs.
    """
    if spec.parallelism.startswith("zero") and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(f"parallelism {spec.parallelism} needs DeepSpeed (pip install deepspeed); use ddp without it")
    if spec.parallelism.startswith("fsdp") and not (torch.cuda.is_available() if cuda is None else cuda):
        raise ConfigError(
            f"parallelism {spec.parallelism} needs CUDA GPUs: accelerate applies its FSDP plugin only to GPU "
            "(and other accelerator) runs; a CPU/gloo run would silently be DDP. Use ddp on CPU"
        )


def fsdp_wrap_policy(module: torch.nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """FSDP auto-wrap policy for a PEFT model: one unit per decoder layer and one per trainable leaf module.

    Decoder layers are transformers' ``GradientCheckpointingLayer`` subclasses. The trainable leaves (LoRA A/B,
    DoRA magnitudes, ``modules_to_save`` copies) get units of their own because FSDP flattens a unit's
    parameters into one tensor of one dtype, and PEFT keeps adapters in fp32 beside a bf16 base (PEFT's
    ``fsdp_auto_wrap_policy`` does the same).

    Args:
        module: The module FSDP asks about.
        recurse: True when FSDP asks whether to descend into ``module``.
        nonwrapped_numel: Parameters not yet wrapped (unused).

    Returns:
        Whether to descend (always) or to wrap ``module``.
    """
    from transformers.modeling_layers import GradientCheckpointingLayer

    if recurse:
        return True
    if isinstance(module, GradientCheckpointingLayer):
        return True
    weight = getattr(module, "weight", None)
    leaf = next(module.children(), None) is None
    return leaf and isinstance(weight, torch.nn.Parameter) and weight.requires_grad


def fsdp_plugin(spec: RunSpec) -> Any:
    """Accelerate's FSDP plugin for ``fsdp_full_shard`` / ``fsdp_shard_grad_op`` (+ ``fsdp_offload``).

    FSDP1 with ``use_orig_params`` (frozen and trainable parameters share units), :func:`fsdp_wrap_policy`,
    no prefetch (accelerate's default), and a full state dict.
    """
    from accelerate import FullyShardedDataParallelPlugin

    strategy = {"fsdp_full_shard": "FULL_SHARD", "fsdp_shard_grad_op": "SHARD_GRAD_OP"}[spec.parallelism]
    return FullyShardedDataParallelPlugin(
        fsdp_version=1,
        sharding_strategy=strategy,
        cpu_offload=spec.fsdp_offload,
        use_orig_params=True,
        auto_wrap_policy=fsdp_wrap_policy,
        state_dict_type="FULL_STATE_DICT",
        sync_module_states=False,
    )


def _accelerator(spec: RunSpec, cpu: bool) -> Any:
    from accelerate import Accelerator

    plugin = None
    if spec.parallelism.startswith("zero"):
        check_engine(spec)
        from accelerate import DeepSpeedPlugin

        plugin = DeepSpeedPlugin(zero_stage=int(spec.parallelism[-1]), gradient_accumulation_steps=spec.grad_accum)
    if spec.parallelism.startswith("fsdp"):
        check_engine(spec, cuda=not cpu)
        return Accelerator(cpu=cpu, fsdp_plugin=fsdp_plugin(spec))
    return Accelerator(cpu=cpu, deepspeed_plugin=plugin)


StepHook = Callable[[int, int, float, float | None], None]


def run_training(spec: RunSpec, options: RunOptions, on_step: StepHook | None = None) -> dict[str, Any]:
    """Run and measure one fine-tuning job; rank 0 writes ``options.out/result.json``.

    Bad input (spec, dataset) raises before anything is written. A run that fails or runs out of memory is
    recorded with status ``failed`` / ``oom`` and its message. SIGINT / SIGTERM / SIGHUP (under
    :func:`lorabench.interrupts.signals_handled`) stop the run at the next micro-batch (every rank at the same
    step), outside any native callback; the trackers are stopped, the run is recorded as ``interrupted`` and
    :class:`~lorabench.errors.Interrupted` is raised.

    Args:
        spec: What to fine-tune.
        options: Dataset, length, output folder.
        on_step: Called after each optimizer step with ``(step, total_steps, loss, padded_tokens_per_s)``
            (tokens/s of that step on this rank; None with the trackers off) -- the CLI's progress bar.

    Returns:
        The record (on every rank; only rank 0 writes it).

    Raises:
        ConfigError, DataError, ModelError: Bad input, before the run starts.
        Interrupted: A signal stopped the run (after its record was written).
        EnvironmentFailure: The adapter or the record could not be written (disk full, read-only).
    """
    with interrupts.deferred():
        return _run_training(spec, options, on_step)


def _agreed_stop(world: int, device: torch.device) -> None:
    """Raise Interrupted when a signal arrived; with several ranks, all of them stop at the same step."""
    if world == 1 or not torch.distributed.is_initialized():
        interrupts.check()
        return
    flag = torch.tensor([float(interrupts.received() or 0)], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    if flag.item() > 0:
        raise Interrupted(int(flag.item()))


def _run_training(spec: RunSpec, options: RunOptions, on_step: StepHook | None) -> dict[str, Any]:
    from lorabench.predict import account

    rank, world, local_rank = _distributed()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    tracker = ResourceTracker(
        warmup_steps=options.warmup_steps,
        world_size=world,
        rank=rank,
        devices=[local_rank] if cuda else None,
        trackers_enabled=options.trackers,
    )
    tracker.start()  # the clock starts before data is touched (MLPerf rule)
    model_ref = resolve_model(spec.model)
    expected = account(spec, model_ref)
    data = prepare_data(spec, model_ref, options, rank, world)
    steps = _total_steps(spec, options, len(data.batches))
    if options.warmup_steps >= steps:
        raise ConfigError(f"warmup_steps ({options.warmup_steps}) must be below the run's {steps} steps")
    compute = training_dtype(spec.bits, device.type, options.cpu_dtype)
    torch.manual_seed(options.seed)
    status, message, losses = "ok", None, []
    trainable = None
    optimizer_name = None
    accelerator = None
    model: Any = None
    stopped: Interrupted | None = None
    try:
        if world == 1:  # several ranks agree on a step instead (a rank stopping alone would hang the others)
            interrupts.check()
        accelerator = _accelerator(spec, cpu=not cuda)
        model = _prepare_model(spec, model_ref, options, device, compute)
        if world == 1:
            interrupts.check()
        params = [p for p in model.parameters() if p.requires_grad]
        trainable = sum(p.numel() for p in params)
        optimizer, optimizer_name = _optimizer(spec, params)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / (options.warmup_steps + 1))
        )
        model, optimizer = accelerator.prepare(model, optimizer)
        model.train()
        batches = _cycle(data.batches)
        for _ in range(steps):
            micros = [next(batches) for _ in range(spec.grad_accum)]
            tracker.step_begin(shape=_step_shape(micros, data.pad_to))
            padded = nonpad = samples = 0
            step_loss = 0.0
            for micro in range(spec.grad_accum):
                if world == 1:
                    interrupts.check()
                tensors = collate(micros[micro], data.pad_id, data.pad_to)
                p, n = batch_token_counts(tensors)
                padded, nonpad, samples = padded + p, nonpad + n, samples + int(tensors["input_ids"].shape[0])
                tensors = {k: v.to(device) for k, v in tensors.items()}
                sync = micro == spec.grad_accum - 1
                with accelerator.no_sync(model) if not sync and world > 1 else _null():
                    # spec.autocast: the HF Trainer's bf16=True (torch.autocast around the forward, not the backward)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.autocast):
                        loss = model(**model_inputs(tensors)).loss / spec.grad_accum
                    accelerator.backward(loss)
                step_loss += float(loss.detach())
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            duration = tracker.step_end(padded_tokens=padded, nonpad_tokens=nonpad, samples=samples)
            losses.append(step_loss)
            if on_step is not None:
                on_step(len(losses), steps, step_loss, padded / duration if duration else None)
            _agreed_stop(world, device)
    except Interrupted as exc:  # stopped between micro-batches: the trackers stop below, outside native code
        stopped = exc
        status, message = (
            "interrupted",
            f"interrupted by {signal_name(exc.signum)} after {len(losses)} of {steps} steps",
        )
        with contextlib.suppress(MeasurementError):  # a step the signal cut short counts no tokens
            tracker.step_end(0, 0, 0)
    except LorabenchError:  # bad input found late (e.g. no local weights): not a run result
        if tracker.metrics is None:
            tracker.stop()
        raise
    except Exception as exc:  # a run that dies is a result, recorded with its message
        status = "oom" if _is_oom(exc) else "failed"
        message = f"{type(exc).__name__}: {exc}".strip()[:2000]
    finally:
        if tracker.metrics is None:
            try:
                metrics = tracker.stop()
            except MeasurementError as exc:
                status, message = "failed", f"measurement failed: {exc}"
                metrics = {}
        else:
            metrics = tracker.metrics
    per_rank = gather_metrics(metrics, world)
    adapter_bytes = None
    # Not under FSDP: rank 0's parameters are views of its shard, and PEFT 0.21 drops every key of a gathered full
    # state dict (its key filter walks named_modules, which carry FSDP's wrapper prefix), so no adapter file is
    # written there and adapter_file_bytes stays null.
    if status == "ok" and rank == 0 and accelerator is not None and not spec.parallelism.startswith("fsdp"):
        adapter_dir = options.out / "adapter"
        unwrapped = accelerator.unwrap_model(model)
        for config in unwrapped.peft_config.values():
            config.base_model_name_or_path = spec.model  # not the temporary folder random weights came from
        try:
            with quiet_hf():
                unwrapped.save_pretrained(adapter_dir, safe_serialization=True)
        except Exception as exc:  # OSError, or safetensors' own error carrying the OS error
            if not is_environment_failure(exc):
                raise
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise EnvironmentFailure(
                f"{adapter_dir}: cannot save the adapter ({reason}); no record is written, so a rerun redoes it: "
                "free space and rerun"
            ) from None
        adapter_bytes = sum(f.stat().st_size for f in adapter_dir.glob("*.safetensors"))
    record = {
        "status": status,
        "message": message,
        "spec": spec.model_dump(mode="json"),
        "options": options.model_dump(mode="json"),
        "model": {"key": model_ref.key, "display_name": model_ref.display_name, "config_source": model_ref.source},
        "data": data.info,
        "environment": describe_environment(device),
        "world_size": world,
        "compute_dtype": compute.to_dict(),
        "engine": {
            "loop": "lorabench.measure.runner (transformers + PEFT, accelerate)",
            "distributed_type": str(accelerator.distributed_type) if accelerator is not None else None,
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
        },
        "optimizer": optimizer_name,
        "trainable_params": trainable,
        "trainable_params_estimate": expected.trainable_params,
        "adapter_file_bytes": adapter_bytes,
        "steps": len(losses),
        "losses": losses,
        "final_loss": _tail_mean(losses),
        "first_loss": _head_mean(losses),
        "metrics": combine_ranks_metrics(per_rank, options.usd_per_gpu_hour),
        "per_rank": per_rank,
    }
    if rank == 0:
        write_run_record(options.out, record)
    if stopped is not None:
        raise Interrupted(stopped.signum, f"run {message}; record: {options.out / 'result.json'} (status interrupted)")
    return record


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _tail_mean(values: Sequence[float], n: int = 3) -> float | None:
    return sum(values[-n:]) / len(values[-n:]) if values else None


def _head_mean(values: Sequence[float], n: int = 3) -> float | None:
    return sum(values[:n]) / len(values[:n]) if values else None
