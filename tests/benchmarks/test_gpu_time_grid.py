from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_time_grid", REPO / "benchmarks" / "gpu_time_grid.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_time_grid"] = module
    spec.loader.exec_module(module)
    return module


grid = _load()


@pytest.mark.parametrize(
    ("name", "label"),
    [
        (
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off",
            "matmul",
        ),
        ("ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_32x5_tn", "matmul"),
        ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTN", "matmul"),
        ("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2_tn_align8>(...)", "matmul"),
        ("void gemv2T_kernel_val<int, int, __nv_bfloat16, float, float, 128, 16, 4, 4, false>(...)", "matmul"),
        ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>>(...)", "attention"),
        ("fmha_cutlassB_bf16_aligned_64x64_k128_sm80", "attention"),
        ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x128_4x1x1", "attention"),
        (
            "void (anonymous namespace)::softmax_warp_forward<c10::BFloat16, c10::BFloat16, float, 11, false>",
            "attention",
        ),
        ("void kDequantizeBlockwise<__nv_bfloat16, 512, 64, 8, 2>(float*, unsigned char*, ...)", "dequant"),
        ("void kInt8VectorQuant<__half, 1024, 0>(__half*, signed char*, float*, float, int, int)", "dequant"),
        ("bitsandbytes::dequantize_4bit", "dequant"),
        ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<...FusedAdamMathFunctor...>", "optimizer"),
        ("aten::_foreach_mul_", "optimizer"),
        ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "communication"),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, ...>", "elementwise"),
        (
            "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, LogSoftMaxForwardEpilogue>",
            "elementwise",
        ),
        (
            "void at::native::(anonymous namespace)::nll_loss_forward_reduce_cuda_kernel_2d<float, float, long>",
            "elementwise",
        ),
        ("aten::log_softmax", "elementwise"),
        (
            "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float>>>",
            "elementwise",
        ),
        ("aten::mm", "matmul"),
        ("aten::scaled_dot_product_attention", "attention"),
        ("Memcpy DtoD (Device -> Device)", "other"),
    ],
)
def test_kernel_names_fall_into_classes(name: str, label: str) -> None:
    assert grid.kernel_class(name) == label


def test_grouping_sums_by_class_and_lists_the_unmatched() -> None:
    grouped = grid.group_kernel_times(
        [("ampere_bf16_s16816gemm", 3000.0), ("flash_fwd_kernel", 1000.0), ("Memcpy HtoD", 500.0), ("gemm2", 500.0)]
    )
    assert set(grouped["seconds_by_class"]) == set(grid.KERNEL_CLASSES)
    assert grouped["seconds_by_class"]["matmul"] == pytest.approx(0.0035)
    assert grouped["seconds_by_class"]["attention"] == pytest.approx(0.001)
    assert grouped["total_s"] == pytest.approx(0.005)
    assert grouped["share_by_class"]["matmul"] == pytest.approx(0.7)
    assert grouped["other_kernels"] == {"Memcpy HtoD": pytest.approx(0.0005)}
    assert grid.group_kernel_times([])["share_by_class"]["matmul"] == 0.0


def test_grid_and_plan() -> None:
    cells = grid.full_grid()
    assert len(cells) == 144 == len({c.name for c in cells})
    base = grid.Cell(16, 4, 2048, True, "q_proj,v_proj")
    assert base.distance() == 0 and base.name == "b16-mb4-s2048-ckpt-qv"
    assert grid.Cell(4, 16, 256, False, "all-linear").distance() == 4
    assert grid.Cell(16, 4, 2048, True, "q_proj,v_proj", True).name == "b16-mb4-s2048-ckpt-qv-ac"

    def cost(cell: object) -> float:
        assert isinstance(cell, grid.Cell)
        return cell.micro_batch * cell.seq_len / 1000

    kept = grid.plan(cells, cost, budget_s=60)
    assert sum(cost(c) for c in kept) <= 60
    assert base in kept and all(c.distance() <= 2 for c in kept)
    # running order: grouped by bits (16, 8, 4), so each base model loads once
    order = [c.bits for c in kept]
    assert order == sorted(order, key=grid.BITS.index)
    assert len(grid.plan(cells, cost, budget_s=1e9)) == 144
    assert grid.plan(cells, cost, budget_s=0) == []


def test_gpu_slug() -> None:
    assert grid.gpu_slug("NVIDIA H200") == "h200"
    assert grid.gpu_slug("NVIDIA GeForce RTX 4090") == "geforce-rtx-4090"
    assert grid.gpu_slug("???") == "gpu"


@pytest.mark.slow
def test_dry_run_writes_records_with_kernel_classes(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    assert grid.main(["--dry-run", "--out", str(out), "--steps", "2", "--budget-s", "5", "--bits", "16"]) == 0
    summary = json.loads((out / "time_grid.json").read_text())
    assert summary["schema"] == "lorabench.gpu_time_grid" and summary["rows"]
    row = summary["rows"][0]
    assert row["status"] == "ok" and row["median_step_s"] > 0
    assert row["kernel_seconds_by_class"]["matmul"] > 0
    record = json.loads((out / row["name"] / "result.json").read_text())
    assert record["kernel_classes"]["timing"].startswith("CPU self time")


@pytest.mark.slow
def test_wall_time_guard_skips_cells_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    args = ["--dry-run", "--out", str(out), "--steps", "2", "--budget-s", "12", "--bits", "16", "--max-wall-s", "0"]
    assert grid.main(args) == 0
    summary = json.loads((out / "time_grid.json").read_text())
    assert summary["rows"] == [] and summary["planning"]["skipped_for_wall_time"]
