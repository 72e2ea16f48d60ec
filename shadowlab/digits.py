"""The demo's data and model: scikit-learn's bundled handwritten digits (no Django import)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS = [str(digit) for digit in range(10)]
WIDTH = 64
IMAGE_SHAPE = [8, 8]
PIXEL_MAX = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    train_x: np.ndarray
    train_y: np.ndarray
    holdout_x: np.ndarray
    holdout_y: np.ndarray


def digits_split(*, seed: int = 0, train_share: float = 0.6) -> DigitsSplit:
    """Split the 1,797 bundled digits into training rows and a held-out stream."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    train_x, holdout_x, train_y, holdout_y = train_test_split(
        x, y, train_size=train_share, random_state=seed, stratify=y
    )
    return DigitsSplit(train_x, train_y, holdout_x, holdout_y)


def digits_model_export(
    split: DigitsSplit, path: Path, *, seed: int = 0, hidden: tuple[int, ...] = (256, 128)
) -> float:
    """Train the demo MLP, write it to path as FP32 ONNX and return its held-out accuracy."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    # Raw pixels (0-16) go straight into the MLP: they are already bounded, and a
    # StandardScaler in front blows up near-constant border pixels, which costs INT8 parity.
    model = MLPClassifier(hidden_layer_sizes=hidden, max_iter=300, random_state=seed)
    model.fit(split.train_x, split.train_y)
    # A probability tensor instead of ZipMap's list of dicts.
    onnx_model = to_onnx(
        model, split.train_x[:1], options={MLPClassifier: {"zipmap": False}}, target_opset=17
    )
    path.write_bytes(onnx_model.SerializeToString())
    return float(model.score(split.holdout_x, split.holdout_y))


def digits_weak_model_export(
    split: DigitsSplit, path: Path, *, pixels: int = 8, seed: int = 0
) -> float:
    """Train a cheaper MLP that reads only the most informative pixels; write it and score it.

    The demo's weaker candidate: the same training rows, but a univariate selection keeps
    ``pixels`` of the 64 inputs, so it confuses digits the full model tells apart. The ONNX
    graph still takes all 64 features, as the queue sends them.
    """
    from skl2onnx import to_onnx
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        SelectKBest(f_classif, k=pixels),
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=seed),
    )
    with warnings.catch_warnings():
        # Border pixels are always blank, so their F statistic is 0/0: they are never picked.
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        model.fit(split.train_x, split.train_y)
    onnx_model = to_onnx(
        model, split.train_x[:1], options={MLPClassifier: {"zipmap": False}}, target_opset=17
    )
    path.write_bytes(onnx_model.SerializeToString())
    return float(model.score(split.holdout_x, split.holdout_y))
