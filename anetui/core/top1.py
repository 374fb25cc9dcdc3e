"""Top-1 agreement for classifiers: the share of a batch's predicted classes (argmax of
the scores) that are the reference's. Beside the error figure of
:mod:`anetui.core.agreement`, it says whether quantization changed the answer, not only
the scores. Random weights make scores close together, so top-1 here is stricter than on
a trained model: it measures agreement with fp32, never accuracy."""

from __future__ import annotations

import numpy as np


def is_classifier_output(array: np.ndarray) -> bool:
    """Scores per class: (batch, classes) with at least two classes."""
    return array.ndim == 2 and array.shape[1] >= 2


def top1_agreement(output: np.ndarray, reference: np.ndarray | None) -> float | None:
    """Share (0–1) of rows whose argmax equals the reference's; None when either is not a
    classifier's scores, the shapes differ or the output is not finite."""
    if reference is None or output.shape != reference.shape:
        return None
    if not is_classifier_output(reference) or not np.all(np.isfinite(output)):
        return None
    return float(np.mean(np.argmax(output, axis=1) == np.argmax(reference, axis=1)))
