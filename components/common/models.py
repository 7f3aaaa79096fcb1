"""The two model flavours the pipeline produces, behind one small interface used by evaluate and serving.

- ``tfidf``: a scikit-learn Pipeline (TF-IDF + LogisticRegression) saved with skops (no bare pickle).
- ``transformer``: a Hugging Face ``AutoModelForSequenceClassification`` directory (safetensors).
Both are loaded only after their manifest's sha256 checks pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from components.common.artifacts import ArtifactError, Manifest, verify_manifest, write_manifest

TFIDF_FLAVOR = "tfidf"
TRANSFORMER_FLAVOR = "transformer"
SKOPS_FILE = "model.skops"
LABELS = ("negative", "positive")


class SentimentModel(Protocol):
    """Anything that turns texts into the positive-class probability."""

    flavor: str
    manifest: Manifest

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Positive-class probability for each text, shape (n,)."""
        ...


@dataclass
class TfidfModel:
    """TF-IDF + LogisticRegression baseline."""

    pipeline: Any
    manifest: Manifest
    flavor: str = TFIDF_FLAVOR

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.pipeline.predict_proba(list(texts))[:, 1]


def save_tfidf(pipeline: Any, model_dir: Path, metadata: dict[str, Any]) -> Manifest:
    """Save a fitted sklearn pipeline with skops and write the manifest."""
    import skops.io as sio

    sio.dump(pipeline, model_dir / SKOPS_FILE)
    return write_manifest(model_dir, TFIDF_FLAVOR, metadata)


def _load_tfidf(model_dir: Path, manifest: Manifest) -> TfidfModel:
    import skops.io as sio

    path = model_dir / SKOPS_FILE
    untrusted = sio.get_untrusted_types(file=path)
    allowed_prefixes = ("sklearn.", "numpy.", "scipy.", "builtins.")
    unexpected = [t for t in untrusted if not t.startswith(allowed_prefixes)]
    if unexpected:
        raise ArtifactError(f"{path} contains unexpected types: {', '.join(unexpected)}")
    return TfidfModel(pipeline=sio.load(path, trusted=untrusted), manifest=manifest)


class TransformerModel:
    """A sequence-classification transformer; tokenises and runs in batches without gradients."""

    flavor = TRANSFORMER_FLAVOR

    def __init__(self, model_dir: Path, manifest: Manifest, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.manifest = manifest
        self.max_length = int(manifest.metadata.get("max_length", 128))
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(self.device).eval()

    def tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        """Tokenise a batch (padded to its longest member, truncated to ``max_length``)."""
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )

    def predict_tokens(self, encoded: dict[str, Any]) -> np.ndarray:
        """Positive-class probability for an already tokenised batch."""
        import torch

        with torch.inference_mode():
            batch = {k: v.to(self.device) for k, v in encoded.items()}
            logits = self.model(**batch).logits.float()
            return torch.softmax(logits, dim=-1)[:, 1].cpu().numpy()

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        parts = [
            self.predict_tokens(self.tokenize(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(parts)


def load_model(
    model_dir: Path, expected_digest: str | None = None, device: str | None = None
) -> SentimentModel:
    """Verify a model directory's manifest, then load it with the loader for its flavour."""
    manifest = verify_manifest(model_dir, expected_digest)
    if manifest.flavor == TFIDF_FLAVOR:
        return _load_tfidf(model_dir, manifest)
    if manifest.flavor == TRANSFORMER_FLAVOR:
        return TransformerModel(model_dir, manifest, device=device)
    raise ArtifactError(f"unknown model flavour {manifest.flavor!r} in {model_dir}")
