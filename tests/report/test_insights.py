from __future__ import annotations

from pathlib import Path

from lorabench.report.insights import Insight, compute_insights, vram_tiers
from lorabench.report.memory import build_memory
from lorabench.report.sources import collect_records

from . import synthetic as syn

GB = syn.GB


def insights(folder: Path) -> list[Insight]:
    sources = collect_records(folder)
    return compute_insights(build_memory(sources), list(sources.cost_rows))


def texts(found: list[Insight], topic: str) -> list[str]:
    return [i.text for i in found if i.topic == topic]


def test_seed_insights_are_built_from_the_figures(tmp_path: Path) -> None:
    found = insights(syn.seed_folder(tmp_path))
    quant = texts(found, "quantization")
    assert quant[0] == (
        "Llama-3.1-8B: as loaded, the base weights take 16.06 GB at 16-bit, 9.09 GB at 8-bit (56.6% of 16-bit) "
        "and 5.70 GB at 4-bit (35.5% of 16-bit)."
    )
    assert quant[1] == (
        "Llama-3.1-8B: peak memory with r8 at batch 4 is 30.91 GB (m) at 16-bit, 11.41 GB (p) at 8-bit "
        "(36.9% of 16-bit) and 8.26 GB (p) at 4-bit (26.7% of 16-bit)."
    )
    (rank,) = texts(found, "rank")
    assert "going from r4 to r8 changes peak memory by +10.00 MB at 16-bit, +10.00 MB at 8-bit" in rank
    assert "0.06% of the 16.06 GB 16-bit base weights" in rank
    assert "from 2.36M to 4.72M trainable parameters, against 8.03B base parameters" in rank
    batch = texts(found, "batch")[0]
    assert batch.startswith("Llama-3.1-8B: from batch 4 to batch 8, peak memory grows by +0.00 MB to +400.00 MB")
    assert "(+0.0% to +4.7%) across 6 configurations; most for r8-8bit (11.41 GB (p) → 11.81 GB (p))" in batch
    vram = texts(found, "vram")
    assert (
        "Llama-3.1-8B-r8-16bit needs 30.91 GB at batch 4 (measured peak allocated): fits 32 GB cards (RTX5090) "
        "and every larger tier, not 16 GB or 24 GB." in vram
    )
    # the predicted device total (peak + 0.6 GB in the synthetic records) decides the fit, and says so
    assert any(t.startswith("Llama-3.1-8B-r8-4bit needs 9.25 GB at batch 8 (predicted device total)") for t in vram)
    (cost,) = texts(found, "cost")
    assert cost.startswith("Self-hosted runs cost $14.66 (QLoRA) to $16.54 (DoRA), for 56.4-63.6 GPU-hours")
    assert "GPT-4o-mini costs 21.3× the cheapest ($312.00)" in cost
    assert "BloombergGPT costs 181,924.5× the cheapest ($2.67M)" in cost


def test_insights_change_with_the_numbers(tmp_path: Path) -> None:
    syn.write(tmp_path, "a.json", syn.estimate(rank=4, batch=4, peak=20 * GB, device_total=21 * GB))
    syn.write(tmp_path, "b.json", syn.estimate(rank=16, batch=4, peak=23 * GB, device_total=26 * GB))
    found = insights(tmp_path)
    (rank,) = texts(found, "rank")
    assert "going from r4 to r16 changes peak memory by +3.00 GB at 16-bit (batch 4)" in rank
    assert "18.68% of the 16.06 GB" in rank
    vram = texts(found, "vram")
    assert vram[0].startswith("Llama-3.1-8B-r16-16bit needs 26.00 GB at batch 4 (predicted device total): fits 32 GB")
    assert vram[1].startswith("Llama-3.1-8B-r4-16bit needs 21.00 GB at batch 4 (predicted device total): fits 24 GB")


def test_missing_figures_drop_their_insights(tmp_path: Path) -> None:
    syn.write(tmp_path, "a.json", syn.estimate(rank=8, batch=4))  # weights only, no peak
    found = insights(tmp_path)
    assert [i.topic for i in found] == ["quantization"]  # sizes are known; memory, batch, fit and cost are not
    assert texts(found, "rank") == texts(found, "batch") == texts(found, "vram") == texts(found, "cost") == []


def test_run_records_alone_give_no_size_insight(tmp_path: Path) -> None:
    syn.write(tmp_path, "r/result.json", syn.run(peak=30 * GB))
    found = insights(tmp_path)
    assert [i.topic for i in found] == ["vram", "vram"]
    assert "30.00 GB at batch 4 (measured peak allocated)" in found[0].text


def test_measured_reserved_decides_the_fit_and_oom_is_told(tmp_path: Path) -> None:
    syn.write(tmp_path, "a/result.json", syn.run(batch=4, peak=23 * GB, reserved=25 * GB))
    syn.write(tmp_path, "b/result.json", syn.run(batch=8, status="oom"))
    (row, _) = texts(insights(tmp_path), "vram")
    assert row == (
        "Llama-3.1-8B-r8-16bit needs 25.00 GB at batch 4 (measured peak reserved): fits 24 GB cards "
        "(A5000, RTX3090, RTX4090) and every larger tier, not 16 GB; a run at batch 8 ran out of memory (m)."
    )


def test_too_big_for_any_card(tmp_path: Path) -> None:
    syn.write(tmp_path, "a.json", syn.estimate(peak=300 * GB, device_total=301 * GB))
    (row, _) = texts(insights(tmp_path), "vram")
    assert "more than one card of any catalog tier holds (largest 180 GB, B200)" in row


def test_vram_tiers_come_from_the_catalog() -> None:
    tiers = vram_tiers()
    assert [t.label for t in tiers] == ["16 GB", "24 GB", "32 GB", "40 GB", "48 GB", "80 GB", "141 GB", "180 GB"]
    assert "T4" in tiers[0].gpus and tiers[0].vram_bytes == 16 * 2**30


def test_predicted_hours_against_published_hours_say_what_is_known() -> None:
    from lorabench.cost.scenario import CostRow

    def predicted(bits: int, provenance: str) -> CostRow:
        interval = [18 * 3600.0, 22 * 3600.0]
        time = {"interval_s": interval, "bits": bits, "provenance": provenance}
        return CostRow(
            name="LoRA (predicted)", kind="self_hosted", time_s=20 * 3600.0, gpu="A5000", provenance={"time_s": time}
        )

    far = CostRow(
        name="LoRA (FinLoRA, measured)", kind="self_hosted", time_s=14.9 * 3600, note="several adapters, summed"
    )
    near = CostRow(name="LoRA (other, measured)", kind="self_hosted", time_s=21 * 3600.0)
    rows = [predicted(8, "fitted on H200; EXTRAPOLATED to A5000"), far, near]
    texts = [i.text for i in compute_insights(None, rows) if "predicted 20.0 h" in i.text]
    assert len(texts) == 2
    assert "FinLoRA, measured 14.9 h (0.74x): several adapters, summed; " in texts[0]
    assert "LLM.int8" in texts[0] and "fitted on another GPU than the A5000" in texts[0]
    assert texts[1].endswith("(inside the band).")
    # a 4-bit prediction on its fitting GPU, against a figure nobody annotated: no invented reasons
    bare = CostRow(name="LoRA (FinLoRA, measured)", kind="self_hosted", time_s=14.9 * 3600)
    (text,) = [i.text for i in compute_insights(None, [predicted(4, "fitted on H200"), bare]) if "predicted" in i.text]
    assert text.endswith("(0.74x): nothing more is known about the difference.")
