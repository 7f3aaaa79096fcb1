"""N-class models: the multinomial baseline, class weights, the label map carried by every model, (n, k)
outputs through batch-score and evaluate's paired predictions, the recorded ONNX probe answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.batch_score.score import BatchScoreSettings, batch_score, predict_frame
from components.common.artifacts import ArtifactError, read_manifest, write_manifest
from components.common.models import load_model
from components.evaluate.evaluation import paired_columns
from components.finetune.train import _weighted_trainer_class, balanced_class_weights
from components.train_baseline.train import BaselineSettings, train_baseline
from tests.conftest import FOUR_CLASS_DIR

NAMES = json.loads((FOUR_CLASS_DIR / "label_map.json").read_text())["names"]
TEXTS = ["The battery died after two days.", "One of the best films I have seen.", "Works great!"]


def test_multinomial_baseline_carries_the_label_map(four_class_model_dirs: dict[str, Path]) -> None:
    model = load_model(four_class_model_dirs["tfidf"])
    assert model.manifest.metadata["labels"] == NAMES and list(model.labels.names) == NAMES
    assert model.pipeline.named_steps["clf"].coef_.shape[0] == 4  # one weight vector per class
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (3, 4) and np.allclose(proba.sum(axis=1), 1.0)
    # Real signal: an obvious product complaint is an amazon class, an obvious film review an imdb one.
    assert NAMES[int(np.argmax(proba[0]))].startswith("amazon")
    assert NAMES[int(np.argmax(proba[1]))].startswith("imdb")


def test_balanced_class_weights_change_the_baseline(tmp_path: Path, four_class_validated_dir: Path) -> None:
    # Drop most of one class from train: balanced weights must then move the classifier.
    frame = pd.read_parquet(four_class_validated_dir / "dataset.parquet")
    rare = (frame["split"] == "train") & (frame["label"] == 3)
    skewed = frame.drop(frame[rare].index[40:])
    data = tmp_path / "validated"
    shutil.copytree(four_class_validated_dir, data)
    skewed.to_parquet(data / "dataset.parquet", index=False)
    fits = {
        weight: train_baseline(
            BaselineSettings(
                validated_dir=str(data), output_dir=str(tmp_path / weight), class_weight=weight, track=False
            )
        )
        for weight in ("none", "balanced")
    }
    models = {w: load_model(Path(r.model_dir)) for w, r in fits.items()}
    assert models["balanced"].manifest.metadata["params"]["class_weight"] == "balanced"
    assert models["balanced"].pipeline.named_steps["clf"].class_weight == "balanced"
    assert models["none"].pipeline.named_steps["clf"].class_weight is None
    texts = skewed.loc[skewed["split"] == "validation", "text"].tolist()
    # The under-represented class is predicted more often once it weighs as much as the others.
    share = {w: float(np.mean(np.argmax(m.predict_proba(texts), axis=1) == 3)) for w, m in models.items()}
    assert share["balanced"] > share["none"]


def test_balanced_weights_and_weighted_loss(four_class_model_dirs: dict[str, Path]) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    weights = balanced_class_weights(pd.Series([0, 0, 0, 1, 2, 2]), 4)
    assert weights.tolist() == pytest.approx([6 / 12, 6 / 4, 6 / 8, 0.0])  # n / (k * count), 0 when absent
    path = four_class_model_dirs["transformer"]
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    inputs = dict(AutoTokenizer.from_pretrained(path)(TEXTS, padding=True, return_tensors="pt"))
    labels = torch.tensor([0, 3, 1])
    trainer_class = _weighted_trainer_class(np.array([1.0, 1.0, 1.0, 5.0]))
    with torch.no_grad():
        loss = trainer_class.compute_loss(None, model, {**inputs, "labels": labels})  # self is not used
        logits = model(**inputs).logits
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor([1.0, 1.0, 1.0, 5.0]))
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    # The untrained head's logits are nearly uniform: the weighting still moves the loss measurably.
    assert abs(float(loss) - float(torch.nn.functional.cross_entropy(logits, labels))) > 1e-4


def test_transformer_names_its_classes_and_records_matrix_probes(
    four_class_model_dirs: dict[str, Path],
) -> None:
    model = load_model(four_class_model_dirs["transformer"], device="cpu")
    assert list(model.labels.names) == NAMES
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (3, 4) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert model.predict_proba([]).shape == (0, 4)
    reference = np.asarray(model.manifest.metadata["onnx"]["probe_reference"])
    assert reference.ndim == 2 and reference.shape[1] == 4  # torch's (n, k) answers on the probe texts


def test_a_model_whose_outputs_differ_from_its_labels_is_refused(
    tmp_path: Path, four_class_model_dirs: dict[str, Path]
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(four_class_model_dirs["tfidf"], copy)
    metadata = read_manifest(copy).metadata
    write_manifest(copy, "tfidf", {**metadata, "labels": ["negative", "positive"]})
    with pytest.raises(ArtifactError, match=r"outputs shape \(1, 4\) but declares 2 classes"):
        load_model(copy).predict_proba(["x"])
    write_manifest(copy, "tfidf", {**metadata, "labels": "negative"})
    with pytest.raises(ArtifactError, match="'labels' must be a list of class names"):
        load_model(copy)


def test_batch_score_names_every_class(tmp_path: Path, four_class_model_dirs: dict[str, Path]) -> None:
    model = load_model(four_class_model_dirs["tfidf"])
    out = predict_frame(model, pd.DataFrame({"text": TEXTS}), "text", 2, "uci-source-sentiment", "1")
    assert out["predicted_label"].tolist()[:2] == [NAMES[i] for i in out["class_index"].tolist()[:2]]
    assert [c for c in out.columns if c.startswith("probability_")] == [f"probability_{n}" for n in NAMES]
    assert "positive_probability" not in out.columns and "predicted_label_name" not in out.columns
    assert np.allclose(out[[f"probability_{n}" for n in NAMES]].sum(axis=1), 1.0)
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(source, index=False)
    result = batch_score(
        BatchScoreSettings(
            dataset_uri=str(source), model_uri=str(four_class_model_dirs["tfidf"]), allow_unpinned_model=True
        )
    )
    assert result.positive_share is None and list(result.class_shares) == NAMES
    assert sum(result.class_shares.values()) == pytest.approx(1.0)


def test_binary_batch_score_keeps_its_columns(baseline_model_dir: Path) -> None:
    out = predict_frame(load_model(baseline_model_dir), pd.DataFrame({"text": TEXTS}), "text", 8, "m", "1")
    assert out["predicted_label"].tolist() == out["class_index"].tolist()
    assert set(out["predicted_label"]) <= {0, 1}
    assert out["positive_probability"].tolist() == pytest.approx(out["probability_positive"].tolist())
    assert set(out["predicted_label_name"]) <= {"negative", "positive"}


def test_paired_prediction_columns() -> None:
    binary = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert list(paired_columns("challenger", binary)) == ["challenger_proba"]
    assert paired_columns("challenger", binary)["challenger_proba"].tolist() == [0.8, 0.4]
    four = np.full((2, 4), 0.25)
    assert list(paired_columns("baseline", four)) == [f"baseline_proba_{i}" for i in range(4)]
