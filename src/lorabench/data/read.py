"""Read a dataset as it is, through the ``datasets`` library.

JSONL, JSON arrays, CSV, parquet, Arrow files, ``save_to_disk`` folders, or a dataset by name from the local
Hugging Face cache (offline; never downloaded).

Parsing is the library's; lorabench only picks the loader, takes the train split, and turns failures into one
line naming the file and, for JSON Lines, the first line that does not parse.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from lorabench.errors import DataError

__all__ = ["MAX_RECORD_BYTES", "SUFFIX_LOADERS", "read_dataset", "read_records"]

SUFFIX_LOADERS: dict[str, str] = {
    ".jsonl": "json",
    ".json": "json",
    ".ndjson": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}
# A JSON Lines record longer than this is refused before parsing (documented cap; readers keep memory bounded).
MAX_RECORD_BYTES = 256 * 1024 * 1024


def _quiet_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def _first_bad_json_line(path: Path) -> str | None:
    """For a message only: the first JSON Lines line that does not parse as an object."""
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except (ValueError, RecursionError) as exc:
                    return f"{path}:{number}: malformed JSON ({str(exc).split(':')[0]})"
                if not isinstance(obj, dict) and not (number == 1 and isinstance(obj, list)):
                    return f"{path}:{number}: expected a JSON object, got {type(obj).__name__}"
    except OSError:
        return None
    return None


def _reason(exc: BaseException) -> str:
    """The innermost message of a chained exception, on one line."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = str(seen) or type(seen).__name__
    return " ".join(text.split())[:300]


def _as_split(data: Any, source: str) -> Any:
    import datasets

    if isinstance(data, datasets.DatasetDict):
        if "train" in data:
            return data["train"]
        if len(data) == 1:
            return next(iter(data.values()))
        raise DataError(f"{source}: splits {', '.join(data)}; none is named train")
    return data


def _scan_json_lines(path: Path, lines: bool) -> list[int]:
    """Check each line's size (and, for JSON Lines, that it is UTF-8 and opens an object); the record lines.

    This reads bytes only (the JSON is parsed by ``datasets``), so a bad line is named before parsing starts.
    """
    numbers: list[int] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_RECORD_BYTES + 1), b""), start=1):
            if len(raw) > MAX_RECORD_BYTES:
                raise DataError(
                    f"{path}: line {number} is longer than {MAX_RECORD_BYTES // 2**20} MiB (the per-record cap)"
                )
            if not lines or not raw.strip():
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{number}: not UTF-8 text") from None
            if not raw.lstrip().startswith(b"{"):
                raise DataError(f"{path}:{number}: expected a JSON object on each line")
            numbers.append(number)
    return numbers


def _string_columns(path: Path, delimiter: str) -> Any:
    """Every column of a CSV header as a string feature (the header row only is read here)."""
    import csv

    import datasets

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the CSV header ({exc})") from None
    if not header or len(set(header)) != len(header):
        raise DataError(f"{path}: the CSV header must name each column once (got {header})")
    return datasets.Features({name: datasets.Value("string") for name in header})


def _load_file(path: Path) -> tuple[Any, list[int] | None]:
    import datasets

    loader = SUFFIX_LOADERS.get(path.suffix.lower())
    if loader is None:
        allowed = ", ".join(SUFFIX_LOADERS)
        raise DataError(f"{path}: unknown dataset file type {path.suffix or '(none)'} (allowed: {allowed})")
    line_numbers = None
    if loader == "json":
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
        json_lines = path.suffix.lower() != ".json" or not head.startswith(b"[")
        line_numbers = _scan_json_lines(path, json_lines) or None
    try:
        if not path.read_bytes()[:65536].strip() and path.stat().st_size < 65536:
            raise DataError(f"{path}: dataset has no records")
    except OSError as exc:
        raise DataError(f"{path}: cannot read dataset ({exc.strerror or exc})") from None
    kwargs: dict[str, Any] = {}
    if loader == "csv":  # every cell is text (no number or NaN guessing), as the formats read strings
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        kwargs = {"delimiter": delimiter, "keep_default_na": False, "features": _string_columns(path, delimiter)}
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # datasets logs the parse error it then raises; the DataError says it
    with tempfile.TemporaryDirectory(prefix="lorabench-datasets-") as cache:
        try:
            data = datasets.load_dataset(
                loader, data_files=str(path), split="train", cache_dir=cache, keep_in_memory=True, **kwargs
            )
            return data, line_numbers
        except Exception as exc:  # datasets wraps pyarrow's and pandas' errors in its own
            where = _first_bad_json_line(path) if loader == "json" else None
            raise DataError(where or f"{path}: cannot read as {loader} ({_reason(exc)})") from None
        finally:
            logger.setLevel(level)


def _load_by_name(name: str) -> Any:
    import datasets

    os.environ["HF_DATASETS_OFFLINE"] = "1"  # never download; read the local cache only
    datasets.config.HF_HUB_OFFLINE = True
    try:
        return _as_split(datasets.load_dataset(name), name)
    except DataError:
        raise
    except Exception:
        raise DataError(
            f"{name}: not a local file or folder, and not in the local Hugging Face datasets cache "
            "(lorabench works offline and downloads nothing; save it with datasets' save_to_disk and pass "
            "the folder)"
        ) from None


def read_records(source: str | Path) -> list[dict[str, Any]]:
    """Every row of a dataset, as plain Python objects (see :func:`read_dataset`)."""
    return read_dataset(source)[0]


def read_dataset(source: str | Path) -> tuple[list[dict[str, Any]], list[int] | None]:
    """Every row of a dataset, as plain Python objects, and for JSON Lines the line number of each row.

    Args:
        source: A file (``.jsonl``, ``.json`` -- lines or one array --, ``.csv``, ``.tsv``, ``.parquet``,
            ``.arrow``), a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (its
            ``train`` split), or a dataset name found in the local Hugging Face cache.

    Returns:
        One dict per row, in file order; the 1-based line of each row for JSON Lines, else None.

    Raises:
        DataError: Unreadable or malformed file (file and line named where the format has lines), a line over
            :data:`MAX_RECORD_BYTES`, no rows, or a name that is neither a path nor in the local cache.
    """
    _quiet_datasets()
    path = Path(source)
    line_numbers = None
    if path.is_dir():
        import datasets

        try:
            data = _as_split(datasets.load_from_disk(str(path), keep_in_memory=True), str(path))
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{path}: not a datasets save_to_disk folder ({_reason(exc)})") from None
    elif path.is_file():
        data, line_numbers = _load_file(path)
    elif path.suffix.lower() in SUFFIX_LOADERS or str(source).startswith((".", "/", "~")):
        raise DataError(f"{path}: cannot read dataset (no such file)")
    else:
        data = _load_by_name(str(source))
    try:
        rows: list[dict[str, Any]] = data.to_list()
    except UnicodeDecodeError:
        raise DataError(f"{source}: a text column is not UTF-8 text") from None
    if not rows:
        raise DataError(f"{source}: dataset has no records")
    if line_numbers is not None and len(line_numbers) != len(rows):
        line_numbers = None
    return rows, line_numbers
