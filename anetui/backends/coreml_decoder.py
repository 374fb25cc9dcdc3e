"""Greedy generation with a stateful Core ML decoder (made by
:mod:`anetui.models.convert.coreml_decoder`), the loop the Core ML backends run for the
generative workload.

One generation (:meth:`CoreMLGenerator.generate`): a fresh state (``make_state()``: an
empty KV cache), the prompt predicted at once (the prefill), then one token at a time,
each prediction given the state (``predict(inputs, state=state)``, coremltools 9.0's
``MLModel`` and ``CompiledMLModel``), the next token the argmax of the logits on the
host. ``predict`` returns once Core ML is done and the logits are numpy arrays, so each
token exists on the host when it is stamped (:class:`~anetui.backends.generation.TokenClock`).
The inputs (the prompt as int32, every step's causal mask) are built once, outside the
timed region; the clock starts before ``make_state()``, which is part of a generation.

Lines that only run on macOS are marked ``# macOS only``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from anetui.backends.base import BackendError
from anetui.backends.generation import TokenClock
from anetui.models.convert.coreml_decoder import CAUSAL_MASK, INPUT_IDS, LOGITS, causal_mask


class CoreMLGenerator:
    """Generates ``tokens_per_run`` tokens (1 … ``gen_len``) after ``prompt`` (int, (1, P))
    with ``model``, a loaded stateful package; ``mask_dtype`` is the package's mask type."""

    def __init__(
        self, model: Any, prompt: np.ndarray, gen_len: int, mask_dtype: type[np.floating[Any]]
    ) -> None:
        self._model = model
        self.capacity = gen_len
        self.tokens_per_run = gen_len
        prompt_len = int(prompt.shape[-1])
        self._prompt = {
            INPUT_IDS: prompt.reshape(1, prompt_len).astype(np.int32),
            CAUSAL_MASK: causal_mask(prompt_len, prompt_len, mask_dtype),
        }
        # Step i (1 … gen_len - 1) feeds token i - 1 at position prompt_len + i - 1: the
        # cache then holds prompt_len + i positions. One new token sees all of them.
        self._step_masks = [causal_mask(1, prompt_len + i, mask_dtype) for i in range(1, gen_len)]
        self._token = np.zeros((1, 1), dtype=np.int32)  # refilled per step, never reallocated
        self._tokens = [0] * gen_len
        self._count = 0
        self.clock = TokenClock(gen_len)

    def set_tokens_per_run(self, tokens: int) -> None:
        if not 1 <= tokens <= self.capacity:
            raise BackendError(
                f"Core ML decoder: {tokens} tokens per run, the package's cache holds "
                f"the prompt and 1 … {self.capacity}"
            )
        self.tokens_per_run = tokens

    def generate(self) -> None:
        """One generation of exactly ``tokens_per_run`` tokens, stamped."""
        model, tokens, clock, token = self._model, self._tokens, self.clock, self._token
        clock.start()
        state = model.make_state()  # macOS only: an empty cache per generation
        logits = model.predict(self._prompt, state=state)[LOGITS]  # macOS only
        tokens[0] = int(np.argmax(logits.reshape(-1)))
        clock.mark()
        for i in range(1, self.tokens_per_run):
            token[0, 0] = tokens[i - 1]
            inputs = {INPUT_IDS: token, CAUSAL_MASK: self._step_masks[i - 1]}
            logits = model.predict(inputs, state=state)[LOGITS]  # macOS only
            tokens[i] = int(np.argmax(logits.reshape(-1)))
            clock.mark()
        self._count = self.tokens_per_run

    def token_times_ns(self) -> tuple[int, Sequence[int]] | None:
        return self.clock.times()

    def generated_tokens(self) -> list[int]:
        return self._tokens[: self._count]


def decoder_notes(compute_unit: str, dtype: str) -> list[str]:
    """What a user should know of a stateful decoder run on ``compute_unit`` (coremltools'
    ``ComputeUnit`` member name) in ``dtype``."""
    notes = ["KV cache in Core ML states, fp16 (Core ML keeps states in fp16 only)"]
    if compute_unit in ("CPU_AND_NE", "ALL"):
        notes.append(
            "flexible query and cache lengths (RangeDim): Core ML may run such a model "
            "off the Neural Engine; the compute plan says where it runs"
        )
        if dtype == "fp32":
            notes.append("the Neural Engine computes in fp16 only: fp32 runs on the CPU or GPU")
    return notes
