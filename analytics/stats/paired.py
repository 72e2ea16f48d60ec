"""Paired differences of panel items: the model's agreement with a panel minus the panel's own.

Plain numpy: no Django import. On an item judged by a panel of m >= 2 inspectors, the
model agrees with ``a`` of them and ``p`` of the m(m-1)/2 inspector pairs agree with
each other; the item's paired difference is a/m - p/(m(m-1)/2). Its mean over panel
items is the model's agreement with inspectors minus the inspectors' agreement with each
other, the quantity the gate's non-inferiority criterion bounds.

The confidence sequence that bounds it depends on the order of the values, so rollups
keep them in the order items arrived: that order is fixed before anyone sees a label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Differences = npt.NDArray[np.float64]

# One character per panel item. A panel of up to five inspectors gives at most 25
# distinct values, so a day's sequence is a string as long as its panel count.
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CODE_OF_BYTE = np.full(256, -1, np.int64)
_CODE_OF_BYTE[np.frombuffer(ALPHABET.encode("ascii"), np.uint8)] = np.arange(len(ALPHABET))


def paired_differences_from_counts(
    *, judgments: npt.ArrayLike, model_agrees: npt.ArrayLike, agreeing_pairs: npt.ArrayLike
) -> Differences:
    """Return each panel item's paired difference from its judgment count, a and p.

    Computed as one division of two integers, (a(m-1) - 2p) / (m(m-1)), so that equal
    fractions give bit-identical floats (a share computed as a/m - p/C would not: 2/10
    and 1/5 would differ in the last bit) and a day's values fall in a handful of codes.
    """
    m = np.asarray(judgments, np.int64)
    a = np.asarray(model_agrees, np.int64)
    p = np.asarray(agreeing_pairs, np.int64)
    if np.any(m < 2):
        raise ValueError("a paired difference needs a panel of at least two judgments")
    return ((a * (m - 1) - 2 * p) / (m * (m - 1))).astype(np.float64)


def paired_difference(*, inspector_labels: Sequence[str], model_label: str) -> float:
    """Return one panel item's paired difference from its inspectors' labels and the model's."""
    sizes = Counter(inspector_labels).values()
    (value,) = paired_differences_from_counts(
        judgments=[len(inspector_labels)],
        model_agrees=[sum(label == model_label for label in inspector_labels)],
        agreeing_pairs=[sum(n * (n - 1) // 2 for n in sizes)],
    )
    return float(value)


def paired_to_json(values: Differences) -> dict[str, Any]:
    """Return the sequence as its distinct values and one code per item, in the same order.

    A string of one character per item while there are few distinct values (always, for
    panels of at most five); a list of small ints otherwise.
    """
    array = np.asarray(values, np.float64)
    distinct, codes = np.unique(array, return_inverse=True)
    encoded: str | list[int]
    if distinct.size <= len(ALPHABET):
        table = np.frombuffer(ALPHABET.encode("ascii"), np.uint8)
        encoded = table[codes].tobytes().decode("ascii")
    else:
        encoded = codes.astype(np.int64).tolist()
    return {"values": distinct.tolist(), "codes": encoded}


def paired_from_json(data: dict[str, Any]) -> Differences:
    """Return the sequence that ``paired_to_json`` encoded."""
    distinct = np.asarray(data["values"], np.float64)
    encoded = data["codes"]
    if isinstance(encoded, str):
        codes = _CODE_OF_BYTE[np.frombuffer(encoded.encode("ascii"), np.uint8)]
    else:
        codes = np.asarray(encoded, np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= distinct.size):
        raise ValueError("paired-difference codes point outside their table of values")
    return distinct[codes]
