"""Both protocols against the real predictor, for every model flavour, checked against the model itself."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from components.common.models import load_model
from tests.serving.conftest import MODEL, Server

TEXTS = [
    "a gripping, beautifully acted film",
    "tedious and far too long",
    "the plot is thin but the cast is charming",
]


BINARY_FIELDS = {
    "label",
    "label_name",
    "class_index",
    "probability",
    "probabilities",
    "model_name",
    "model_version",
}
V2_OUTPUTS = ["label", "label_name", "probability", "class_index", "probabilities", "class_names"]


def _matrix(model_dir: Path, texts: list[str]) -> np.ndarray:
    """The model's own (n, k) class probabilities, one text at a time (no padding)."""
    model = load_model(model_dir)
    return np.array([model.predict_proba([t])[0] for t in texts])


def _expected(model_dir: Path, texts: list[str]) -> np.ndarray:
    """P(positive) of a binary model."""
    return _matrix(model_dir, texts)[:, 1]


@pytest.fixture(params=["tfidf", "transformer", "ensemble"])
def served(request: pytest.FixtureRequest) -> tuple[Server, Path]:
    if request.param == "tfidf":
        return request.getfixturevalue("tfidf_server"), request.getfixturevalue("baseline_model_dir")
    if request.param == "ensemble":
        return request.getfixturevalue("ensemble_server"), request.getfixturevalue("ensemble_model_dir")
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
        assert set(p) == BINARY_FIELDS
        assert p["label"] == p["class_index"] == int(prob >= 0.5)  # binary: label stays the class id
        assert p["label_name"] == ("positive" if prob >= 0.5 else "negative")
        assert p["probabilities"] == pytest.approx({"negative": 1 - prob, "positive": prob}, abs=1e-5)
        assert list(p["probabilities"]) == ["negative", "positive"]
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
    assert [o["name"] for o in body["outputs"]] == V2_OUTPUTS
    assert outputs["label"]["data"] == outputs["class_index"]["data"] == [int(p >= 0.5) for p in expected]
    assert outputs["label"]["datatype"] == outputs["class_index"]["datatype"] == "INT64"
    assert outputs["label_name"]["datatype"] == "BYTES"
    assert outputs["label_name"]["data"] == ["positive" if p >= 0.5 else "negative" for p in expected]
    assert outputs["label"]["shape"] == [len(TEXTS)]
    assert outputs["probabilities"]["shape"] == [len(TEXTS), 2]
    assert outputs["probabilities"]["datatype"] == "FP64"
    assert outputs["probabilities"]["data"] == pytest.approx(
        _matrix(model_dir, TEXTS).ravel().tolist(), abs=1e-5
    )
    assert outputs["class_names"] == {
        "name": "class_names",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["negative", "positive"],
    }


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
    assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == [
        ("label", "INT64", [-1]),
        ("label_name", "BYTES", [-1]),
        ("probability", "FP64", [-1]),
        ("class_index", "INT64", [-1]),
        ("probabilities", "FP64", [-1, 2]),
        ("class_names", "BYTES", [2]),
    ]


FOUR_TEXTS = [
    "a gripping, beautifully acted film",
    "tedious and far too long, with a plot that goes nowhere and characters nobody could care about",
    "the plot is thin but the cast is charming",
    "an ambitious, sprawling, gorgeously shot epic that earns every minute of its running time",
]


@pytest.fixture(params=["tfidf", "transformer"])
def served4(
    request: pytest.FixtureRequest,
    four_class_servers: dict[str, Server],
    four_class_model_dirs: dict[str, Path],
) -> tuple[Server, Path, tuple[str, ...]]:
    """A real four-class predictor, its model directory and its class names (from the model's label map)."""
    model_dir = four_class_model_dirs[request.param]
    names = load_model(model_dir).labels.names
    assert len(names) == 4
    return four_class_servers[request.param], model_dir, names


def test_four_class_v1_names_every_class(served4: tuple[Server, Path, tuple[str, ...]]) -> None:
    server, model_dir, classes = served4
    response = server.v1(FOUR_TEXTS)
    assert response.status_code == 200, response.text
    expected = _matrix(model_dir, FOUR_TEXTS)
    assert expected.shape == (len(FOUR_TEXTS), 4)
    predictions = response.json()["predictions"]
    for p, row in zip(predictions, expected, strict=True):
        assert set(p) == BINARY_FIELDS
        index = int(row.argmax())
        assert p["class_index"] == index
        assert p["label"] == p["label_name"] == classes[index]  # N classes: label is the name
        assert p["probability"] == pytest.approx(row[index], abs=1e-5)  # the predicted class's probability
        assert list(p["probabilities"]) == list(classes)
        assert list(p["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-5)
        assert sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_four_class_v2_is_self_describing(served4: tuple[Server, Path, tuple[str, ...]]) -> None:
    server, model_dir, classes = served4
    response = server.v2(FOUR_TEXTS, request_id="four")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [o["name"] for o in body["outputs"]] == V2_OUTPUTS
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = _matrix(model_dir, FOUR_TEXTS)
    n = len(FOUR_TEXTS)
    names = [classes[i] for i in expected.argmax(axis=1)]
    assert outputs["label"] == {"name": "label", "shape": [n], "datatype": "BYTES", "data": names}
    assert outputs["label_name"]["data"] == names
    assert outputs["class_index"]["datatype"] == "INT64"
    assert outputs["class_index"]["data"] == expected.argmax(axis=1).tolist()
    assert outputs["probability"]["data"] == pytest.approx(expected.max(axis=1).tolist(), abs=1e-5)
    assert outputs["probabilities"]["shape"] == [n, 4]
    assert outputs["probabilities"]["data"] == pytest.approx(expected.ravel().tolist(), abs=1e-5)
    assert outputs["class_names"]["shape"] == [4] and outputs["class_names"]["data"] == list(classes)
    meta = httpx.get(f"{server.url}/v2/models/{MODEL}", timeout=5).json()
    types = {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]}
    assert types["label"] == ("BYTES", [-1])
    assert types["probabilities"] == ("FP64", [-1, 4]) and types["class_names"] == ("BYTES", [4])


def test_four_class_metrics_and_payload_log_use_the_names(
    served4: tuple[Server, Path, tuple[str, ...]],
) -> None:
    server, model_dir, classes = served4
    before = server.metrics()
    for name in classes:  # every class has its series from load on, before any prediction of it
        assert ("sentiment_predictions_total", (("label", name),)) in before
    response = server.v1(FOUR_TEXTS, headers={"x-request-id": "four-payload"})
    assert response.status_code == 200, response.text
    after = server.metrics()
    counted = {
        name: after[("sentiment_predictions_total", (("label", name),))]
        - before[("sentiment_predictions_total", (("label", name),))]
        for name in classes
    }
    served = [p["label"] for p in response.json()["predictions"]]
    assert counted == {name: served.count(name) for name in classes}
    positive = ("sentiment_positive_probability_count", ())
    assert after.get(positive, 0) == before.get(positive, 0)  # a binary-only histogram
    deadline = time.monotonic() + 10
    while not (records := [r for r in server.payload_records() if r["request_id"] == "four-payload"]):
        assert time.monotonic() < deadline, "the four-class request never reached the payload log"
        time.sleep(0.2)
    assert [r["label"] for r in records] == served
    assert all(list(r["probabilities"]) == list(classes) and "probability" not in r for r in records)


def test_an_ensemble_reports_its_flavour_and_each_members_precision(
    ensemble_server: Server, ensemble_model_dir: Path
) -> None:
    info = [
        dict(labels)
        for (name, labels), value in ensemble_server.metrics().items()
        if name == "sentiment_model_info"
    ]
    digest = load_model(ensemble_model_dir).manifest.digest
    assert [(i["flavor"], i["precision"], i["digest"]) for i in info] == [("ensemble", "fp32+fp64", digest)]
