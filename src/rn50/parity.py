"""Parity: the same images through several engines, their outputs compared (pure functions)."""

from __future__ import annotations

import numpy as np

PROBABILITY_TOLERANCE = 1e-3
# Largest |difference| of a class probability for engines to agree, by the precision they
# ran: FP32 engines differ by summation order only; BF16 keeps 8 mantissa bits, and two
# engines round in different places (which layers stay FP32, where casts sit).
PARITY_TOLERANCE = {"fp32": PROBABILITY_TOLERANCE, "bfloat16": 1e-2}


def to_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Softmax of logits; outputs that already are probabilities are returned as they are."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if (outputs >= 0).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return outputs
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def align_classes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the background class of a 1001-class output compared with a 1000-class one."""
    if a.shape[1] == b.shape[1] + 1:
        a = a[:, 1:]
    elif b.shape[1] == a.shape[1] + 1:
        b = b[:, 1:]
    if a.shape != b.shape:
        raise ValueError(f"outputs have shapes {a.shape} and {b.shape}")
    return a, b


def compare(reference: np.ndarray, other: np.ndarray,
            tolerance: float = PROBABILITY_TOLERANCE) -> dict:
    """Differences of `other` from `reference` (batch x classes); `agree` within `tolerance`."""
    ref, oth = align_classes(np.asarray(reference, np.float64), np.asarray(other, np.float64))
    p_ref, p_oth = to_probabilities(ref), to_probabilities(oth)
    diff = np.abs(p_ref - p_oth)
    result = {
        "max_abs_probability_diff": float(diff.max()),
        "max_rel_probability_diff": float(diff.max() / max(np.abs(p_ref).max(), 1e-30)),
        "top1_agreement": float((p_ref.argmax(1) == p_oth.argmax(1)).mean()),
        "logits_max_abs_diff": None,
    }
    both_logits = not (np.array_equal(p_ref, ref) or np.array_equal(p_oth, oth))
    if both_logits:
        result["logits_max_abs_diff"] = float(np.abs(ref - oth).max())
        result["logits_max_rel_diff"] = float(np.abs(ref - oth).max() / max(np.abs(ref).max(), 1e-30))
    result["agree"] = (result["top1_agreement"] == 1.0
                       and result["max_abs_probability_diff"] < tolerance)
    return result
