"""What a config file said beside the spec, on the terminal: keys not honoured, notes, and the dataset used."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from lorabench.spec import LoadedSpec
from lorabench.spec.source import NO_EFFECT

__all__ = ["DEFAULT_DATASET", "choose_dataset", "ignored_key_lines", "print_ignored_keys"]

DEFAULT_DATASET = "synthetic:sentiment"
_FINLORA_FIELDS = ("context", "target")


def ignored_key_lines(loaded: LoadedSpec) -> list[str]:
    """One line per not-modelled or unrecognised key, one for the no-effect keys, one per note."""
    if loaded.path is None:
        return []
    where = f"{loaded.path} ({loaded.kind} config)"
    lines = [f"{where}: not honoured: {k.line()}" for k in loaded.resource_relevant_ignored]
    quiet = [k.key for k in loaded.ignored_keys if k.category == NO_EFFECT]
    if quiet:
        lines.append(f"{where}: {len(quiet)} key(s) with no effect on resources ignored: {', '.join(quiet)}")
    lines += [f"{where}: note: {note}" for note in loaded.notes]
    return lines


def print_ignored_keys(loaded: LoadedSpec, stream: TextIO | None = None) -> None:
    """Write :func:`ignored_key_lines` to stderr (stdout stays clean for ``--json``)."""
    out = stream or sys.stderr
    for line in ignored_key_lines(loaded):
        out.write(f"lorabench: {line}\n")


def choose_dataset(given: str | None, loaded: LoadedSpec, stream: TextIO | None = None) -> tuple[str, dict[str, Any]]:
    """Pick the dataset of a run: the flag, else the config file's local FinLoRA-style JSONL, else synthetic.

    Returns:
        The dataset reference for ``RunOptions.dataset`` and a record of the choice (``source``, ``dataset``,
        and ``config_dataset`` / ``reason`` when the file named one that could not be used).
    """
    from lorabench.data.jsonl import read_jsonl
    from lorabench.errors import DataError

    out = stream or sys.stderr
    if given is not None:
        return given, {"source": "--dataset", "dataset": given}
    if not loaded.datasets:
        why = "the config names no dataset" if loaded.path is not None else "no --config and no --dataset"
        return DEFAULT_DATASET, {"source": "default", "dataset": DEFAULT_DATASET, "reason": why}
    hint = loaded.datasets[0]
    reason: str
    if hint.path is None:
        reason = f"{hint.reference!r} is not a local file (hub or registered datasets are not downloaded)"
    elif hint.fields is not None and tuple(hint.fields) != _FINLORA_FIELDS:
        reason = f"{hint.path} uses fields {', '.join(hint.fields)}; lorabench reads FinLoRA's context/target JSONL"
    else:
        try:
            read_jsonl(Path(hint.path), _FINLORA_FIELDS)
        except DataError as exc:
            reason = str(exc)
        else:
            out.write(f"lorabench: training on {hint.path} (the config's {hint.key})\n")
            return str(hint.path), {"source": "config", "dataset": str(hint.path), "config_dataset": hint.reference}
    out.write(
        f"lorabench: the config's {hint.key} {hint.reference!r} is not used: {reason}; training on "
        f"{DEFAULT_DATASET} instead (pass --dataset FILE to choose)\n"
    )
    return DEFAULT_DATASET, {
        "source": "default",
        "dataset": DEFAULT_DATASET,
        "config_dataset": hint.reference,
        "reason": reason,
    }
