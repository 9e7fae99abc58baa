"""Safe by default: no remote code, no pickle, safe YAML, no shell, no path traversal, escaped HTML.

The source audit parses every module of the package (and the benchmarks), so a later command that loads weights
with pickle, runs repository code or builds a shell string fails here.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from lorabench.cli.main import main
from lorabench.measure.sweep import load_sweep

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "src" / "lorabench").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")])


def _name(node: ast.expr) -> str:
    """Dotted name of a call target (``torch.load``, ``AutoModelForCausalLM.from_pretrained``)."""
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return "?"


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _stringy(node: ast.expr) -> bool:
    """A command built as a string (what a shell would parse), not an argument list."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.BinOp):
        return _stringy(node.left) or _stringy(node.right)
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Call) and _name(node.func).endswith(".format"))


def _problems(path: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(m and m.split(".")[0] in ("pickle", "dill", "shelve", "marshal") for m in modules):
                found.append(f"{where}: imports a pickle-like module")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        last = name.rsplit(".", 1)[-1]
        if name in ("eval", "exec", "os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
            found.append(f"{where}: {name}()")
        if _keyword(node, "shell") is not None and not _is_const(_keyword(node, "shell"), False):
            found.append(f"{where}: shell=")
        if name.startswith("subprocess.") and node.args and _stringy(node.args[0]):
            found.append(f"{where}: {name} with a command that is not an argument list")
        if name == "torch.load" and not _is_const(_keyword(node, "weights_only"), True):
            found.append(f"{where}: torch.load without weights_only=True")
        if name in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            found.append(f"{where}: {name}")
        if name == "yaml.load":
            loader = _keyword(node, "Loader")
            if loader is None or _name(loader) in ("yaml.Loader", "yaml.FullLoader", "yaml.UnsafeLoader"):
                found.append(f"{where}: yaml.load without a safe Loader")
        remote = _keyword(node, "trust_remote_code")
        if remote is not None and not _is_const(remote, False):
            found.append(f"{where}: trust_remote_code is not False")
        explicit = path.is_relative_to(root / "src")  # the package says it every time; benchmarks just never say True
        if explicit and last in ("from_pretrained", "from_config") and name.startswith("Auto") and remote is None:
            found.append(f"{where}: {name} without trust_remote_code=False")
        if name == "AutoModelForCausalLM.from_pretrained" and not _is_const(_keyword(node, "use_safetensors"), True):
            found.append(f"{where}: model weights loaded without use_safetensors=True")
        if last == "save_pretrained" and _is_const(_keyword(node, "safe_serialization"), False):
            found.append(f"{where}: save_pretrained(safe_serialization=False)")
    return found


def test_source_audit_finds_no_unsafe_loading_or_shell() -> None:
    assert len(SOURCES) > 50
    problems = [p for path in SOURCES for p in _problems(path)]
    assert not problems, "\n".join(problems)


def test_the_audit_catches_what_it_forbids(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle, subprocess, torch, yaml\n"
        "from transformers import AutoModelForCausalLM\n"
        "torch.load('w.bin')\n"
        "yaml.load(text, Loader=yaml.Loader)\n"
        "subprocess.run('ls ' + name, shell=True)\n"
        "subprocess.run(f'ls {name}')\n"
        "AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)\n"
    )
    found = " | ".join(_problems(bad, root=tmp_path))
    for needle in (
        "pickle",
        "weights_only",
        "safe Loader",
        "shell=",
        "argument list",
        "trust_remote_code",
        "safetensors",
    ):
        assert needle in found


def test_the_hardware_catalog_loader_is_a_safe_loader() -> None:
    from lorabench.hardware.catalog import _UniqueKeyLoader

    assert issubclass(_UniqueKeyLoader, yaml.SafeLoader)


def test_repository_code_in_a_model_folder_never_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    model.mkdir()
    marker = tmp_path / "pwned"
    (model / "config.json").write_text(
        json.dumps({"model_type": "evil", "auto_map": {"AutoConfig": "evil.EvilConfig"}, "architectures": ["Evil"]})
    )
    (model / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass EvilConfig: pass\n")
    assert main(["estimate", "--model", str(model), "--engine", "none"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "config.json" in err
    assert not marker.exists()


def test_yaml_tags_that_build_python_objects_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    payload = f"!!python/object/apply:os.system ['touch {marker}']"
    files = {
        "spec.yaml": f"model: {payload}\n",
        "matrix.yaml": f"base: {{model: tiny}}\nmatrix: {{rank: [{payload}]}}\n",
        "scenario.yaml": f"dataset: {{tokens: {payload}}}\n",
        "prices.yaml": f"schema_version: 1\nprovider: {payload}\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for argv in (
        ["estimate", "--config", str(tmp_path / "spec.yaml")],
        ["sweep", str(tmp_path / "matrix.yaml"), "--out", str(tmp_path / "o")],
        ["cost", str(tmp_path / "scenario.yaml")],
        ["catalog", "--catalog", str(tmp_path / "prices.yaml")],
    ):
        assert main(argv) == 2
        assert "malformed YAML" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize(
    "model",
    ["../../../../tmp/evil", "..", "/etc/passwd", "a/../../b", "..\\..\\windows", "tiny/../../..", ".hidden", "x\ny"],
)
def test_run_names_from_a_matrix_stay_inside_the_sweep_folder(tmp_path: Path, model: str) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"base": {"model": model}, "matrix": {"rank": [4, 8]}}))
    out = tmp_path / "sweep"
    sweep = load_sweep(matrix, out)
    for run in sweep.runs:
        assert run.folder.parent == out and run.folder.resolve().parent == out.resolve()
        assert run.run_id not in ("", ".", "..") and not run.run_id.startswith(".")
        assert "/" not in run.run_id and "\\" not in run.run_id and "\n" not in run.run_id


def test_catalog_values_are_escaped_in_the_html_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "<script>alert('catalog')</script>"
    (tmp_path / "prices.yaml").write_text(
        yaml.safe_dump(
            {
                "schema_version": 1,
                "provider": evil,
                "services": [
                    {
                        "id": "evil-service",
                        "display_name": evil + " Tune",
                        "train_usd_per_mtok": 3.0,
                        "prices_checked": "2026-01-01",
                        "source": "https://example.org/<script>alert(2)</script>",
                        "note": evil,
                    }
                ],
            }
        )
    )
    (tmp_path / "scenario.yaml").write_text("dataset: {tokens: 100000}\nepochs: 2\nservices: [evil-service]\n")
    results, report = tmp_path / "results", tmp_path / "report"
    argv = ["cost", str(tmp_path / "scenario.yaml"), "--catalog", str(tmp_path / "prices.yaml")]
    assert main([*argv, "--out", str(results / "cost.json")]) == 0
    assert main(["report", str(results), "--out", str(report), "--no-plots"]) == 0
    capsys.readouterr()
    page = (report / "report.html").read_text("utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;catalog&#x27;)&lt;/script&gt; Tune" in page
