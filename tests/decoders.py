"""What the generative runtimes' tests share: the tiny decoder's folder (a fixture), the
workload's spec for a folder (anetui's own ``decoder_spec``) and the workload's reference
tokens (transformers' greedy ``generate()`` in fp32 on the CPU, as the session compares)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anetui.models.spec import ModelSpec

#: Prompt and generated tokens the runtimes' tests use unless they say otherwise.
P, N = 16, 12


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``llama-tiny`` saved with ``save_pretrained`` (no tokenizer), once per module."""
    from anetui.models.decoders import save_random_decoder
    from anetui.models.zoo import ZOO

    return save_random_decoder(ZOO["llama-tiny"], tmp_path_factory.mktemp("llama") / "m")


def decoder_spec(folder: Path, prompt_len: int = P, gen_len: int = N) -> ModelSpec:
    """The generative workload's spec for ``folder`` (named after it), as resolve makes it."""
    from anetui.models.decoders import decoder_spec as make

    return make(folder.name, folder, prompt_len=prompt_len, gen_len=gen_len)


def reference_tokens(spec: ModelSpec) -> list[int]:
    """The tokens every backend is compared with (``gen_len`` of them)."""
    from anetui.backends.torch_generate import reference_tokens as reference

    return reference(spec)
