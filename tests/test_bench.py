"""The throughput bench (alexnet_lib.bench) on a CPU, and the plots of the chapter "Making AlexNet fast"."""
import sys
from pathlib import Path
import matplotlib
import pytest
import torch
import torch._inductor.config

matplotlib.use("Agg")

from alexnet_lib import bench, models, plot, runs  # noqa: E402
from alexnet_lib.trace import trace  # noqa: E402

RUNS = runs.set_root(Path(__file__).resolve().parent.parent / "book" / "runs")  # the repository's recorded runs

TWO = ["seeds' loop", "+ GPU-resident data"]


@pytest.fixture(scope="module")
def cpu_result():
    return bench.run_bench(size=96, steps=1, only=TWO, device="cpu", verbose=False, batch=4, windows=3)


def test_run_bench_on_cpu_gives_one_row_per_configuration(cpu_result):
    rows = cpu_result["rows"]
    assert [r["name"] for r in rows] == TWO
    assert all(r["img_per_s"] > 0 for r in rows)
    assert rows[0]["x_seeds"] == 1.0
    assert rows[1]["x_seeds"] == pytest.approx(rows[1]["img_per_s"] / rows[0]["img_per_s"])
    assert all(r["batch"] == 4 and r["steps"] == 1 for r in rows)  # batch= overrides every configuration
    for r in rows:  # the median of three timed windows, and their range
        assert len(r["img_per_s_windows"]) == 3 == r["windows"]
        assert r["img_per_s_min"] <= r["img_per_s"] <= r["img_per_s_max"]
        assert r["img_per_s"] == sorted(r["img_per_s_windows"])[1]
    assert cpu_result["peak_bf16_tflops"] is None and all(r["pct_of_peak"] is None for r in rows)
    assert (cpu_result["device"], cpu_result["image_size"]) == ("cpu", 96)


def test_format_table_names_every_configuration(cpu_result):
    text = bench.format_table(cpu_result)
    assert all(name in text for name in TWO)
    assert "96x96" in text and "median of 3 windows of 1 steps" in text
    r = cpu_result["rows"][1]
    assert f"{r['img_per_s_min']:,.0f}-{r['img_per_s_max']:,.0f}" in text


def test_format_table_reads_bench_files_from_before_the_windows():
    old = runs.load("bench/h100")
    assert "img_per_s_min" not in old["rows"][0]
    text = bench.format_table(old)
    assert "(1 window)" in text and old["rows"][-1]["name"] in text


def test_unknown_configuration_is_an_error():
    with pytest.raises(ValueError, match="unknown configuration"):
        bench.run_bench(size=96, steps=1, only=["+ warp drive"], device="cpu", verbose=False)


def test_train_flops_per_image_is_three_forwards_minus_conv1_input_gradient():
    flops = bench.train_flops_per_image("d2l_alexnet", 224, torch.device("cpu"))
    assert flops == pytest.approx(5.56e9, rel=0.01)
    tr = trace(models.d2l_alexnet(), (1, 224, 224))
    conv1 = tr.rows[0]["flops"]  # the input needs no gradient, so conv1 has no input-gradient convolution
    assert flops == pytest.approx(3 * tr.flops - conv1, rel=0.01)


def test_bench_plots_carry_provenance_and_language():
    result = runs.load("bench/h100")
    fig = plot.plot_bench(result, lang="zh")
    texts = " ".join(t.get_text() for t in fig.texts)
    assert result["device_name"] in texts and result["date"] in texts
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks[0] == "种子代码的循环" and len(fig.axes[0].patches) == len(result["rows"])
    fig = plot.plot_roofline(result, 60_000, lang="en")
    limit = result["peak_bf16_tflops"] * 1e12 / result["train_flops_per_image"]
    assert any(f"{limit:,.0f} images/s" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert result["device_name"] in " ".join(t.get_text() for t in fig.texts)
    matplotlib.pyplot.close("all")


def test_time_to_accuracy_marks_the_first_epoch_at_the_target():
    h = {"device_name": "cpu", "date": "2026-01-01", "settings": {}, "epochs": [
        {"epoch": i + 1, "test_acc": a, "seconds": 2.0, "eval_seconds": 0.5} for i, a in enumerate([0.5, 0.91, 0.9])]}
    fig = plot.plot_time_to_accuracy({"run": h}, 0.9, lang="en")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["run: epoch 2, 5.0 s"]  # below, off the curves
    matplotlib.pyplot.close("all")


def test_layer_times_cover_every_layer_on_cpu():
    rows = bench.layer_times(batch=2, size=96, device="cpu", cfg=bench.BASE.replace(channels_last=True, s2d_stem=True), reps=1)
    net = models.d2l_alexnet(image_size=96)
    assert len(rows) == len(net.features) + 1 + len(net.classifier)  # + flatten
    assert rows[0]["type"] == "SpaceToDepthConv2d" and rows[0]["output"] == [96, 22, 22]
    assert rows[-1]["output"] == [10] and all(r["fwd_ms"] > 0 and r["total_ms"] >= r["fwd_ms"] for r in rows)
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in net.parameters())
    assert "features.0" in bench.format_layers(rows)


def test_kernel_profile_sums_to_the_step_and_classifies_gpu_kernels():
    p = bench.kernel_profile(dict(bench.CONFIGS)["+ channels_last"].replace(batch_size=2), size=96, steps=1, warmup=1,
                             device="cpu")
    assert p["gpu_ms_per_step"] == pytest.approx(sum(p["kinds"].values()))
    assert p["gpu_ms_per_step"] == pytest.approx(sum(r["ms_per_step"] for r in p["top"]))
    assert any(r["kernel"].startswith("aten::") for r in p["top"])
    kind = bench._kernel_kind
    assert kind("sm90_xmma_wgrad_indexed_implicit_gemm_bf16bf16") == "conv weight grad"
    assert kind("triton_poi_fused_max_pool2d_with_indices_max_pool2d_with_indices_backward_threshold") == "max pooling"
    assert kind("triton_poi_fused__to_copy_convolution_relu_2") == "fused elementwise (compiled)"
    assert kind("triton_red_fused_convolution_backward_21") == "conv bias grad"
    assert kind("nvjet_sm90_tst_128x128_64x6_2x1_v_bz_bias_TNT") == "matmul (dense layers)"
    assert kind("void cudnn::engines_precompiled::nchwToNhwcKernel<") == "conv layout conversion"


def test_recorded_profile_shows_the_first_layer_fix():
    prof = runs.load("bench/h100_profile")["profile"]
    before, after = (prof["kernels"][n] for n in ("+ torch.compile", "+ space-to-depth conv1"))  # its two
    assert after["gpu_ms_per_step"] < before["gpu_ms_per_step"]
    assert "conv layout conversion" in before["kinds"] and "conv layout conversion" not in after["kinds"]
    assert prof["layers"]["space-to-depth"][0]["type"] == "SpaceToDepthConv2d"


def test_wall_clock_counts_setup_and_elapsed_when_recorded():
    old = {"epochs": [{"epoch": 1, "test_acc": 0.5, "seconds": 2.0, "eval_seconds": 0.5},
                      {"epoch": 2, "test_acc": 0.95, "seconds": 1.0, "eval_seconds": 0.5}]}
    assert runs.wall_clock(old) == [2.5, 4.0] and runs.time_to(old, 0.9) == (2, 4.0)
    new = dict(old, setup_seconds=3.0, epochs=[dict(e, elapsed=x) for e, x in zip(old["epochs"], [4.0, 6.0])])
    assert runs.wall_clock(new) == [7.0, 9.0] and runs.time_to(new, 0.9) == (2, 9.0)
    assert runs.time_to(new, 0.99) == (None, None)
    h = runs.load("fast/fast")  # the recorded run of the fast preset: its wall clock ends at its wall_seconds
    assert runs.wall_clock(h)[-1] == pytest.approx(h["wall_seconds"])


def test_bench_profile_from_the_command_line(tmp_path, capsys):
    from alexnet_lib import cli
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--size", "96", "--steps", "1", "--batch-size", "2", "--only", "seeds' loop",
                     "--profile", "--out", str(out)]) == 0
    result = runs.load_json(out)
    assert set(result["profile"]["kernels"]) == set(bench.PROFILED)
    assert result["profile"]["layers"]["space-to-depth"][0]["type"] == "SpaceToDepthConv2d"
    text = capsys.readouterr().out
    assert "where the GPU time goes" in text and "features.0" in text


def test_every_bench_row_has_a_chinese_label():
    """The zh chart's names come from the one label table, keyed by bench's own row names (numbers carried over)."""
    for name, _ in bench.CONFIGS:
        assert plot.bench_label(name, "en") == name
        zh = plot.bench_label(name, "zh")
        assert zh and (zh != name or name in ("+ channels_last", "+ torch.compile", "+ CUDA graphs")), name
    assert plot.bench_label("+ batch 2048", "zh") == "+ 批量 2048"
    with pytest.raises(KeyError):
        plot.bench_label("+ warp drive", "zh")


def test_row_names_can_be_given_to_only():
    """--only splits at commas: no row name may hold one."""
    assert all("," not in name for name, _ in bench.CONFIGS)


def test_no_fused_pool_drops_the_fused_rows_and_uses_it_nowhere():
    rows = dict(bench._select(None, True, fused_pool=False))
    assert "+ fused ReLU + max-pool" not in rows and "unfused ReLU + max-pool (compiled)" not in rows
    assert not any(c.fused_pool for c in rows.values()) and "+ torch.compile" in rows
    assert dict(bench.CONFIGS)["+ torch.compile"].fused_pool  # with it, the compiled row has the fused operator


def test_skipped_peer_is_listed_with_its_reason(monkeypatch):
    from alexnet_lib import peer
    monkeypatch.setattr(peer, "unavailable", lambda: "PyTorch Lightning is not installed (pip install lightning)")
    result = bench.run_bench(size=96, steps=1, only=[bench.PEER], device="cpu", verbose=False, batch=2, windows=1)
    assert result["rows"] == [] and result["skipped"][0]["name"] == bench.PEER
    assert "skipped: PyTorch Lightning is not installed" in bench.format_table(result)


def test_a_failing_row_is_recorded_and_the_next_row_still_runs(monkeypatch, tmp_path):
    real = bench._one

    def broken(name, *args):  # e.g. an Inductor error while compiling one configuration
        if name == TWO[0]:
            raise RuntimeError("compile failed\nSyntaxError: invalid decimal literal")
        return real(name, *args)
    monkeypatch.setattr(bench, "_one", broken)
    out = tmp_path / "bench.json"
    result = bench.run_bench(size=96, steps=1, only=TWO, device="cpu", verbose=False, batch=2, windows=1, out=out)
    assert [r["name"] for r in result["rows"]] == [TWO[1]]
    assert result["rows"][0]["x_seeds"] is None  # no ratio to a row that did not run
    assert result["failed"] == [{"name": TWO[0], "error": "RuntimeError: SyntaxError: invalid decimal literal"}]
    assert runs.load_json(out)["failed"] == result["failed"]  # written, with the row that ran
    assert f"{TWO[0]:<35} failed: RuntimeError" in bench.format_table(result)


def test_a_generated_module_that_does_not_import_is_quoted_around_the_line(tmp_path):
    module = tmp_path / "cabc.py"
    module.write_text("\n".join(f"line_{i} = {i}" for i in range(1, 11)) + "\n")
    message = (f"RuntimeError: Failed to import {module}\n"
               f"SyntaxError: invalid decimal literal (cabc.py, line 6)")
    quoted = bench._generated_source(message, around=2)
    assert quoted.splitlines() == [f"{i:5d}  line_{i} = {i}" for i in range(4, 9)]
    assert bench._generated_source("RuntimeError: out of memory") is None
    assert bench._generated_source(message.replace(str(module), str(tmp_path / "gone.py"))) is None


def test_compiling_works_when_the_command_line_names_rows_with_a_quote(monkeypatch):
    """Inductor pastes the word after --only into the module it generates; bench's own row names hold a quote.
    A matrix product is enough to get a generated module with its harness (without the fix: a SyntaxError), and it
    calls the library's kernel instead of building C++ (a cold C++ build took 40 s on two busy cores)."""
    monkeypatch.setattr(sys, "argv", ["alexnet_lib", "bench", "--only", "seeds' loop,+ torch.compile"])
    monkeypatch.setattr(torch._inductor.config, "benchmark_harness", True)
    bench.without_inductor_harness()
    torch._dynamo.reset()
    f = torch.compile(lambda a, b: a @ b)
    a, b = torch.eye(2), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert torch.equal(f(a, b), b)
