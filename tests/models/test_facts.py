from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorabench.models import architecture_catalog, resolve_model
from lorabench.models import facts as facts_module
from lorabench.models.facts import cache_dir, clear_memory_cache, model_facts
from lorabench.spec import RunSpec

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LORABENCH_CACHE_DIR", str(folder))
    clear_memory_cache()
    yield folder
    clear_memory_cache()


def _local_tiny(folder: Path, **changes: object) -> Path:
    config = {**architecture_catalog()["tiny"].config, **changes}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config), "utf-8")
    return folder


def _files(cache: Path) -> list[Path]:
    return sorted((cache / "facts").glob("*.json"))


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LORABENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lorabench"
    monkeypatch.setenv("LORABENCH_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_cached_facts_equal_the_built_ones(cache: Path) -> None:
    spec = RunSpec(model="tiny", method="dora", targets="all-linear")
    built = model_facts(spec)
    assert built.built == "built"
    assert len(_files(cache)) == 1
    clear_memory_cache()
    cached = model_facts(spec)
    assert cached.built == "cache"
    assert cached.to_json() == built.to_json()
    assert cached.dora_magnitude_params == built.dora_magnitude_params > 0


def test_nearby_spec_shares_the_facts_and_other_adapters_do_not(cache: Path) -> None:
    first = model_facts(RunSpec(model="tiny"))
    # bits, batch, sequence, optimizer, GPU, alpha and rsLoRA do not change the module graph
    nearby = RunSpec(
        model="tiny", method="rslora", bits=4, micro_batch=9, seq_len=77, alpha=3.0, optimizer="adamw_8bit"
    )
    assert model_facts(nearby) is first
    assert model_facts(RunSpec(model="tiny", rank=16)) is not first
    assert model_facts(RunSpec(model="tiny", dropout=0.0)) is not first  # PEFT's dropout module changes
    assert len(_files(cache)) == 3


def test_changed_config_content_rebuilds(cache: Path, tmp_path: Path) -> None:
    folder = _local_tiny(tmp_path / "m")
    before = model_facts(RunSpec(model=str(folder)))
    _local_tiny(folder, intermediate_size=1024)
    clear_memory_cache()
    after = model_facts(RunSpec(model=str(folder)))
    assert after.built == "built"
    assert after.key["config_sha256"] != before.key["config_sha256"]
    assert after.base_params > before.base_params
    assert len(_files(cache)) == 2


def test_changed_library_version_rebuilds(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = RunSpec(model="tiny")
    model_facts(spec)
    clear_memory_cache()
    real = facts_module.library_versions()
    monkeypatch.setattr(facts_module, "library_versions", lambda: {**real, "peft": "0.0.1"})
    again = model_facts(spec)
    assert again.built == "built"
    assert again.key["libraries"]["peft"] == "0.0.1"
    assert len(_files(cache)) == 2


def test_damaged_cache_file_is_rebuilt(cache: Path) -> None:
    spec = RunSpec(model="tiny")
    built = model_facts(spec)
    (path,) = _files(cache)
    path.write_text("{not json", "utf-8")
    clear_memory_cache()
    again = model_facts(spec)
    assert again.built == "built"
    assert again.to_json() == built.to_json()
    assert json.loads(path.read_text("utf-8"))["schema"] == "lorabench.model_facts"


def test_unknown_target_is_not_cached(cache: Path) -> None:
    from lorabench.errors import ModelError

    with pytest.raises(ModelError, match="linear layers are"):
        model_facts(RunSpec(model="tiny", targets=("nope_proj",)))
    assert _files(cache) == []


def test_one_meta_build_per_estimate(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lorabench.predict import estimate

    builds: list[str] = []
    real = facts_module._build

    def counting(*args: object, **kwargs: object) -> object:
        builds.append("x")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(facts_module, "_build", counting)
    record = estimate(RunSpec(model="tiny", method="dora"), engine="formula", tokens=10_000, gpu="A100-80GB")
    assert record["predicted_time_s"] > 0 and record["peak_allocated_bytes"] > 0
    assert builds == ["x"]  # accounting, formula and FLOPs read the same facts


def test_nearby_query_imports_no_transformers(cache: Path) -> None:
    spec = RunSpec(model="tiny", targets="all-linear")
    model_facts(spec)  # prime the cache (this process has torch already)
    code = (
        "import json, sys, lorabench\n"
        "r = lorabench.estimate({'model': 'tiny', 'targets': 'all-linear', 'bits': 4, 'micro_batch': 3,"
        " 'seq_len': 99}, engine='formula', gpu='A5000', tokens=5000)\n"
        "print(json.dumps({'peak': r.peak_allocated_bytes, 'time': r.predicted_time_s,"
        " 'loaded': [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "LORABENCH_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["peak"] > 0 and result["time"] > 0
    resolve_model("tiny")  # the reference still resolves here


def test_cold_build_skips_bitsandbytes_and_leaves_it_importable(cache: Path) -> None:
    code = (
        "import json, sys\n"
        "from lorabench.models.facts import model_facts\n"
        "from lorabench.spec import RunSpec\n"
        "facts = model_facts(RunSpec(model='tiny', targets='all-linear', bits=4))\n"
        "during = 'bitsandbytes' in sys.modules\n"
        "from peft.import_utils import is_bnb_4bit_available\n"
        "from peft.tuners.lora import Linear4bit\n"  # PEFT's lazy bnb export, as a later QLoRA run uses it
        "import bitsandbytes\n"
        "print(json.dumps({'built': facts.built, 'during': during, 'bnb4': is_bnb_4bit_available(),"
        " 'module': type(sys.modules['bitsandbytes']).__name__, 'layer': Linear4bit.__name__}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "LORABENCH_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"built": "built", "during": False, "bnb4": True, "module": "module", "layer": "Linear4bit"}
