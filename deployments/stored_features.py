"""Read items' stored feature JSON into the matrix a model scores (no Django import)."""

from __future__ import annotations

import json

import numpy as np

from shadowlab.finite import finite_number_problem


def _row_problem(features: object, width: int) -> str | None:
    if not isinstance(features, list):
        return "stored features are not a list"
    if len(features) != width:
        return f"item has {len(features)} features, the model expects {width}"
    for index, value in enumerate(features):
        problem = finite_number_problem(value)
        if problem:
            return f"features[{index}] is {problem}"
    return None


def stored_features_matrix(
    rows: list[tuple[int, str]], width: int
) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    """Parse stored feature JSON into a float64 matrix; return (ids, matrix, problems).

    float64, not the float32 the model reads: a value float32 cannot hold (1e308) stays
    itself, so that the input range check can name it.

    One json.loads over the whole batch is several times faster than one per row; only
    when that batch does not form a clean [n, width] matrix is each row checked on its own.
    """
    try:
        matrix = np.asarray(
            json.loads("[" + ",".join(text for _, text in rows) + "]"), dtype=np.float64
        )
        if matrix.shape == (len(rows), width) and np.isfinite(matrix).all():
            return [item_id for item_id, _ in rows], matrix, []
    except (ValueError, TypeError):
        pass
    ids: list[int] = []
    good: list[list[float]] = []
    problems: list[tuple[int, str]] = []
    for item_id, text in rows:
        try:
            features = json.loads(text)
        except ValueError:
            problems.append((item_id, "stored features are not valid JSON"))
            continue
        problem = _row_problem(features, width)
        if problem:
            problems.append((item_id, problem))
        else:
            ids.append(item_id)
            good.append(features)
    return ids, np.asarray(good, dtype=np.float64).reshape(len(good), width), problems
