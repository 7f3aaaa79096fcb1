"""The shared fixtures themselves work: the tiny models load and predict through the shared loader."""

from pathlib import Path

import numpy as np

from components.common.models import load_model


def test_baseline_fixture_predicts(baseline_model_dir: Path) -> None:
    model = load_model(baseline_model_dir)
    proba = model.predict_proba(["a wonderful , moving film", "dull and lifeless"])
    assert proba.shape == (2, 2) and np.all((proba >= 0) & (proba <= 1))
    assert np.allclose(proba.sum(axis=1), 1.0) and model.labels.is_binary


def test_tiny_transformer_fixture_predicts(tiny_transformer_model_dir: Path) -> None:
    model = load_model(tiny_transformer_model_dir)
    assert model.flavor == "transformer"
    assert model.predict_proba(["great", "awful movie"]).shape == (2, 2)
