"""MLX (mlx-cpu, mlx-gpu): real mlx and mlx-lm on a tiny random Llama folder — the tokens
equal transformers' fp32 greedy tokens, each stamped after its value exists on the host,
from a thread other than the one that prepared; tokens_per_run, outputs(), peak memory,
precision, close(); mlx-gpu unavailable off a Mac (and on a Mac without Metal) and
aimed at the GPU when forced; the probes without mlx or mlx-lm."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anetui.backends import mlx as mlx_backends
from anetui.backends import registry
from anetui.backends.base import BackendError, BackendOptions
from anetui.models.spec import DECODER_KIND, ModelSpec
from tests import decoders
from tests.decoders import decoder_spec

folder = decoders.folder  # the fixture: llama-tiny's folder

pytest.importorskip("mlx_lm")
_INSTALLED = mlx_backends.mlx_installed()
if not _INSTALLED.ok:
    pytest.skip(f"mlx cannot run here: {_INSTALLED.reason}", allow_module_level=True)

P, N = 16, 12


@pytest.fixture(scope="module")
def reference(folder: Path) -> list[int]:
    """transformers' greedy generation, fp32 on the CPU: the tokens to equal."""
    import torch
    import transformers

    model = transformers.LlamaForCausalLM.from_pretrained(str(folder)).eval()
    prompt = decoder_spec(folder).make_inputs()["input_ids"]
    with torch.inference_mode():
        out = model.generate(
            torch.from_numpy(prompt), max_new_tokens=N, min_new_tokens=N, do_sample=False
        )
    return [int(t) for t in out[0, P:].tolist()]


@pytest.fixture
def backend(folder: Path) -> Iterator[Any]:
    """mlx-cpu made through the registry and prepared (a fraction of a second)."""
    made: Any = registry.create("mlx-cpu")
    made.prepare(decoder_spec(folder))
    yield made
    made.close()


def in_another_thread(backend: Any) -> None:
    """infer() from a thread that did not prepare (as the runner does)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            backend.infer()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]


def test_tokens_equal_transformers_fp32_greedy(backend: Any, reference: list[int]) -> None:
    assert len(set(reference)) > 1  # a prompt that does not collapse to one token
    in_another_thread(backend)
    assert backend.generated_tokens() == reference
    (tokens,) = backend.outputs()
    assert tokens.dtype == np.int64 and tokens.tolist() == reference


def test_every_token_is_stamped_in_order_after_the_start(backend: Any) -> None:
    before = time.perf_counter_ns()
    in_another_thread(backend)
    times = backend.token_times_ns()
    assert times is not None
    start, stamps = times
    assert before <= start and len(stamps) == N
    assert all(a < b for a, b in zip([start, *stamps], stamps, strict=False))


def test_a_stamp_comes_after_its_value_is_on_the_host(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each token's stamp is taken after generate_step produced its host value."""
    real = backend._generate_step
    produced: list[int] = []
    streams: list[Any] = []

    def watched(*args: Any, **kwargs: Any) -> Iterator[tuple[int, Any]]:
        streams.append(kwargs["stream"])
        for token, logprobs in real(*args, **kwargs):
            assert isinstance(token, int)  # y.item(): the value, not a lazy array
            produced.append(time.perf_counter_ns())
            yield token, logprobs

    monkeypatch.setattr(backend, "_generate_step", watched)
    backend.infer()
    times = backend.token_times_ns()
    assert times is not None and len(produced) == N
    assert all(stamp >= made for stamp, made in zip(times[1], produced, strict=True))
    import mlx.core as mx

    assert streams[0].device == mx.cpu  # the chosen device's thread-local stream


def test_tokens_per_run_one_is_the_prefill_token(backend: Any, reference: list[int]) -> None:
    backend.tokens_per_run = 1
    in_another_thread(backend)
    times = backend.token_times_ns()
    assert times is not None and len(times[1]) == 1
    assert backend.generated_tokens() == reference[:1]
    (tokens,) = backend.outputs()  # a full generation whatever tokens_per_run says
    assert tokens.tolist() == reference and backend.tokens_per_run == 1


def test_peak_memory_counts_the_weights_and_close_is_idempotent(folder: Path) -> None:
    made: Any = registry.create("mlx-cpu")
    info = made.prepare(decoder_spec(folder))
    assert info.first_inference_ms > 0 and info.compile_s == 0.0
    assert any("mx.get_peak_memory" in note for note in info.notes)
    peak = made.device_memory_mb()
    weights_mb = (folder / "model.safetensors").stat().st_size / 1e6
    assert peak is not None and weights_mb * 0.9 < peak < weights_mb * 20
    made.close()
    made.close()
    assert made.device_memory_mb() is None


def test_bf16_casts_the_parameters_and_says_so(folder: Path) -> None:
    import mlx.core as mx

    made: Any = registry.create("mlx-cpu", BackendOptions(dtype="bf16", threads=2))
    try:
        info = made.prepare(decoder_spec(folder))
        assert made.dtype == "bf16"
        assert "the folder's float32 weights cast to bfloat16" in info.notes
        assert any(note.startswith("--threads 2 not applied") for note in info.notes)
        assert mx.bfloat16 == made._model.layers[0].self_attn.q_proj.weight.dtype
        assert len(made.outputs()[0]) == N
    finally:
        made.close()


def test_only_decoders_and_float_precisions(folder: Path) -> None:
    with pytest.raises(BackendError, match="not int8"):
        registry.create("mlx-cpu", BackendOptions(dtype="int8"))
    made: Any = registry.create("mlx-cpu")
    image = ModelSpec(name="mobilenet_v2", kind="torchvision", input_shape=(1, 3, 8, 8))
    with pytest.raises(BackendError, match="runs decoders"):
        made.prepare(image)


def test_registry_rows_and_factors() -> None:
    assert "anetui.backends.mlx" in registry.RUNTIME_MODULES
    for backend_id, device in (("mlx-cpu", "cpu"), ("mlx-gpu", "gpu")):
        description = registry.describe(backend_id)
        assert description.accepts == (DECODER_KIND,)
        factors = description.factors()
        assert (factors.runtime, factors.device, factors.precision, factors.graph) == (
            "MLX",
            device,
            "fp32",
            "eager",
        )
    assert registry.describe("mlx-cpu").probe().ok


@pytest.mark.skipif(sys.platform == "darwin", reason="a Mac may have Metal")
def test_mlx_gpu_is_unavailable_here_with_the_reason() -> None:
    reason = "MLX's Metal GPU needs macOS on Apple silicon"
    assert registry.describe("mlx-gpu").probe().reason == reason
    assert registry.create("mlx-gpu").available().reason == reason


def test_mlx_gpu_on_a_mac_without_metal(macos: object) -> None:
    """On an Apple-silicon Mac the cheap probe passes; the full check asks MLX for Metal
    (this machine's mlx build has none)."""
    assert registry.describe("mlx-gpu").probe().ok
    availability = registry.create("mlx-gpu").available()
    assert not availability.ok and "mx.metal.is_available()" in (availability.reason or "")


@pytest.mark.skipif(sys.platform == "darwin", reason="a Mac may have Metal")
def test_mlx_gpu_forced_here_aims_at_the_gpu(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mlx-gpu's path is mlx-cpu's with the device changed: forced past its availability on
    a machine without a GPU backend, loading fails on MLX's GPU stream, nothing else."""
    from anetui.errors import Availability

    made: Any = registry.create("mlx-gpu")
    monkeypatch.setattr(made, "available", Availability.yes)
    with pytest.raises(BackendError, match="gpu stream"):
        made.prepare(decoder_spec(folder))


def test_probe_without_mlx_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without(*missing: str) -> None:
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name in missing else real(name, *a),
        )

    monkeypatch.setattr(sys, "platform", "linux")
    without("mlx.core")
    reason = mlx_backends.mlx_installed().reason or ""
    assert "pip install 'anetui[mlx]'" in reason and "mlx[cpu]" in reason
    without("mlx_lm")
    assert mlx_backends.mlx_installed().reason == "mlx-lm not installed (pip install 'anetui[mlx]')"
    assert not registry.describe("mlx-cpu").probe().ok


def test_probe_of_the_mlx_wheel_alone_on_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mlx wheel's core extension without mlx-cpu's libmlx.so beside it."""
    real = importlib.util.find_spec
    core = importlib.machinery.ModuleSpec("mlx.core", None, origin=str(tmp_path / "core.so"))
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: core if name == "mlx.core" else real(name, *a)
    )
    monkeypatch.setattr(sys, "platform", "linux")
    reason = mlx_backends.mlx_installed().reason or ""
    assert reason.startswith("mlx.core cannot load") and "mlx[cpu]" in reason


def test_listing_and_probing_import_no_runtime() -> None:
    code = (
        "import sys; from anetui.backends import registry;"
        "[d.probe() for d in registry.REGISTRY.values() if d.runtime == 'MLX'];"
        "print(sorted(m for m in ('mlx.core', 'mlx_lm', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_an_mlx_without_thread_local_streams_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlx.core as mx

    monkeypatch.delattr(mx, "new_thread_local_stream")
    reason = registry.create("mlx-cpu").available().reason or ""
    assert "predates thread-local streams (0.31.2)" in reason


@pytest.mark.parametrize(
    "rope",
    [
        {"rope_theta": 100000.0, "rope_type": "default"},  # SmolLM2's θ
        {  # Llama 3.2's θ and scaling
            "rope_theta": 500000.0,
            "rope_type": "llama3",
            "factor": 32.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    ],
    ids=["theta", "llama3"],
)
def test_rope_parameters_reach_mlx_lm(folder: Path, tmp_path: Path, rope: dict[str, Any]) -> None:
    """transformers 5 writes RoPE as rope_parameters; the logits of the prompt's last
    position equal transformers' fp32 ones (mlx-lm's Llama alone uses θ = 10000)."""
    import json
    import shutil

    import mlx.core as mx
    import torch
    import transformers

    other = tmp_path / "rope"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    config["rope_parameters"] = rope
    (other / "config.json").write_text(json.dumps(config))
    prompt = decoder_spec(other).make_inputs()["input_ids"]
    theirs = transformers.LlamaForCausalLM.from_pretrained(str(other)).eval()
    with torch.inference_mode():
        expected = theirs(torch.from_numpy(prompt)).logits[0, -1].numpy()
    ours = mlx_backends.load_decoder(other)
    got = np.array(ours(mx.array(prompt.astype(np.int32)))[0, -1])
    assert np.abs(got - expected).max() < 1e-4 * np.abs(expected).max()
