"""Inference engines without HTTP: the sub-batch split, torch vs ONNX Runtime answers, the shipped ONNX
graphs (in the manifest, checked against torch's recorded answers at load) and when int8 is served."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.common.artifacts import ArtifactError, read_manifest, sha256_file, write_manifest
from components.common.models import TRANSFORMER_FLAVOR, load_model
from serving.config import ServingSettings
from serving.engine import OnnxEngine, TorchEngine, build_engine, recorded_int8_loss, split_batch
from serving.onnx_export import GRAPHS
from serving.probe import PROBE_TEXTS


def _padded_cost(lengths: list[int], ends: list[int], call_cost: int) -> int:
    cost, start = 0, 0
    for end in ends:
        cost += call_cost + (end - start) * lengths[end - 1]
        start = end
    return cost


@pytest.mark.parametrize("call_cost", [0, 5, 48, 10**9])
def test_split_batch_finds_the_cheapest_cut(call_cost: int) -> None:
    rng = random.Random(call_cost)
    for _ in range(40):
        lengths = sorted(rng.randint(1, 64) for _ in range(rng.randint(1, 8)))
        ends = split_batch(lengths, call_cost)
        assert ends[-1] == len(lengths) and ends == sorted(set(ends))
        n = len(lengths)
        brute = min(
            _padded_cost(lengths, [*cuts, n], call_cost)
            for k in range(n)
            for cuts in itertools.combinations(range(1, n), k)
        )
        assert _padded_cost(lengths, ends, call_cost) == brute
    assert split_batch([3, 4, 60, 64], 10**9) == [4]  # a call costs more than any padding: one batch
    assert split_batch([3, 3, 64, 64], 1) == [2, 4]  # two length groups, padded separately


def _texts(rt_frame) -> list[str]:
    texts = rt_frame["text"].iloc[:40].tolist() + list(PROBE_TEXTS)
    random.Random(1).shuffle(texts)
    return texts


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
@pytest.mark.parametrize("call_cost", [0, 48, 10**9])
def test_engines_answer_each_text_in_request_order(
    runtime: str, call_cost: int, tiny_transformer_model_dir: Path, rt_frame
) -> None:
    texts = _texts(rt_frame)
    settings = ServingSettings(runtime=runtime, call_cost_tokens=call_cost)
    engine = build_engine(load_model(tiny_transformer_model_dir), settings)
    assert isinstance(engine, OnnxEngine if runtime == "onnx" else TorchEngine)
    reference = load_model(tiny_transformer_model_dir)
    expected = np.array([reference.predict_proba([t])[0] for t in texts])  # one at a time: no padding
    got = engine.infer(engine.prepare(texts))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_serving_onnx_needs_neither_torch_nor_transformers(tiny_transformer_model_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from components.common.models import load_model\n"
        "from serving.config import ServingSettings\n"
        "from serving.engine import build_engine\n"
        f"e = build_engine(load_model(Path({str(tiny_transformer_model_dir)!r})), ServingSettings(device='cpu'))\n"
        "print(e.precision, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["fp32", "False", "False"]


@pytest.mark.parametrize(
    ("quantize", "recorded_loss", "precision"),
    [
        ("auto", None, "fp32"),  # nothing recorded: never int8 by default
        ("auto", 0.3, "int8-dynamic"),
        ("auto", 0.5, "int8-dynamic"),
        ("auto", 0.51, "fp32"),
        ("none", 0.0, "fp32"),
        ("dynamic_int8", 2.0, "int8-dynamic"),  # asked for explicitly
    ],
)
def test_int8_by_default_only_when_its_recorded_loss_is_small(
    tiny_transformer_model_dir: Path, quantize: str, recorded_loss: float | None, precision: str
) -> None:
    settings = ServingSettings(quantize=quantize, int8_accuracy_loss=recorded_loss)
    engine = build_engine(load_model(tiny_transformer_model_dir), settings, recorded_int8_loss(settings, {}))
    assert isinstance(engine, OnnxEngine) and engine.precision == precision


def test_recorded_loss_comes_from_the_setting_else_the_registry_tag() -> None:
    tag = {"int8_accuracy_loss_validation": "0.200"}
    assert recorded_int8_loss(ServingSettings(), tag) == pytest.approx(0.2)
    assert recorded_int8_loss(ServingSettings(int8_accuracy_loss=0.9), tag) == pytest.approx(0.9)
    assert recorded_int8_loss(ServingSettings(), {}) is None
    assert recorded_int8_loss(ServingSettings(), {"int8_accuracy_loss_validation": "n/a"}) is None


def test_the_model_directory_ships_both_graphs_under_its_manifest(tiny_transformer_model_dir: Path) -> None:
    manifest = read_manifest(tiny_transformer_model_dir)
    for graph in GRAPHS.values():
        assert manifest.files[graph] == sha256_file(tiny_transformer_model_dir / graph)
    record = manifest.metadata["onnx"]
    assert len(record["probe_reference"]) == len(PROBE_TEXTS)
    assert record["checks"]["fp32"]["max_abs_diff"] < 1e-5
    sizes = {v: (tiny_transformer_model_dir / g).stat().st_size for v, g in GRAPHS.items()}
    assert sizes["int8"] < sizes["fp32"]  # the MatMul weights really are int8


def _copy_model(src: Path, dst: Path, **metadata_changes: object) -> Path:
    shutil.copytree(src, dst)
    if metadata_changes:
        manifest = read_manifest(dst)
        write_manifest(dst, manifest.flavor, manifest.metadata | metadata_changes)
    return dst


def test_a_tampered_graph_is_refused_at_load(tiny_transformer_model_dir: Path, tmp_path: Path) -> None:
    pinned = read_manifest(tiny_transformer_model_dir).digest
    model_dir = _copy_model(tiny_transformer_model_dir, tmp_path / "model")
    with (model_dir / GRAPHS["int8"]).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_model(model_dir, expected_digest=pinned)
    manifest = read_manifest(model_dir)  # whoever swapped the graph also rewrites the manifest
    write_manifest(model_dir, manifest.flavor, manifest.metadata)
    with pytest.raises(ArtifactError, match="does not match the registered"):
        load_model(model_dir, expected_digest=pinned)


def test_a_graph_that_disagrees_with_torch_is_refused(
    tiny_transformer_model_dir: Path, tmp_path: Path
) -> None:
    record = read_manifest(tiny_transformer_model_dir).metadata["onnx"]
    reference = np.asarray(record["probe_reference"])
    assert reference.shape == (len(PROBE_TEXTS), 2)  # (n, k): torch's softmax over the classes
    shifted = np.where(reference[:, 1] < 0.5, reference[:, 1] + 0.2, reference[:, 1] - 0.2)
    wrong = np.column_stack([1 - shifted, shifted]).tolist()
    model_dir = _copy_model(
        tiny_transformer_model_dir, tmp_path / "model", onnx=record | {"probe_reference": wrong}
    )
    for quantize in ("none", "dynamic_int8"):
        with pytest.raises(ArtifactError, match="refusing to serve it"):
            build_engine(load_model(model_dir), ServingSettings(runtime="onnx", quantize=quantize))


def test_a_binary_model_recorded_before_n_classes_still_loads(
    tiny_transformer_model_dir: Path, tmp_path: Path
) -> None:
    """Binary models exported before N-class support recorded P(positive) per probe text, not a matrix."""
    record = read_manifest(tiny_transformer_model_dir).metadata["onnx"]
    positive = [row[1] for row in record["probe_reference"]]
    model_dir = _copy_model(
        tiny_transformer_model_dir, tmp_path / "model", onnx=record | {"probe_reference": positive}
    )
    engine = build_engine(load_model(model_dir), ServingSettings(runtime="onnx", quantize="none"))
    assert engine.names == ("negative", "positive")
    got = engine.infer(engine.prepare(PROBE_TEXTS))
    np.testing.assert_allclose(got[:, 1], positive, atol=1e-4)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_four_class_engines_answer_the_model_matrix(
    runtime: str, four_class_model_dirs: dict[str, Path], rt_frame
) -> None:
    model_dir = four_class_model_dirs["transformer"]
    reference = load_model(model_dir)
    texts = _texts(rt_frame)
    engine = build_engine(load_model(model_dir), ServingSettings(runtime=runtime, quantize="none"))
    assert engine.names == reference.labels.names and len(engine.names) == 4
    expected = np.array([reference.predict_proba([t])[0] for t in texts])
    got = engine.infer(engine.prepare(texts))
    assert got.shape == (len(texts), 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    tfidf = build_engine(load_model(four_class_model_dirs["tfidf"]), ServingSettings())
    assert tfidf.infer(tfidf.prepare(texts)).shape == (len(texts), 4) and len(tfidf.names) == 4


def test_a_graph_with_another_number_of_classes_is_refused(
    four_class_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """A four-logit graph in a model whose label map says binary (labels lost from the manifest)."""
    src = four_class_model_dirs["transformer"]
    metadata = {k: v for k, v in read_manifest(src).metadata.items() if k != "labels"}
    model_dir = _copy_model(src, tmp_path / "model")
    write_manifest(model_dir, TRANSFORMER_FLAVOR, metadata)
    with pytest.raises(ArtifactError, match="outputs 4 logits but the model declares 2 classes"):
        build_engine(load_model(model_dir), ServingSettings(runtime="onnx"))


def test_a_model_without_graphs_is_served_by_torch_not_exported(
    tiny_checkpoint_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_checkpoint_dir, model_dir)
    write_manifest(model_dir, TRANSFORMER_FLAVOR, {"max_length": 64})
    assert isinstance(build_engine(load_model(model_dir), ServingSettings()), TorchEngine)
    with pytest.raises(ArtifactError, match="ships no verified ONNX fp32 graph"):
        build_engine(load_model(model_dir), ServingSettings(runtime="onnx"))
    assert not (model_dir / "onnx").exists()


@pytest.mark.gpu
def test_fp16_torch_engine_on_gpu(tiny_transformer_model_dir: Path, rt_frame) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    texts = _texts(rt_frame)
    engine = build_engine(load_model(tiny_transformer_model_dir, device="cuda"), ServingSettings())
    assert isinstance(engine, TorchEngine) and engine.precision == "fp16"
    expected = load_model(tiny_transformer_model_dir, device="cpu").predict_proba(texts)
    np.testing.assert_allclose(engine.infer(engine.prepare(texts)), expected, atol=2e-3)


@pytest.mark.parametrize(
    ("quantize", "precision"), [("none", "fp32+fp64"), ("dynamic_int8", "int8-dynamic+fp64")]
)
def test_an_ensemble_engine_averages_its_members_engines(
    ensemble_model_dir: Path, rt_frame, quantize: str, precision: str
) -> None:
    texts = _texts(rt_frame)
    model = load_model(ensemble_model_dir)
    engine = build_engine(model, ServingSettings(quantize=quantize))
    assert engine.flavor == "ensemble" and engine.precision == precision and engine.releases_gil
    members = [build_engine(m.model, ServingSettings(quantize=quantize)) for m in model.members]
    expected = 0.6 * members[0].infer(members[0].prepare(texts)) + 0.4 * members[1].infer(
        members[1].prepare(texts)
    )
    np.testing.assert_allclose(engine.infer(engine.prepare(texts)), expected, atol=1e-9)
    if quantize == "none":  # the fp32 graph answers as the ensemble's own (torch) probabilities do
        np.testing.assert_allclose(engine.infer(engine.prepare(texts)), model.predict_proba(texts), atol=1e-5)
