"""Each backend's outputs against one reference, made once per session: every output's
agreement (and top-1 for classifiers) with eager fp32 PyTorch on the CPU, or for the
generative workload the share of tokens equal to transformers' greedy ``generate()``.
The check informs; it never stops a run (a failure is a note on the backend)."""

from __future__ import annotations

import numpy as np

from anetui.core import agreement, generation, top1
from anetui.core.slot import Slot
from anetui.errors import one_line
from anetui.models.spec import ModelSpec


class OutputCheck:
    """The reference of one model, made at the first check, and the check of each slot."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        #: The reference outputs (one forward pass per inference), once made.
        self.reference: agreement.Reference | None = None
        self._tokens: list[int] | None = None
        self._made = False
        self._note: str | None = None

    def check(self, slot: Slot) -> None:
        """Set ``slot``'s agreement figures (or a note saying why there are none)."""
        assert slot.backend is not None
        if self.spec.generation is not None:
            self._check_tokens(slot)
        else:
            slot.agreement = self._check_outputs(slot)

    def _check_outputs(self, slot: Slot) -> float | None:
        """Agreement with eager fp32 PyTorch on the CPU over every output (the worst is
        returned, each kept on the slot); None with a note when there is none."""
        assert slot.backend is not None
        if not self._made:
            self._made = True
            self.reference, self._note = agreement.reference_or_note(self.spec)
        if self._note:
            slot.notes.append(self._note)
            return None
        outputs: list[list[np.ndarray]] = []  # the outputs compared, kept for top-1
        run_outputs = agreement.backend_outputs(slot.backend)

        def output() -> list[np.ndarray]:
            outputs.append(run_outputs())
            return outputs[-1]

        found = agreement.compare(output, self.reference)
        if found.note:
            slot.notes.append(found.note)
        slot.agreement_outputs = found.per_output
        ref = self.reference
        if found.worst is not None and outputs and ref is not None and len(ref.arrays) == 1:
            slot.top1 = top1.top1_agreement(np.asarray(outputs[-1][0]), ref.arrays[0])
        return found.worst

    def _check_tokens(self, slot: Slot) -> None:
        """The share of a full generation's tokens equal to transformers' greedy tokens in
        eager fp32 on the CPU, and the first position that differs."""
        assert slot.backend is not None
        if not self._made:
            self._made = True
            self._tokens, self._note = agreement.reference_tokens_or_note(self.spec)
        if self._note or self._tokens is None:
            if self._note:
                slot.notes.append(self._note)
            return
        try:
            tokens = [int(t) for t in slot.backend.outputs()[0].reshape(-1)]
        except Exception as exc:  # the check failed, the measurement still stands
            slot.notes.append(f"token agreement not checked: {one_line(exc)}")
            return
        slot.token_agreement = generation.token_agreement(tokens, self._tokens)
