"""Core ML with a stateful KV cache (the generative workload): the real conversion of a
tiny Llama here, and the generation loop on the macOS personality, whose predictions are
computed by the very torch module that was converted (Core ML's arithmetic needs a Mac)."""

from __future__ import annotations

import itertools
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anetui.models.inputs import InputSpec
from anetui.models.spec import DECODER_KIND, GenerationSpec, ModelSpec

P, N = 8, 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from anetui.models.decoders import save_random_decoder
    from anetui.models.zoo import ZOO

    return save_random_decoder(ZOO["llama-tiny"], tmp_path_factory.mktemp("llama") / "m")


@pytest.fixture(scope="module")
def spec(folder: Path) -> ModelSpec:
    vocab = 4096  # llama-tiny's
    return ModelSpec(
        "llama-tiny",
        DECODER_KIND,
        path=folder,
        generation=GenerationSpec(P, N, vocab),
        inputs=(InputSpec("input_ids", (1, P), "int64", "tokens", vocab),),
    )


@pytest.fixture(scope="module")
def reference(folder: Path, spec: ModelSpec) -> list[int]:
    """transformers' greedy tokens in fp32 on the CPU: what "correct" means."""
    import torch
    import transformers

    model = transformers.LlamaForCausalLM.from_pretrained(str(folder)).eval()
    prompt = torch.from_numpy(spec.make_inputs()["input_ids"])
    out = model.generate(prompt, max_new_tokens=N, min_new_tokens=N, do_sample=False)
    return [int(t) for t in out[0, P:]]


class TorchStates:
    """Stateful predictions computed by the converted module on the CPU: one KV cache per
    Core ML state, swapped into the module's buffers around each prediction.

    It also checks what a random model's greedy tokens may not reveal (they often repeat
    one token): each prediction appends right after the positions its state holds
    (``past`` = ``end - q`` of the mask equals the tokens predicted so far in that state),
    so no step reads a slot never written or overwrites one.
    """

    def __init__(self, folder: Path, context: int) -> None:
        from anetui.models.convert.coreml_decoder import decoder_module, load_causal_lm

        self.model = load_causal_lm(folder)
        self.module = decoder_module(self.model, context).eval()
        self.caches: dict[int, tuple[Any, Any]] = {}
        self.filled: dict[int, int] = {}

    def __call__(self, data: dict[str, np.ndarray], state: Any) -> dict[str, np.ndarray]:
        import torch

        from anetui.models.convert.coreml_decoder import CAUSAL_MASK, INPUT_IDS, LOGITS

        q_len, end = data[INPUT_IDS].shape[-1], data[CAUSAL_MASK].shape[-1]
        assert end - q_len == self.filled.get(id(state), 0), "the cache positions skip or overlap"
        self.filled[id(state)] = end
        keys, values = self.module.key_cache, self.module.value_cache
        held = self.caches.get(id(state), (torch.zeros_like(keys), torch.zeros_like(values)))
        keys.copy_(held[0])
        values.copy_(held[1])
        with torch.no_grad():
            logits = self.module(
                torch.from_numpy(data[INPUT_IDS]),
                torch.from_numpy(data[CAUSAL_MASK].astype(np.float32)),
            )
        self.caches[id(state)] = (keys.clone(), values.clone())
        return {LOGITS: logits.numpy().astype(np.float32)}


def test_converted_module_generates_transformers_tokens(
    folder: Path, spec: ModelSpec, reference: list[int]
) -> None:
    import torch

    from anetui.models.convert.coreml_decoder import CAUSAL_MASK, INPUT_IDS, causal_mask

    predict = TorchStates(folder, P + N)
    state = object()
    prompt = spec.make_inputs()["input_ids"].astype(np.int32)
    logits = predict({INPUT_IDS: prompt, CAUSAL_MASK: causal_mask(P, P)}, state)["logits"]
    steps = [logits]
    tokens = [int(np.argmax(logits))]
    while len(tokens) < N:
        step = {
            INPUT_IDS: np.array([[tokens[-1]]], dtype=np.int32),
            CAUSAL_MASK: causal_mask(1, P + len(tokens)),
        }
        steps.append(predict(step, state)["logits"])
        tokens.append(int(np.argmax(steps[-1])))
    assert tokens == reference
    # Sharper than the tokens (a random model repeats itself): every step's logits are
    # transformers' own for the whole sequence so far, up to the fp16 KV cache.
    sequence = np.concatenate([prompt[0], tokens]).astype(np.int64)
    with torch.no_grad():
        full = predict.model(torch.from_numpy(sequence[None])).logits[0].numpy()
    for i, got in enumerate(steps):
        expected = full[P - 1 + i]
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got.reshape(-1), expected, rtol=0, atol=2e-3 * scale)


def test_causal_mask() -> None:
    from anetui.models.convert.coreml_decoder import causal_mask

    mask = causal_mask(2, 5)[0, 0]  # two new tokens at positions 3 and 4
    assert mask.shape == (2, 5)
    assert (mask[0, :4] == 0).all() and mask[0, 4] == -np.inf
    assert (mask[1] == 0).all()


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_conversion_declares_states_and_is_cached(
    spec: ModelSpec, isolated_cache: Path, precision: str
) -> None:
    import coremltools as ct

    from anetui.models.convert.coreml_decoder import convert_decoder

    first = convert_decoder(spec, precision)
    assert not first.cached and first.path.name == "decoder.mlpackage"
    package = ct.models.MLModel(str(first.path), skip_model_load=True).get_spec()
    described = package.description
    inputs = {f.name: f.type.multiArrayType for f in described.input}
    assert list(inputs) == ["input_ids", "causal_mask"]
    ids, mask = inputs["input_ids"], inputs["causal_mask"]
    assert ids.dataType == ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32
    types = ct.proto.FeatureTypes_pb2.ArrayFeatureType
    assert mask.dataType == (types.FLOAT16 if precision == "fp16" else types.FLOAT32)
    context = P + N
    assert [(r.lowerBound, r.upperBound) for r in ids.shapeRange.sizeRanges] == [
        (1, 1),
        (1, context),
    ]
    assert [(r.lowerBound, r.upperBound) for r in mask.shapeRange.sizeRanges][2:] == [
        (1, context),
        (1, context),
    ]
    assert [o.name for o in described.output] == ["logits"]
    states = {s.name: s.type.stateType.arrayType for s in described.state}
    assert list(states) == ["key_cache", "value_cache"]
    # llama-tiny: 4 layers, 2 KV heads, head dim 128 / 4 heads = 32; fp16 at either
    # precision (Core ML's states are fp16 only).
    for state in states.values():
        assert list(state.shape) == [4, 2, context, 32]
        assert state.dataType == ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT16
    # The in-place cache writes survived as state writes (coreml_update_state, saved as
    # write_state): a slice of each cache per layer, written back.
    ops = [
        op.type
        for block in package.mlProgram.functions["main"].block_specializations.values()
        for op in block.operations
    ]
    assert ops.count("write_state") == ops.count("slice_update") == 2 * 4
    meta = json.loads(package.description.metadata.userDefined["anetui.decoder"])
    assert meta["context"] == context
    again = convert_decoder(spec, precision)
    assert again.cached and again.path == first.path


def test_generation_on_macos(
    macos: Any, spec: ModelSpec, folder: Path, reference: list[int], isolated_cache: Path
) -> None:
    from anetui.backends import registry
    from anetui.backends.base import BackendOptions
    from anetui.backends.generation import is_generative

    macos.coreml.stateful = TorchStates(folder, P + N)
    backend: Any = registry.create("coreml-ane", BackendOptions())
    assert backend.dtype == "fp16" and is_generative(backend)
    info = backend.prepare(spec)
    assert any("fp16 only" in note for note in info.notes)
    states_before, predictions_before = len(macos.coreml.states), macos.coreml.predictions
    backend.infer()
    # A fresh state per generation; one prediction for the prefill, one per further token.
    assert len(macos.coreml.states) == states_before + 1
    assert macos.coreml.predictions == predictions_before + N
    assert backend.generated_tokens() == reference
    times = backend.token_times_ns()
    assert times is not None
    start, stamps = times
    assert len(stamps) == N and start <= stamps[0]
    assert all(a <= b for a, b in itertools.pairwise(stamps))
    backend.tokens_per_run = 1  # the prefill-only stretch
    backend.infer()
    assert backend.generated_tokens() == reference[:1]
    assert len(backend.token_times_ns()[1]) == 1
    outputs = backend.outputs()  # a full generation whatever tokens_per_run is
    assert outputs[0].dtype == np.int64 and outputs[0].tolist() == reference
    assert backend.tokens_per_run == 1
    backend.close()


def test_decoder_needs_macos_15(macos: Any, spec: ModelSpec) -> None:
    from anetui.backends import registry
    from anetui.backends.base import BackendOptions, NotAvailableHere

    platform.mac_ver.return_value = ("14.6", ("", "", ""), "arm64")  # the personality's autospec
    backend = registry.create("coreml-gpu", BackendOptions())
    with pytest.raises(NotAvailableHere, match="macOS 15"):
        backend.prepare(spec)


def test_unsupported_architecture_is_one_line(folder: Path, tmp_path: Path) -> None:
    from anetui.models.convert.coreml import ConversionError
    from anetui.models.convert.coreml_decoder import load_causal_lm

    other = tmp_path / "m"
    other.mkdir()
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="mistral", architectures=["MistralForCausalLM"])
    (other / "config.json").write_text(json.dumps(config))
    (other / "model.safetensors").symlink_to(folder / "model.safetensors")
    with pytest.raises(ConversionError, match="supports llama, qwen2; m is mistral"):
        load_causal_lm(other)
