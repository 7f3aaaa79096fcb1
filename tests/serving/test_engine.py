"""Inference engines without HTTP: the sub-batch split, torch vs ONNX Runtime answers, the ONNX
build cache and its check against torch."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from components.common.artifacts import ArtifactError
from components.common.models import TransformerModel, load_model
from serving.config import ServingSettings
from serving.engine import OnnxEngine, TorchEngine, build_engine, split_batch
from serving.onnx_export import ONNX_FILE, build_onnx
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


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


def _texts(rt_frame) -> list[str]:
    texts = rt_frame["text"].iloc[:40].tolist() + list(PROBE_TEXTS)
    random.Random(1).shuffle(texts)
    return texts


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
@pytest.mark.parametrize("call_cost", [0, 48, 10**9])
def test_engines_answer_each_text_in_request_order(
    runtime: str, call_cost: int, tiny_transformer_model_dir: Path, onnx_cache: Path, rt_frame
) -> None:
    texts = _texts(rt_frame)
    settings = ServingSettings(runtime=runtime, onnx_cache_dir=str(onnx_cache), call_cost_tokens=call_cost)
    engine = build_engine(load_model(tiny_transformer_model_dir), settings)
    assert isinstance(engine, OnnxEngine if runtime == "onnx" else TorchEngine)
    reference = load_model(tiny_transformer_model_dir)
    expected = np.array([reference.predict_proba([t])[0] for t in texts])  # one at a time: no padding
    got = engine.infer(engine.prepare(texts))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_runtime_auto_is_onnx_on_cpu(tiny_transformer_model_dir: Path, onnx_cache: Path) -> None:
    engine = build_engine(
        load_model(tiny_transformer_model_dir), ServingSettings(onnx_cache_dir=str(onnx_cache))
    )
    assert isinstance(engine, OnnxEngine) and engine.precision == "fp32"


def test_onnx_build_is_reused_only_while_its_file_is_intact(
    tiny_transformer_model_dir: Path, tmp_path: Path
) -> None:
    model = load_model(tiny_transformer_model_dir)
    assert isinstance(model, TransformerModel)
    first = build_onnx(model, tmp_path, "none", PROBE_TEXTS, 1e-4)
    assert not first.reused and first.mean_prob_diff < 1e-5 and first.label_agreement == 1.0
    again = build_onnx(model, tmp_path, "none", PROBE_TEXTS, 1e-4)
    assert again.reused and again.path == first.path
    assert {p.name for p in first.path.parent.iterdir()} == {"build.json", ONNX_FILE}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging directory left behind"

    with first.path.open("ab") as handle:  # a tampered or torn cache file is rebuilt, not loaded
        handle.write(b"\0")
    rebuilt = build_onnx(model, tmp_path, "none", PROBE_TEXTS, 1e-4)
    assert not rebuilt.reused and rebuilt.mean_prob_diff < 1e-5


def test_onnx_cache_others_can_write_is_refused(tiny_transformer_model_dir: Path, tmp_path: Path) -> None:
    model = load_model(tiny_transformer_model_dir)
    assert isinstance(model, TransformerModel)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(ArtifactError, match="group/world-writable"):
        build_onnx(model, shared, "none", PROBE_TEXTS, 1e-4)
    assert list(shared.iterdir()) == []


def test_int8_onnx_is_checked_against_torch(tiny_transformer_model_dir: Path, tmp_path: Path) -> None:
    model = load_model(tiny_transformer_model_dir)
    assert isinstance(model, TransformerModel)
    build = build_onnx(model, tmp_path, "dynamic_int8", PROBE_TEXTS, 1.0)
    assert build.precision == "int8-dynamic"
    fp32_size = build_onnx(model, tmp_path, "none", PROBE_TEXTS, 1e-4).path.stat().st_size
    assert build.path.stat().st_size < fp32_size  # the MatMul weights really are int8
    assert 0 < build.mean_prob_diff < 0.05
    with pytest.raises(ArtifactError, match="refusing to serve it"):
        build_onnx(model, tmp_path, "dynamic_int8", PROBE_TEXTS, build.mean_prob_diff / 2)


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
