"""Model loading controls (docs/security.md): the exact skops allow-list and the pinned-digest chain.

Each control has its attack as a test, and a mutation test: the same attack against a copy of the code
with the one line that implements the control disabled must succeed (so the test can fail).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from components.common import artifacts, models
from components.common.artifacts import ArtifactError, read_manifest, sha256_file, write_manifest
from components.common.models import TFIDF_FLAVOR, load_model
from tests.mutation import mutant

TEXTS = ["a warm and funny film", "dull, long and lifeless", "great acting", "awful plot"] * 5
LABELS = np.array([1, 0, 1, 0] * 5)


def _exec_model(tmp_path: Path) -> Path:
    """A TF-IDF model whose tokenizer is ``builtins.exec`` (every text it scores runs as Python), saved
    with skops and given a freshly computed manifest: what someone with bucket write access can build."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(TEXTS, LABELS)
    pipeline.set_params(tfidf__tokenizer=exec)
    model_dir = tmp_path / "evil"
    model_dir.mkdir()
    models.save_tfidf(pipeline, model_dir, {"note": "recomputed manifest"})
    return model_dir


def test_skops_file_holding_builtins_exec_is_refused(tmp_path: Path) -> None:
    model_dir = _exec_model(tmp_path)
    marker = tmp_path / "pwned"
    with pytest.raises(ArtifactError, match="builtins.exec"):
        load_model(model_dir, expected_digest=read_manifest(model_dir).digest)
    assert not marker.exists()


def test_mutation_module_prefix_allow_list_runs_the_payload(tmp_path: Path) -> None:
    """The old filter (any ``builtins.*`` name) loads the model, and scoring a text runs it as code."""
    model_dir = _exec_model(tmp_path)
    marker = tmp_path / "pwned"
    weak = mutant(
        models,
        "unexpected = sorted((types | untrusted) - SKOPS_ALLOWED_TYPES)",
        'unexpected = sorted(t for t in types | untrusted if not t.startswith(("sklearn.", "numpy.", "builtins.")))',
    )
    loaded = weak.load_model(model_dir)
    with pytest.raises(Exception):  # noqa: B017 (exec returns None, the vectorizer then fails)
        loaded.predict_proba([f"open({str(marker)!r}, 'w').write('x')"])
    assert marker.read_text() == "x"


@pytest.mark.parametrize("vectorizer", ["hashing", "vocabulary"])
def test_every_baseline_the_pipeline_trains_passes_the_allow_list(tmp_path: Path, vectorizer: str) -> None:
    """The allow-list is exact but complete: each configuration train-baseline can produce loads."""
    from components.train_baseline.train import BaselineSettings, build_pipeline

    settings = BaselineSettings(vectorizer=vectorizer, n_features=2**10, min_df=1, track=False)
    pipeline = build_pipeline(settings).fit(TEXTS, LABELS)
    model_dir = tmp_path / vectorizer
    model_dir.mkdir()
    manifest = models.save_tfidf(pipeline, model_dir, {})
    probs = load_model(model_dir, expected_digest=manifest.digest).predict_proba(TEXTS[:2])
    assert probs.shape == (2, 2)


def test_a_vocabulary_with_skops_key_words_still_loads(tmp_path: Path) -> None:
    """Words such as "function" and "module_path" are vocabulary keys, not function nodes: a baseline
    trained on text that contains them loads (the walk once read them as functions and refused it)."""
    from components.train_baseline.train import BaselineSettings, build_pipeline

    texts = [*TEXTS, "a function of the plot", "the module_path of the story"]
    labels = [*LABELS, 0, 1]
    settings = BaselineSettings(vectorizer="vocabulary", n_features=2**10, min_df=1, track=False)
    pipeline = build_pipeline(settings).fit(texts, labels)
    assert {"function", "module_path"} <= set(pipeline.named_steps["tfidf"].vocabulary_)
    model_dir = tmp_path / "words"
    model_dir.mkdir()
    manifest = models.save_tfidf(pipeline, model_dir, {})
    assert load_model(model_dir, expected_digest=manifest.digest).predict_proba(texts[:2]).shape == (2, 2)


def _tampered_with_rewritten_manifest(tmp_path: Path, baseline_model_dir: Path) -> tuple[Path, str]:
    """(a copy of the model whose weights changed and whose manifest was rewritten to match, the
    digest the registry recorded for the original)."""
    pinned = read_manifest(baseline_model_dir).digest
    copy = tmp_path / "model"
    shutil.copytree(baseline_model_dir, copy)
    original = models.load_model(baseline_model_dir)
    flipped = original.pipeline
    flipped.named_steps["clf"].coef_ = -flipped.named_steps["clf"].coef_
    import skops.io as sio

    sio.dump(flipped, copy / models.SKOPS_FILE)
    manifest = read_manifest(baseline_model_dir)
    write_manifest(copy, TFIDF_FLAVOR, manifest.metadata)
    return copy, pinned


def test_tampered_model_with_rewritten_manifest_is_refused(tmp_path: Path, baseline_model_dir: Path) -> None:
    copy, pinned = _tampered_with_rewritten_manifest(tmp_path, baseline_model_dir)
    artifacts.verify_manifest(copy)  # the artifact's own manifest is self-consistent ...
    with pytest.raises(ArtifactError, match="does not match the registered"):
        load_model(copy, expected_digest=pinned)  # ... and is not trusted on its own


def test_mutation_without_the_digest_check_the_tampered_model_loads(
    tmp_path: Path, baseline_model_dir: Path
) -> None:
    copy, pinned = _tampered_with_rewritten_manifest(tmp_path, baseline_model_dir)
    weak = mutant(
        artifacts,
        "if expected_digest is not None and manifest.digest != expected_digest:",
        "if False:",
    )
    assert weak.verify_manifest(copy, pinned).files  # accepted


def test_rewritten_metadata_or_flavour_changes_the_digest(tmp_path: Path, baseline_model_dir: Path) -> None:
    pinned = read_manifest(baseline_model_dir).digest
    copy = tmp_path / "model"
    shutil.copytree(baseline_model_dir, copy)
    data = json.loads((copy / "manifest.json").read_text())
    data["metadata"]["max_length"] = 100_000
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="does not match the registered"):
        load_model(copy, expected_digest=pinned)


def test_unlisted_file_is_refused(tmp_path: Path, baseline_model_dir: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(baseline_model_dir, copy)
    (copy / "extra.py").write_text("print('loaded by someone')\n")
    with pytest.raises(ArtifactError, match="does not list: extra.py"):
        load_model(copy, expected_digest=read_manifest(baseline_model_dir).digest)
    weak = mutant(artifacts, "unlisted = sorted(set(present) - set(manifest.files))", "unlisted = []")
    assert weak.verify_manifest(copy, read_manifest(baseline_model_dir).digest)  # the mutant accepts it


def test_symlink_in_model_dir_is_refused(tmp_path: Path, baseline_model_dir: Path) -> None:
    copy = tmp_path / "model"
    copy.mkdir()
    (copy / models.SKOPS_FILE).symlink_to(baseline_model_dir / models.SKOPS_FILE)
    shutil.copy(baseline_model_dir / "manifest.json", copy / "manifest.json")
    assert sha256_file(copy / models.SKOPS_FILE)  # the link resolves: only the walk refuses it
    with pytest.raises(ArtifactError, match="symlink"):
        load_model(copy)


@pytest.mark.parametrize("digest", ["", "sha256:abc", "A" * 64, "0" * 63])
def test_malformed_expected_digest_is_refused(baseline_model_dir: Path, digest: str) -> None:
    with pytest.raises(ArtifactError, match="64 lowercase hex"):
        load_model(baseline_model_dir, expected_digest=digest)
