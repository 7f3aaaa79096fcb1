"""The hashed TF-IDF baseline: bounded size whatever the data, and unseen n-grams change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.common.models import load_model
from components.train_baseline.train import BaselineSettings, train_baseline


def test_unseen_ngrams_neither_count_nor_dilute(tmp_path: Path, validated_smoke_dir: Path) -> None:
    result = train_baseline(
        BaselineSettings(validated_dir=str(validated_smoke_dir), output_dir=str(tmp_path), track=False)
    )
    model = load_model(Path(result.model_dir))
    seen = "a gorgeous , funny film"
    proba = model.predict_proba([seen, f"{seen} qzxvw blorptang zzyzx", "qzxvw blorptang zzyzx"])[:, 1]
    assert abs(proba[0] - 0.5) > 1e-3  # the seen words carry a signal
    assert abs(proba[1] - proba[0]) < 1e-9  # words no training text had: no weight, no share of the norm
    hashing = model.pipeline.named_steps["hashing"]
    assert hashing.n_features == 2**20 and model.pipeline.named_steps["clf"].coef_.shape == (1, 2**20)
    idf = model.pipeline.named_steps["tfidf"].idf_
    assert 0 < np.count_nonzero(idf) < 20_000  # only columns the 76 training texts hashed into
