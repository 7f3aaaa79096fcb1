"""The model flavours the pipeline produces, behind one small interface used by evaluate and serving.

- ``tfidf``: a scikit-learn Pipeline (TF-IDF + LogisticRegression) saved with skops (no bare pickle).
- ``transformer``: a Hugging Face ``AutoModelForSequenceClassification`` directory (safetensors).
- ``ensemble``: complete model directories of the two flavours above under ``members/``, and the weights
  ``blend`` chose on the validation split; its class probabilities are the weighted average of theirs.
Each is loaded only after its manifest's sha256 checks pass (an ensemble's manifest covers its members').
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np

from components.common.artifacts import (
    MANIFEST_NAME,
    ArtifactError,
    Manifest,
    read_manifest,
    verify_manifest,
    write_manifest,
)
from components.common.labels import BINARY_NAMES, LabelMap, LabelMapError

TFIDF_FLAVOR = "tfidf"
TRANSFORMER_FLAVOR = "transformer"
ENSEMBLE_FLAVOR = "ensemble"
ENSEMBLE_MEMBERS_DIR = "members"
SKOPS_FILE = "model.skops"
LABELS = BINARY_NAMES  # the default (binary) task's class names; a model's own are ``model.labels``


class TextClassifier(Protocol):
    """Anything that turns texts into class probabilities, with the names of its classes."""

    flavor: str
    manifest: Manifest
    labels: LabelMap

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities for each text, shape (n, k), columns in class-id order (binary: column 1 = P(positive))."""
        ...


def manifest_labels(manifest: Manifest) -> LabelMap:
    """The model's classes from its manifest metadata ``labels``; binary when absent (models before label maps)."""
    names = manifest.metadata.get("labels")
    if names is None:
        return LabelMap.binary()
    if not isinstance(names, list | tuple):
        raise ArtifactError(f"manifest metadata 'labels' must be a list of class names, got {names!r}")
    try:
        return LabelMap(tuple(str(n) for n in names))
    except LabelMapError as exc:
        raise ArtifactError(f"manifest metadata 'labels': {exc}") from exc


def _check_width(proba: np.ndarray, labels: LabelMap) -> np.ndarray:
    """Refuse a model whose output width differs from its declared classes (a mislabelled artifact)."""
    if proba.ndim != 2 or proba.shape[1] != labels.num_classes:
        raise ArtifactError(
            f"model outputs shape {proba.shape} but declares {labels.num_classes} classes {list(labels.names)}"
        )
    return proba


@dataclass
class TfidfModel:
    """TF-IDF + LogisticRegression baseline."""

    pipeline: Any
    manifest: Manifest
    flavor: str = TFIDF_FLAVOR

    @property
    def labels(self) -> LabelMap:
        """The model's classes (manifest metadata ``labels``; binary when absent)."""
        return manifest_labels(self.manifest)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (n, k), columns in class-id order."""
        return _check_width(np.asarray(self.pipeline.predict_proba(list(texts))), self.labels)


def save_tfidf(pipeline: Any, model_dir: Path, metadata: dict[str, Any]) -> Manifest:
    """Save a fitted sklearn pipeline with skops and write the manifest."""
    import skops.io as sio

    sio.dump(pipeline, model_dir / SKOPS_FILE)
    return write_manifest(model_dir, TFIDF_FLAVOR, metadata)


# Exactly the types a fitted ``train_baseline`` pipeline is made of (TF-IDF + LogisticRegression in a
# Pipeline, its ndarrays and dtypes, and the JSON-able containers around them). Anything else in a
# ``model.skops`` (a function such as ``builtins.exec``, another estimator, a custom class) is refused
# before skops constructs a single object. Never a module prefix: ``builtins.*`` includes ``exec``.
SKOPS_ALLOWED_TYPES = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.HashingVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "numpy.ndarray",
        "numpy.float64",
        "numpy.float32",
        "numpy.int64",
        "numpy.int32",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
    }
)
# The skops node kinds those types are stored as; FunctionNode, MethodNode, OperatorFuncNode, reduce
# nodes and the like never appear in our models.
SKOPS_ALLOWED_NODES = frozenset(
    {"ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode", "NdArrayNode"}
)
MAX_SKOPS_SCHEMA_BYTES = 64 << 20


def skops_schema_types(path: Path) -> tuple[set[str], set[str]]:
    """(every ``module.Class`` named in a skops file's schema, every node kind it uses)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SKOPS_SCHEMA_BYTES:
                raise ArtifactError(f"{path}: schema.json is larger than {MAX_SKOPS_SCHEMA_BYTES} bytes")
            schema = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not a skops file: {exc}") from exc
    types: set[str] = set()
    nodes: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__loader__" in node:
                nodes.add(str(node["__loader__"]))
            if "__class__" in node or "__module__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
            content = node.get("content")
            # A FunctionNode names its target in its content. Only a node that says it is one counts: a
            # vocabulary word "function" is a key of a dict node's content, not a function to call.
            if node.get("__loader__") == "FunctionNode" and isinstance(content, dict):
                types.add(f"{content.get('module_path')}.{content.get('function')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types, nodes


def check_skops_types(path: Path) -> list[str]:
    """Refuse a skops file holding any type or node kind outside the exact allow-lists.

    Returns the types skops itself does not trust by default (all of them on our allow-list), to pass
    as ``trusted=`` to ``skops.io.load``.
    """
    import skops.io as sio

    types, nodes = skops_schema_types(path)
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises several error types for malformed files
        raise ArtifactError(f"{path} is not a readable skops file: {exc}") from exc
    unexpected = sorted((types | untrusted) - SKOPS_ALLOWED_TYPES)
    if unexpected:
        raise ArtifactError(f"{path} contains types outside the allow-list: {', '.join(unexpected[:10])}")
    bad_nodes = sorted(nodes - SKOPS_ALLOWED_NODES)
    if bad_nodes:
        raise ArtifactError(
            f"{path} contains skops node kinds outside the allow-list: {', '.join(bad_nodes)}"
        )
    return sorted(untrusted)


def _load_tfidf(model_dir: Path, manifest: Manifest) -> TfidfModel:
    import skops.io as sio

    path = model_dir / SKOPS_FILE
    trusted = check_skops_types(path)
    return TfidfModel(pipeline=sio.load(path, trusted=trusted), manifest=manifest)


class TransformerModel:
    """A sequence-classification transformer; tokenises and runs in batches without gradients."""

    flavor = TRANSFORMER_FLAVOR

    def __init__(self, model_dir: Path, manifest: Manifest, device: str | None = None) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.max_length = int(manifest.metadata.get("max_length", 128))
        self.labels = manifest_labels(manifest)
        self._device_name = device
        self._device: Any = None
        self._tokenizer: Any = None
        self._model: Any = None

    # torch, transformers and the weights load on first use (seconds of start-up): a predictor serving the
    # ONNX graphs shipped in the verified directory never needs them.
    @property
    def device(self) -> Any:
        """The torch device (cuda when available unless one was requested)."""
        if self._device is None:
            import torch

            self._device = torch.device(self._device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
        return self._device

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer saved with the model."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        return self._tokenizer

    @property
    def model(self) -> Any:
        """The torch classifier, in eval mode on ``device``."""
        if self._model is None:
            from transformers import AutoModelForSequenceClassification

            loaded = AutoModelForSequenceClassification.from_pretrained(self.model_dir)
            self._model = loaded.to(self.device).eval()
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

    def tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        """Tokenise a batch (padded to its longest member, truncated to ``max_length``)."""
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )

    def predict_tokens(self, encoded: dict[str, Any]) -> np.ndarray:
        """Class probabilities (n, k) for an already tokenised batch: softmax over the k logits."""
        import torch

        with torch.inference_mode():
            batch = {k: v.to(self.device) for k, v in encoded.items()}
            logits = self.model(**batch).logits.float()
            return _check_width(torch.softmax(logits, dim=-1).cpu().numpy(), self.labels)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape (n, k), columns in class-id order."""
        if not texts:
            return np.zeros((0, self.labels.num_classes))
        parts = [
            self.predict_tokens(self.tokenize(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(parts)


@dataclass(frozen=True)
class EnsembleMember:
    """One model of an ensemble and the weight of its probabilities in the average."""

    model: TextClassifier
    weight: float


@dataclass
class EnsembleModel:
    """The weighted average of its members' class probabilities (weights chosen on validation by ``blend``)."""

    members: tuple[EnsembleMember, ...]
    manifest: Manifest
    flavor: str = ENSEMBLE_FLAVOR

    @property
    def labels(self) -> LabelMap:
        """The model's classes (every member declares the same ones)."""
        return manifest_labels(self.manifest)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (n, k): the members' weighted average."""
        return sum(
            (m.weight * m.model.predict_proba(texts) for m in self.members),
            start=np.zeros((len(texts), self.labels.num_classes)),
        )


def transformer_of(model: TextClassifier) -> TransformerModel | None:
    """The transformer a model runs: itself, an ensemble's transformer member, or None."""
    if isinstance(model, TransformerModel):
        return model
    if isinstance(model, EnsembleModel):
        return next((m.model for m in model.members if isinstance(m.model, TransformerModel)), None)
    return None


def write_ensemble(
    model_dir: Path, members: Sequence[tuple[Path, float]], metadata: dict[str, Any]
) -> Manifest:
    """Copy finished member model directories under ``model_dir/members/<flavour>`` and write the ensemble's
    manifest (which lists the members' files, so its digest covers them) with their weights."""
    entries = []
    for source, weight in members:
        member = read_manifest(source)
        path = PurePosixPath(ENSEMBLE_MEMBERS_DIR, member.flavor).as_posix()
        shutil.copytree(source, model_dir / path)
        entries.append({"path": path, "weight": float(weight), "digest": member.digest})
    return write_manifest(model_dir, ENSEMBLE_FLAVOR, metadata | {"members": entries})


def _member_entries(model_dir: Path, manifest: Manifest) -> list[tuple[Path, float, str]]:
    """(directory, weight, digest) of each member, refusing anything but a weighted average of listed members."""
    entries = manifest.metadata.get("members")
    if not isinstance(entries, list) or not entries:
        raise ArtifactError(f"{model_dir}: an ensemble's manifest metadata must list its members")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ArtifactError(f"{model_dir}: malformed ensemble member {entry!r}")
        path = PurePosixPath(entry["path"])
        if path.is_absolute() or ".." in path.parts or path.parts[:1] != (ENSEMBLE_MEMBERS_DIR,):
            raise ArtifactError(f"{model_dir}: ensemble member path {entry['path']!r} is not under members/")
        if f"{path.as_posix()}/{MANIFEST_NAME}" not in manifest.files:
            raise ArtifactError(
                f"{model_dir}: ensemble member {entry['path']!r} is not a listed model directory"
            )
        weight = entry.get("weight")
        if not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            raise ArtifactError(f"{model_dir}: ensemble member weight must be positive, got {weight!r}")
        if not isinstance(entry.get("digest"), str):
            raise ArtifactError(f"{model_dir}: ensemble member {entry['path']!r} has no recorded digest")
        out.append((model_dir / path, float(weight), entry["digest"]))
    if not math.isclose(sum(w for _, w, _ in out), 1.0, abs_tol=1e-6):
        raise ArtifactError(f"{model_dir}: ensemble member weights sum to {sum(w for _, w, _ in out)}, not 1")
    return out


def _load_ensemble(model_dir: Path, manifest: Manifest, device: str | None) -> EnsembleModel:
    # The ensemble's verified manifest already hashed every member file, its manifest included: a member's
    # own manifest only has to be the one the ensemble recorded (its digest), not hashed again.
    members = []
    labels = manifest_labels(manifest)
    for path, weight, digest in _member_entries(model_dir, manifest):
        member = read_manifest(path)
        if member.digest != digest:
            raise ArtifactError(
                f"{path}: member digest {member.digest[:12]}… is not the recorded {digest[:12]}…"
            )
        if member.flavor == ENSEMBLE_FLAVOR:
            raise ArtifactError(f"{path}: an ensemble member cannot be an ensemble")
        model = _load_flavor(path, member, device)
        if model.labels != labels:
            raise ArtifactError(
                f"{path}: the member's classes {list(model.labels.names)} differ from the ensemble's"
                f" {list(labels.names)}"
            )
        members.append(EnsembleMember(model, weight))
    return EnsembleModel(tuple(members), manifest)


def _load_flavor(model_dir: Path, manifest: Manifest, device: str | None) -> TextClassifier:
    """The loader for a verified manifest's flavour."""
    manifest_labels(manifest)  # malformed class names stop the load, not the first prediction
    if manifest.flavor == TFIDF_FLAVOR:
        return _load_tfidf(model_dir, manifest)
    if manifest.flavor == TRANSFORMER_FLAVOR:
        return TransformerModel(model_dir, manifest, device=device)
    if manifest.flavor == ENSEMBLE_FLAVOR:
        return _load_ensemble(model_dir, manifest, device)
    raise ArtifactError(f"unknown model flavour {manifest.flavor!r} in {model_dir}")


def load_model(
    model_dir: Path, expected_digest: str | None = None, device: str | None = None
) -> TextClassifier:
    """Verify a model directory's manifest, then load it with the loader for its flavour."""
    return _load_flavor(model_dir, verify_manifest(model_dir, expected_digest), device)
