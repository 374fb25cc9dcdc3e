"""The generative workload (issue 22): decoders by name and from folders, the torch
generation with a static KV cache against transformers' own greedy generate(), the token
figures of `anetui bench` (real CLI, real torch), and their one-line errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from anetui.backends import registry
from anetui.backends.generation import TokenClock
from anetui.core import generation
from anetui.core.energy_figures import BackendEnergy
from anetui.models import zoo
from anetui.models.decoders import decoder_rows, save_random_decoder
from anetui.models.resolve import resolve_model
from anetui.models.spec import ModelError
from tests.conftest import anetui_cmd

#: Each decoder row at a tiny size: its config class and model class are the real ones.
TINY_DECODERS = {
    "llama-tiny": {},
    "smollm2-135m": {"num_hidden_layers": 2, "hidden_size": 48, "intermediate_size": 96,
                     "num_attention_heads": 3, "num_key_value_heads": 1, "vocab_size": 300},
    "qwen2.5-0.5b": {"num_hidden_layers": 2, "hidden_size": 56, "intermediate_size": 112,
                     "num_attention_heads": 7, "num_key_value_heads": 1, "vocab_size": 300},
    "llama-3.2-1b": {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                     "vocab_size": 300},
}  # fmt: skip


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's decoder folder the zoo does not name: Qwen2, tiny, no tokenizer."""
    row = dataclasses.replace(
        zoo.ZOO["qwen2.5-0.5b"], config_args={**TINY_DECODERS["qwen2.5-0.5b"], "vocab_size": 257}
    )
    return save_random_decoder(row, tmp_path_factory.mktemp("user") / "my-qwen")


@pytest.mark.parametrize("name", list(TINY_DECODERS))
def test_every_decoder_row_generates_generates_greedy_tokens_of_transformers(
    name: str, monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    from anetui.backends.torch_generate import reference_tokens

    assert set(TINY_DECODERS) == {r.name for r in decoder_rows()}  # a new row gets a size
    args = {**zoo.ZOO[name].config_args, **TINY_DECODERS[name]}
    monkeypatch.setitem(zoo.ZOO, name, dataclasses.replace(zoo.ZOO[name], config_args=args))
    spec = resolve_model(name, prompt_len=9, gen_len=7)
    assert spec.kind == "decoder" and spec.generation is not None
    assert spec.describe() == name and spec.describe_inputs() == "input_ids int64 [1,9]"
    prompt = spec.make_inputs()["input_ids"]
    assert prompt.min() >= 0 and prompt.max() < spec.generation.vocab_size
    backend = registry.create("torch-cpu")
    backend.prepare(spec)
    with backend.thread_context():
        backend.infer()
    tokens = backend.generated_tokens()  # type: ignore[attr-defined]
    assert tokens == reference_tokens(spec) and len(tokens) == 7
    start, stamps = backend.token_times_ns()  # type: ignore[attr-defined]
    assert len(stamps) == 7 and start < stamps[0] and list(stamps) == sorted(stamps)
    backend.tokens_per_run = 1  # type: ignore[attr-defined]
    with backend.thread_context():
        backend.infer()
    assert len(backend.token_times_ns()[1]) == 1  # type: ignore[attr-defined]
    assert resolve_model(name, prompt_len=9, gen_len=7).path == spec.path  # cached folder
    backend.close()


def test_decoder_options_refused_in_one_line(qwen_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="mobilenet_v2 is not a decoder"):
        resolve_model("mobilenet_v2", gen_len=4)
    with pytest.raises(ModelError, match="prompt length is --prompt-len"):
        resolve_model(str(qwen_folder), prompt_len=4, seq_len=8)
    with pytest.raises(ModelError, match="batch 1"):
        resolve_model(str(qwen_folder), prompt_len=4, batch_size=2)
    with pytest.raises(ModelError, match="longer than the model's"):
        resolve_model(str(qwen_folder), prompt_len=40000, gen_len=1)
    encoder = tmp_path / "encoder"
    save_random_decoder(
        dataclasses.replace(
            zoo.ZOO["bert-base"],
            config_args={
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 37,
                "vocab_size": 99,
            },
        ),
        encoder,
    )
    with pytest.raises(ModelError, match="BertModel does not generate tokens"):
        resolve_model(str(encoder), gen_len=4)
    # Without the options, a causal LM's folder keeps the one-forward-pass workload.
    assert resolve_model(str(qwen_folder)).kind == "hf"


def test_bench_on_a_user_folder_reports_every_generation_figure(
    qwen_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        anetui_cmd(
            "bench",
            "--model",
            str(qwen_folder),
            "--prompt-len",
            "12",
            "--gen-len",
            "6",
            "--backends",
            "torch-cpu",
            "--iterations",
            "12",
            "--warmup",
            "2",
            "--json",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "TTFT" in proc.stdout and "decode tok/s" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["config"]["workload"] == "generate" and doc["config"]["model_kind"] == "decoder"
    assert (doc["config"]["prompt_len"], doc["config"]["gen_len"]) == (12, 6)
    (entry,) = doc["backends"]
    gen = entry["generation"]
    assert gen["runs"] == entry["count"] == 12
    assert gen["tokens_generated_per_run"] == 6 and gen["runs_with_other_token_count"] == 0
    assert gen["token_agreement"] == 1.0 and gen["first_divergence"] is None
    assert {"p50", "p90", "p99", "p50_ci95"} <= set(gen["ttft_ms"])
    assert sum(n for _, _, n in gen["decode_histogram_ms"]) == 12 * 5
    # Every figure is consistent with the latencies it comes from.
    assert gen["ttft_ms"]["p50"] < entry["latency_ms"]["p50"]
    assert gen["prefill_tokens_per_s"] == pytest.approx(
        12 / (gen["ttft_ms"]["mean"] / 1e3), rel=0.01
    )
    assert gen["decode_tokens_per_s"] == pytest.approx(
        1e3 / gen["decode_ms_per_token"]["mean"], rel=0.01
    )
    assert gen["peak_rss_mb"] > 50 and gen["energy_mj_per_token"] is None


def test_image_workloads_keep_their_entries_and_default_set() -> None:
    from anetui.core.config import RunConfig
    from anetui.core.session import Session
    from tests.conftest import SMALL_MODEL, SMALL_SHAPE

    spec = resolve_model(SMALL_MODEL, input_shape=SMALL_SHAPE)
    session = Session(RunConfig(), spec)
    # The decoder-only runtimes are not listed for an image model; the rest are.
    expected = [i for i in registry.default_ids() if registry.describe(i).accepts != ("decoder",)]
    assert session.ids == expected and "torch-cpu-opt" in session.ids
    assert "mlx-cpu" not in session.ids and "ort-genai-cpu" not in session.ids
    session.close()
    # A decoder lists the backends that generate, and only those.
    decoder = Session(RunConfig(), resolve_model("llama-tiny", prompt_len=4, gen_len=2))
    generating = [i for i in registry.default_ids() if "decoder" in registry.describe(i).accepts]
    assert decoder.ids == generating and {"torch-cpu", "mlx-cpu"} <= set(decoder.ids)
    assert "torch-cpu-opt" not in decoder.ids and "onnx-cpu" not in decoder.ids
    decoder.close()


def test_token_figures_from_the_stamps() -> None:
    clock = TokenClock(2)  # grows past its capacity
    clock.start()
    for _ in range(4):
        clock.mark()
    start, stamps = clock.times()  # type: ignore[misc]
    record = generation.GenerationRecord(lambda: (start, stamps), expected_tokens=4, prompt_len=8)
    record.fold()
    assert record.runs == 1 and record.decode_tokens == 3 and record.short_runs == 0
    assert record.ttft_sum_ns == stamps[0] - start
    assert record.decode_sum_ns == stamps[-1] - stamps[0]
    record.expected_tokens = 5
    record.fold()
    assert record.short_runs == 1
    assert generation.token_agreement([1, 2, 3, 4], [1, 2, 9, 4]) == (0.75, 2)
    assert generation.token_agreement([1, 2], [1, 2, 3]) == (2 / 3, 2)
    assert generation.token_agreement([5, 6], [5, 6]) == (1.0, None)


def _energy(mj_per_inference: float, inferences: float) -> BackendEnergy:
    return BackendEnergy(
        rails=("package-0",),
        total_rails=("package-0",),
        windows=0,
        window_s=0.0,
        inferences=inferences,
        mj_per_inference={"total": mj_per_inference},
        active_mj_per_inference=None,
        mean_power_w={},
        coverage=1.0,
        thermal_pressure=(),
    )


def test_energy_per_token_splits_prefill_from_decode() -> None:
    per = generation.energy_per_token(_energy(100.0, 10), _energy(20.0, 10), 16, 9)
    assert per == {"prefill": pytest.approx(20 / 16), "decode": pytest.approx(80 / 8)}
    assert generation.energy_per_token(_energy(100.0, 10), None, 16, 9) is None
    assert generation.energy_per_token(_energy(5.0, 3), _energy(5.0, 3), 4, 1) == {
        "prefill": pytest.approx(5 / 4)
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_decode_energy_per_token_matches_a_known_power(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """Ground truth (tests/test_ground_truth.py's counter: 30 W while the process computes,
    10 W while it sleeps): decode energy per token within 5 % of 30 W ÷ decode tokens/s,
    the prefill's within 5 % of 30 W × a prefill-only run ÷ prompt tokens."""
    from tests.test_ground_truth import BUSY_W, TruthCounter, make_tree, run_under_truth

    root = tmp_path / "powercap"
    truth = TruthCounter(make_tree(root))
    out = tmp_path / "results.json"
    command = anetui_cmd(
        "bench", "--model", "llama-tiny", "--prompt-len", "16", "--gen-len", "32",
        "--backends", "torch-cpu", "--threads", "1", "--warmup", "3", "--duration", "6",
        "--power", f"rapl:{root}", "--json", str(out),
    )  # fmt: skip
    run_under_truth(truth, command)
    (entry,) = json.loads(out.read_text())["backends"]
    gen = entry["generation"]
    assert entry["energy"]["method"] == "counters"
    per_token = gen["energy_mj_per_token"]
    assert per_token["decode"] == pytest.approx(BUSY_W / gen["decode_tokens_per_s"] * 1e3, rel=0.05)
    assert per_token["prefill"] == pytest.approx(
        BUSY_W * gen["prefill_only_ms"]["mean"] / 16, rel=0.05
    )


def test_windows_source_gives_energy_per_token_and_prometheus_families(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """A replayed source at a constant 5 W (windows, not counters): both kinds of stretch
    get windows, energy per token is 5 W × their time, and the exporter's families carry
    the token figures the snapshot has."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from anetui.core.config import RunConfig
    from anetui.core.session import Session
    from anetui.power.monitor import PowerMonitor
    from anetui.power.replay import ReplaySource
    from anetui.report.prometheus import View, metric_families
    from tests.test_energy import constant_power_recording

    recording = tmp_path / "constant.plist"
    constant_power_recording(recording, watts=5.0)
    monitor = PowerMonitor(ReplaySource(recording, loop=True))
    assert monitor.start()
    spec = resolve_model("llama-tiny", prompt_len=8, gen_len=6)
    config = RunConfig(
        model="llama-tiny", backends=("torch-cpu",), warmup=2, duration_s=4.0, threads=1
    )
    session = Session(config, spec, monitor)
    try:
        session.prepare()
        session.run()
        snapshot = session.snapshot()
    finally:
        session.close()
        monitor.stop()
    (result,) = snapshot.backends
    gen = result.generation
    assert gen is not None and gen.prefill_only is not None and gen.decode_tokens_per_s
    per = gen.energy_mj_per_token
    assert per is not None and gen.energy_method == "windows"
    # 5 W over the prefill-only run's mean time ÷ prompt tokens (the windows are 100 ms:
    # a stretch's edges cut some, so a looser bound than counters').
    assert per["prefill"] == pytest.approx(5.0 * gen.prefill_only.mean_ns / 1e6 / 8, rel=0.15)
    assert per["decode"] == pytest.approx(5.0 / gen.decode_tokens_per_s * 1e3, rel=0.15)

    class Collector:
        def collect(self):  # type: ignore[no-untyped-def]
            return metric_families(View(snapshot), host="test")

    registry = CollectorRegistry()
    registry.register(Collector())  # type: ignore[arg-type]
    samples = {
        (s.name, s.labels.get("quantile") or s.labels.get("phase")): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    assert samples[("anetui_generated_tokens_total", None)] == gen.runs * 6
    assert samples[("anetui_time_to_first_token_seconds_count", None)] == gen.ttft.count  # type: ignore[union-attr]
    assert samples[("anetui_decode_token_latency_seconds", "0.5")] == pytest.approx(
        gen.decode.quantiles_ns["p50"] / 1e9  # type: ignore[union-attr]
    )
    assert samples[("anetui_energy_per_token_joules", "decode")] == pytest.approx(
        per["decode"] / 1e3
    )
