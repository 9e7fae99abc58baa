from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.errors import ConfigError
from lorabench.infer.options import (
    InferOptions,
    check_context,
    check_options,
    parse_int_list,
    parse_popularity,
)


def test_parse_int_list() -> None:
    assert parse_int_list("1, 4,4,8", "--batch-sizes") == (1, 4, 8)
    with pytest.raises(ConfigError, match=r"--batch-sizes: 0 is not allowed"):
        parse_int_list("1,0", "--batch-sizes")
    with pytest.raises(ConfigError, match=r"--prompt-lens: 'x' is not an integer"):
        parse_int_list("x", "--prompt-lens")
    with pytest.raises(ConfigError, match="comma list"):
        parse_int_list(" , ", "--batch-sizes")


def test_parse_popularity() -> None:
    assert parse_popularity("uniform") == ("uniform", 1.0)
    assert parse_popularity("zipf:1.5") == ("zipf", 1.5)
    for bad in ("pareto", "zipf:-1", "zipf:x", "uniform:2"):
        with pytest.raises(ConfigError, match="--popularity"):
            parse_popularity(bad)


def test_check_options_lists_every_problem(tmp_path: Path) -> None:
    options = InferOptions(
        model="tiny",
        out=tmp_path,
        batch_sizes=(0,),
        max_new_tokens=0,
        repeats=0,
        bits=3,
        variants=("merged", "nope"),
    )
    with pytest.raises(ConfigError) as info:
        check_options(options)
    message = str(info.value)
    for flag in (
        "--batch-sizes",
        "--max-new-tokens",
        "--repeats",
        "--bits",
        "--variants: unknown nope",
        "need an adapter",
    ):
        assert flag in message


def test_check_context() -> None:
    check_context((32, 128), 16, 2048, "tiny")
    check_context((4096,), 16, None, "unknown")
    with pytest.raises(ConfigError, match=r"--prompt-lens: 2040 \+ --max-new-tokens 16 = 2056 .* context of 2048"):
        check_context((32, 2040), 16, 2048, "tiny")


def test_selected_variants(tmp_path: Path) -> None:
    plain = InferOptions(model="tiny", out=tmp_path)
    assert plain.selected_variants() == ("base",)
    full = InferOptions(model="tiny", out=tmp_path, adapters=(tmp_path,), bits=4, multi_adapters=3)
    assert full.selected_variants() == ("base", "unmerged", "merged", "multi", "base-quant", "unmerged-quant")
