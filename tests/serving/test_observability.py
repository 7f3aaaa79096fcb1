"""Metric names and values, payload-log contents, and the payload log's behaviour when the sink fails."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from tests.serving.conftest import MODEL, Server

CONTRACT = [
    "sentiment_requests_total",
    "sentiment_request_latency_seconds_bucket",
    "sentiment_batch_size_bucket",
    "sentiment_predictions_total",
    "sentiment_prediction_confidence_bucket",
    "sentiment_positive_probability_bucket",
    "sentiment_input_length_chars_bucket",
    "sentiment_model_info",
    "sentiment_payload_log_errors_total",
    "sentiment_payload_log_records_total",
]


def _sum(metrics: dict, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in metrics.items()
        if n == name and all(dict(ls).get(k) == x for k, x in labels.items())
    )


def test_metric_names_and_values(tfidf_server: Server, baseline_model_dir: Path) -> None:
    from components.common.models import load_model

    texts = ["an absolute delight", "dull, dull, dull", "fine"]
    before = tfidf_server.metrics()
    assert tfidf_server.v1(texts).status_code == 200
    assert tfidf_server.v2(texts[:2]).status_code == 200
    assert tfidf_server.v1([]).status_code == 400
    after = tfidf_server.metrics()
    names = {name for name, _ in after}
    assert not [n for n in CONTRACT if n not in names]

    def delta(name: str, **labels: str) -> float:
        return _sum(after, name, **labels) - _sum(before, name, **labels)

    assert delta("sentiment_requests_total", endpoint="v1_predict", status_code="200") == 1
    assert delta("sentiment_requests_total", endpoint="v2_infer", status_code="200") == 1
    assert delta("sentiment_requests_total", endpoint="v1_predict", status_code="400") == 1
    assert delta("sentiment_request_latency_seconds_count", endpoint="v1_predict") == 2
    assert ("sentiment_request_latency_seconds_bucket", (("endpoint", "v1_predict"), ("le", "0.3"))) in after
    assert delta("sentiment_predictions_total") == 5
    assert delta("sentiment_input_length_chars_sum") == sum(map(len, texts)) + sum(map(len, texts[:2]))
    assert delta("sentiment_prediction_confidence_count") == 5
    assert delta("sentiment_positive_probability_count") == 5
    assert delta("sentiment_batch_size_sum") == 5
    digest = load_model(baseline_model_dir).manifest.digest
    info = {dict(ls)["digest"]: v for (n, ls), v in after.items() if n == "sentiment_model_info"}
    assert info == {digest: 1.0}
    assert (
        _sum(after, "sentiment_model_info", model_name=MODEL, flavor="tfidf", model_version=digest[:12]) == 1
    )


def test_payload_log_records(tfidf_server: Server) -> None:
    marker = f"payload marker {time.time_ns()}"
    assert tfidf_server.v1([marker], headers={"x-request-id": "rid-42"}).status_code == 200
    assert tfidf_server.v2([marker + " v2"], request_id="rid-v2").status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = {r["text"]: r for r in tfidf_server.payload_records()}
        if marker in records and marker + " v2" in records:
            break
        time.sleep(0.1)
    record = records[marker]
    assert set(record) == {
        "ts", "request_id", "model_name", "model_version", "text", "label", "class_index", "probability",
        "probabilities",
    }  # fmt: skip
    assert record["request_id"] == "rid-42" and records[marker + " v2"]["request_id"] == "rid-v2"
    assert record["model_name"] == MODEL and 0 <= record["probability"] <= 1
    assert record["probabilities"] == pytest.approx(
        {"negative": 1 - record["probability"], "positive": record["probability"]}, abs=2e-6
    )
    assert record["label"] == ("positive" if record["probability"] >= 0.5 else "negative")
    assert record["class_index"] == ("negative", "positive").index(record["label"])
    assert record["ts"].endswith("Z")
    files = list(tfidf_server.payload_dir.rglob("*"))
    jsonl = [p for p in files if p.is_file()]
    assert all(p.suffix == ".jsonl" for p in jsonl), "no temp files left behind"
    rel = jsonl[0].relative_to(tfidf_server.payload_dir).parts
    assert rel[0] == MODEL and rel[1].startswith("dt=") and rel[2].startswith("hour=")
    metrics = tfidf_server.metrics()
    assert _sum(metrics, "sentiment_payload_log_records_total") == len(tfidf_server.payload_records())
    assert _sum(metrics, "sentiment_payload_log_errors_total") == 0


def _value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_unavailable_sink_counts_errors_and_never_raises(tmp_path: Path) -> None:
    from serving.payload_log import PayloadLogger

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the sink directory should be")
    logger = PayloadLogger(str(blocker / "sink"), MODEL, flush_interval_s=3600)
    errors = _value("sentiment_payload_log_errors_total")
    logger.log("r1", "v1", ["a", "b", "c"], [0.1, 0.6, 0.9])
    assert logger.flush() == 0
    assert _value("sentiment_payload_log_errors_total") - errors == 3


def test_sampling_and_bounded_buffer(tmp_path: Path) -> None:
    from serving.payload_log import PayloadLogger

    none = PayloadLogger(str(tmp_path / "none"), MODEL, sample_rate=0.0)
    none.log("r", "v", ["x"] * 100, [0.5] * 100)
    assert none.flush() == 0
    small = PayloadLogger(str(tmp_path / "small"), MODEL, max_buffer=10)
    errors = _value("sentiment_payload_log_errors_total")
    small.log("r", "v", ["x"] * 15, [0.7] * 15)
    assert _value("sentiment_payload_log_errors_total") - errors == 5
    assert small.flush() == 10
    lines = [line for p in (tmp_path / "small").rglob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(lines) == 10


@pytest.mark.parametrize("rate", [0.5])
def test_sampling_rate_is_roughly_honoured(tmp_path: Path, rate: float) -> None:
    from serving.payload_log import PayloadLogger

    logger = PayloadLogger(str(tmp_path), MODEL, sample_rate=rate)
    logger.log("r", "v", ["x"] * 2000, [0.2] * 2000)
    assert 800 < logger.flush() < 1200


FOUR = ("rt-negative", "rt-positive", "imdb-negative", "imdb-positive")


def test_class_metrics_are_labelled_by_name_with_bounded_cardinality() -> None:
    from components.common.labels import OTHER_LABEL, metric_label
    from serving.metrics import class_matrix, observe_predictions

    assert [metric_label(n, i, 2) for i, n in enumerate(FOUR)] == [
        "rt-negative",
        "rt-positive",
        "other",
        "other",
    ]
    names, proba = class_matrix([0.2, 0.5])  # today's binary engine output
    assert names == ("negative", "positive") and proba.tolist() == [[0.8, 0.2], [0.5, 0.5]]
    before = {n: _value_of("sentiment_predictions_total", n) for n in ("negative", "positive")}
    observe_predictions(["a", "b"], [0.2, 0.5])  # a tie at 0.5 is positive, as the served label
    assert {n: _value_of("sentiment_predictions_total", n) - before[n] for n in before} == {
        "negative": 1,
        "positive": 1,
    }
    many = tuple(f"topic-{i:02d}" for i in range(25))
    proba = np.eye(25)[[0, 3, 21, 24, 24]]
    other = _value_of("sentiment_predictions_total", OTHER_LABEL)
    observe_predictions(["x"] * 5, proba, many, max_classes=20)
    assert _value_of("sentiment_predictions_total", "topic-03") == 1
    assert _value_of("sentiment_predictions_total", OTHER_LABEL) - other == 3
    assert _value_of("sentiment_predictions_total", "topic-21") == 0  # never a series of its own
    assert _value_of("sentiment_class_confidence_count", "topic-00") == 1
    with pytest.raises(ValueError, match="do not match"):
        observe_predictions(["x"], np.ones((1, 3)) / 3, FOUR)


def _value_of(name: str, label: str) -> float:
    return REGISTRY.get_sample_value(name, {"label": label}) or 0.0


def test_payload_records_carry_every_class_name_and_probability(tmp_path: Path) -> None:
    import json

    from serving.payload_log import PayloadLogger

    logger = PayloadLogger(str(tmp_path), MODEL, flush_interval_s=3600)
    logger.log("r4", "v1", ["a", "b"], np.array([[0.1, 0.2, 0.6, 0.1], [0.7, 0.1, 0.1, 0.1]]), FOUR)
    logger.log("r2", "v1", ["c"], [0.9])
    assert logger.flush() == 3
    records = [
        json.loads(line) for p in sorted(tmp_path.rglob("*.jsonl")) for line in p.read_text().splitlines()
    ]
    by_text = {r["text"]: r for r in records}
    assert by_text["a"]["label"] == "imdb-negative" and by_text["a"]["class_index"] == 2
    assert by_text["a"]["probabilities"] == dict(zip(FOUR, [0.1, 0.2, 0.6, 0.1], strict=True))
    assert "probability" not in by_text["a"] and by_text["b"]["label"] == "rt-negative"
    assert by_text["c"]["label"] == "positive" and by_text["c"]["class_index"] == 1
    assert by_text["c"]["probability"] == 0.9 and by_text["c"]["probabilities"] == pytest.approx(
        {"negative": 0.1, "positive": 0.9}
    )
