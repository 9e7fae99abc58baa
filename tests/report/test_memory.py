from __future__ import annotations

from pathlib import Path

from lorabench.report.memory import build_memory, format_size, memory_table
from lorabench.report.sources import collect_records

from . import synthetic as syn

GB = syn.GB


def table_rows(folder: Path, unit: str = "GB") -> dict[str, list[str]]:
    data = build_memory(collect_records(folder))
    assert data is not None
    table = memory_table(data, "GiB" if unit == "GiB" else "GB")
    return {row[0]: list(row) for row in table.rows} | {"__headers__": list(table.headers)}


def test_seed_layout_names_units_and_percentages(tmp_path: Path) -> None:
    rows = table_rows(syn.seed_folder(tmp_path))
    assert rows["__headers__"] == [
        "Models",
        "Parameters",
        "GPU Memory (Batch=4)",
        "GPU Memory (Batch=8)",
        "Model Size",
        "Percentage",
    ]
    assert rows["Llama-3.1-8B-16bit (base)"] == ["Llama-3.1-8B-16bit (base)", "8.03B", "-", "-", "16.06 GB", "-"]
    assert rows["Llama-3.1-8B-r8-16bit"][1:] == ["4.72M", "30.91 GB (m)", "30.91 GB (m)", "16.08 GB", "100.1%"]
    assert rows["Llama-3.1-8B-r4-8bit"][1:] == ["2.36M", "11.40 GB (p)", "11.78 GB (p)", "9.10 GB", "56.6%"]
    # a model with runs only: measured figures, but no estimate for its weights
    assert rows["tiny-r8-16bit"][1:] == ["40.96K", "77.46 MB (m)", "154.91 MB (m)", "n/a", "n/a"]


def test_measured_beats_predicted_for_the_same_cell(tmp_path: Path) -> None:
    syn.write(tmp_path, "e.json", syn.estimate(bits=4, peak=8.26 * GB, breakdown=syn.split(8.26 * GB, 4)))
    syn.write(tmp_path, "run/result.json", syn.run(bits=4, peak=8.5 * GB))
    data = build_memory(collect_records(tmp_path))
    assert data is not None
    (row,) = data.rows
    cell = row.cell(4)
    assert (cell.kind, cell.peak_bytes) == ("measured", 8.5 * GB)
    assert memory_table(data).rows[1][2] == "8.50 GB (m)"
    assert data.counters == ("torch.cuda.max_memory_allocated",) and data.engines == ()


def test_failed_run_falls_back_to_prediction_and_oom_is_shown(tmp_path: Path) -> None:
    syn.write(tmp_path, "e4.json", syn.estimate(batch=4, peak=30.9 * GB))
    syn.write(tmp_path, "f/result.json", syn.run(batch=4, status="failed"))
    syn.write(tmp_path, "o/result.json", syn.run(batch=8, status="oom"))
    data = build_memory(collect_records(tmp_path))
    assert data is not None
    body = memory_table(data).rows
    assert body[1][2:4] == ["30.90 GB (p)", "OOM (m)"]
    assert data.rows[0].failed_runs == (str(tmp_path / "f" / "result.json"),)


def test_missing_figures_are_na_never_zero(tmp_path: Path) -> None:
    syn.write(tmp_path, "a.json", syn.estimate(rank=8, batch=4, peak=30.9 * GB))
    syn.write(tmp_path, "b.json", syn.estimate(rank=8, batch=8, peak=31.0 * GB))
    syn.write(tmp_path, "c.json", syn.estimate(rank=4, batch=4))  # no memory engine yet: weights only
    rows = table_rows(tmp_path)
    assert rows["Llama-3.1-8B-r4-16bit"][1:] == ["2.36M", "n/a", "n/a", "16.07 GB", "100.1%"]
    assert rows["Llama-3.1-8B-r8-16bit"][2:4] == ["30.90 GB (p)", "31.00 GB (p)"]


def test_batch_columns_are_the_batches_present_up_to_four(tmp_path: Path) -> None:
    for batch in (1, 4, 8):
        syn.write(tmp_path, f"r8-{batch}.json", syn.estimate(rank=8, batch=batch, peak=(20 + batch) * GB))
    for batch in (4, 8):
        syn.write(tmp_path, f"r4-{batch}.json", syn.estimate(rank=4, batch=batch, peak=(20 + batch) * GB))
    data = build_memory(collect_records(tmp_path))
    assert data is not None
    assert (data.batches, data.other_batches) == ((1, 4, 8), ())
    headers = memory_table(data).headers
    assert [h for h in headers if h.startswith("GPU Memory")] == [f"GPU Memory (Batch={b})" for b in (1, 4, 8)]
    for batch in (2, 16, 32):  # six batch sizes: the four most filled are columns, the rest named in the note
        syn.write(tmp_path, f"r8-{batch}.json", syn.estimate(rank=8, batch=batch, peak=(20 + batch) * GB))
    data = build_memory(collect_records(tmp_path))
    assert data is not None
    assert (data.batches, data.other_batches) == ((1, 2, 4, 8), (16, 32))
    assert "Other batch sizes (16, 32) are in report.csv and report.json" in (memory_table(data).note or "")


def test_settings_the_rows_differ_in_are_columns_and_shared_ones_are_said(tmp_path: Path) -> None:
    syn.write(tmp_path, "a.json", syn.estimate(batch=2, peak=20 * GB))
    long = syn.estimate(batch=2, peak=40 * GB)
    long["spec"]["seq_len"] = 2048
    syn.write(tmp_path, "b.json", long)
    data = build_memory(collect_records(tmp_path))
    assert data is not None
    table = memory_table(data)
    assert list(table.headers) == [
        "Models",
        "Seq len",
        "Parameters",
        "GPU Memory (Batch=2)",
        "Model Size",
        "Percentage",
    ]
    assert [row[1] for row in table.rows if row[1] != "-"] == ["512", "2048"]  # numbers sort as numbers
    by_len = {row[1]: row for row in table.rows if row[1] != "-"}
    assert by_len["2048"][0] == by_len["512"][0] == "Llama-3.1-8B-r8-16bit"
    assert (by_len["2048"][3], by_len["512"][3]) == ("40.00 GB (p)", "20.00 GB (p)")
    assert "Every row: targets q_proj+k_proj+v_proj, optimizer adamw_torch" in (table.note or "")
    assert "sequence length" not in (table.note or "")


def test_methods_and_differing_settings_get_their_own_rows(tmp_path: Path) -> None:
    syn.write(tmp_path, "q.json", syn.estimate(method="qlora", bits=4, peak=8 * GB))
    syn.write(tmp_path, "l.json", syn.estimate(method="lora", bits=4, peak=8.2 * GB))
    syn.write(tmp_path, "d.json", syn.estimate(method="dora", bits=16, peak=31 * GB))
    long = syn.estimate(bits=16, peak=40 * GB)
    long["spec"]["seq_len"] = 2048
    syn.write(tmp_path, "s.json", long)
    names = [r.name for r in build_memory(collect_records(tmp_path)).rows]  # type: ignore[union-attr]
    assert names == [
        "Llama-3.1-8B-r8-16bit-seq2048",
        "Llama-3.1-8B-r8-4bit-seq512",
        "Llama-3.1-8B-qlora-r8-4bit-seq512",
        "Llama-3.1-8B-dora-r8-16bit-seq512",
    ]


def test_gib_and_small_sizes() -> None:
    assert format_size(30.91 * GB) == "30.91 GB"
    assert format_size(2**31, "GiB") == "2.00 GiB"
    assert format_size(77_456_904) == "77.46 MB"
    assert format_size(10 * 2**20, "GiB") == "10.00 MiB"
    assert format_size(-0.4 * GB, signed=True) == "-400.00 MB"
    assert format_size(0.0, signed=True) == "+0.00 MB"
    assert format_size(None) == "n/a"


def test_gib_table_is_labelled(tmp_path: Path) -> None:
    syn.write(tmp_path, "a.json", syn.estimate(peak=30.91 * GB))
    data = build_memory(collect_records(tmp_path))
    assert data is not None
    table = memory_table(data, "GiB")
    assert table.rows[1][2] == "28.79 GiB (p)"
    assert "GiB = 2^30 bytes" in (table.note or "")
