"""Both protocols against the real predictor, for both model flavours, checked against the model itself."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from components.common.models import load_model
from tests.serving.conftest import MODEL, Server

TEXTS = [
    "a gripping, beautifully acted film",
    "tedious and far too long",
    "the plot is thin but the cast is charming",
]


def _expected(model_dir: Path, texts: list[str]) -> np.ndarray:
    model = load_model(model_dir)
    return np.array([model.predict_proba([t])[0] for t in texts])


@pytest.fixture(params=["tfidf", "transformer"])
def served(request: pytest.FixtureRequest) -> tuple[Server, Path]:
    if request.param == "tfidf":
        return request.getfixturevalue("tfidf_server"), request.getfixturevalue("baseline_model_dir")
    return request.getfixturevalue("transformer_server"), request.getfixturevalue(
        "tiny_transformer_model_dir"
    )


def test_v1_predict_matches_the_model(served: tuple[Server, Path]) -> None:
    server, model_dir = served
    response = server.v1([TEXTS[0], {"text": TEXTS[1]}, TEXTS[2]])
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    digest = load_model(model_dir).manifest.digest
    expected = _expected(model_dir, TEXTS)
    assert [p["probability"] for p in predictions] == pytest.approx(expected.tolist(), abs=1e-5)
    for p, prob in zip(predictions, expected, strict=True):
        assert p["label"] == int(prob >= 0.5)
        assert p["label_name"] == ("positive" if prob >= 0.5 else "negative")
        assert p["model_name"] == MODEL
        assert p["model_version"] == digest[:12]


def test_v2_infer_matches_the_model(served: tuple[Server, Path]) -> None:
    server, model_dir = served
    response = server.v2(TEXTS, request_id="abc-123")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "abc-123"
    assert body["model_name"] == MODEL
    assert body["model_version"] == load_model(model_dir).manifest.digest[:12]
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = _expected(model_dir, TEXTS)
    assert outputs["probability"]["data"] == pytest.approx(expected.tolist(), abs=1e-5)
    assert outputs["label"]["data"] == [int(p >= 0.5) for p in expected]
    assert outputs["label_name"]["datatype"] == "BYTES"
    assert outputs["label"]["shape"] == [len(TEXTS)]


def test_concurrent_requests_are_batched_without_mixing_answers(
    transformer_server: Server, tiny_transformer_model_dir: Path, rt_frame
) -> None:
    texts = rt_frame["text"].iloc[:48].tolist()
    expected = _expected(tiny_transformer_model_dir, texts)
    before = transformer_server.metrics()
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda t: transformer_server.v1([t]), texts))
    got = [r.json()["predictions"][0]["probability"] for r in responses]
    assert got == pytest.approx(expected.tolist(), abs=1e-5)  # each caller gets its own answer
    after = transformer_server.metrics()
    calls = after[("sentiment_batch_size_count", ())] - before[("sentiment_batch_size_count", ())]
    batched = after[("sentiment_batch_size_sum", ())] - before[("sentiment_batch_size_sum", ())]
    assert batched == len(texts)
    assert calls < len(texts), "concurrent requests should share model calls"


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_direct_path_answers_as_kserve_handlers_do(
    tfidf_server: Server, tfidf_server_via_kserve: Server
) -> None:
    servers = (tfidf_server, tfidf_server_via_kserve)
    v1 = [server.v1(TEXTS, headers={"x-request-id": "same-v1-id"}) for server in servers]
    v2 = [server.v2(TEXTS, request_id="same-v2-id") for server in servers]
    for direct, via_kserve in (v1, v2):
        assert direct.status_code == via_kserve.status_code == 200
        assert direct.headers["content-type"] == via_kserve.headers["content-type"] == "application/json"
        assert _without_nulls(direct.json()) == _without_nulls(via_kserve.json())
    for server in servers:  # both paths key the payload log by the caller's request id
        deadline = time.monotonic() + 10
        while {"same-v1-id", "same-v2-id"} - {r["request_id"] for r in server.payload_records()}:
            assert time.monotonic() < deadline, "request ids never reached the payload log"
            time.sleep(0.2)


def test_model_metadata_and_health(tfidf_server: Server) -> None:
    import httpx

    assert httpx.get(tfidf_server.url + "/v2/health/live", timeout=5).json() == {"live": True}
    assert httpx.get(tfidf_server.url + "/v2/health/ready", timeout=5).json()["ready"] is True
    meta = httpx.get(f"{tfidf_server.url}/v2/models/{MODEL}", timeout=5).json()
    assert meta["inputs"][0]["datatype"] == "BYTES"
    assert {o["name"] for o in meta["outputs"]} == {"label", "label_name", "probability"}
