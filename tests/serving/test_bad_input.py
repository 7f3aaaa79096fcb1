"""The input contract: every malformed request gets a 4xx with a JSON ``error`` body, never a 500,
and the server keeps answering afterwards."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.serving.conftest import MODEL, Server

V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"
JSON = {"content-type": "application/json"}


def v2_body(data: object, shape: object = (1,), **overrides: object) -> dict:
    shape = list(shape) if isinstance(shape, tuple) else shape
    body = {"id": "x", "inputs": [{"name": "text", "datatype": "BYTES", "shape": shape, "data": data}]}
    body.update(overrides)
    return body


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# (case id, path, raw body, headers, expected status)
CASES = [
    ("v1-no-content-type", V1, b'{"instances": ["fine"]}', {}, 415),
    ("v1-text-plain", V1, b'{"instances": ["fine"]}', {"content-type": "text/plain"}, 415),
    ("v2-no-content-type", V2, json.dumps(v2_body(["fine"])).encode(), {}, 415),
    ("v1-malformed-json", V1, b'{"instances": ["unterminated}', JSON, 400),
    ("v2-malformed-json", V2, b'{"id": "x", "inputs": [', JSON, 400),
    ("v1-empty-body", V1, b"", JSON, 400),
    ("v1-non-utf8", V1, b'{"instances": ["caf\xe9 \xff"]}', JSON, 400),
    (
        "v2-non-utf8",
        V2,
        b'{"id": "x", "inputs": [{"datatype": "BYTES", "shape": [1], "data": ["\xc3\x28"]}]}',
        JSON,
        400,
    ),
    ("v1-null-body", V1, b"null", JSON, 400),
    ("v1-list-body", V1, b'["a", "b"]', JSON, 400),
    ("v1-instances-null", V1, b'{"instances": null}', JSON, 400),
    ("v1-instances-string", V1, b'{"instances": "not a list"}', JSON, 400),
    ("v1-instance-null", V1, b'{"instances": [null]}', JSON, 400),
    ("v1-instance-number", V1, b'{"instances": [42]}', JSON, 400),
    ("v1-instance-bool", V1, b'{"instances": [true]}', JSON, 400),
    ("v1-nested-junk", V1, b'{"instances": [{"text": {"a": [1, {"b": null}]}}]}', JSON, 400),
    ("v1-extra-keys", V1, b'{"instances": [{"text": "ok", "evil": 1}]}', JSON, 400),
    ("v1-nested-list", V1, b'{"instances": [["a", ["b"]]]}', JSON, 400),
    ("v1-no-instances", V1, b'{"inputs": ["a"]}', JSON, 400),
    ("v1-empty-instances", V1, b'{"instances": []}', JSON, 400),
    ("v1-empty-string", V1, b'{"instances": [""]}', JSON, 400),
    ("v1-whitespace", V1, b'{"instances": ["  \\n\\t "]}', JSON, 400),
    ("v1-too-long", V1, json.dumps({"instances": ["x" * 2001]}).encode(), JSON, 400),
    ("v1-too-many", V1, json.dumps({"instances": ["ok"] * 65}).encode(), JSON, 400),
    ("v1-deep-nesting", V1, nested(100_000).encode(), JSON, 400),
    ("v1-nan", V1, b'{"instances": [NaN]}', JSON, 400),
    ("v2-missing-id", V2, json.dumps({"inputs": v2_body(["ok"])["inputs"]}).encode(), JSON, 400),
    ("v2-numeric-id", V2, json.dumps(v2_body(["ok"], id=7)).encode(), JSON, 400),
    ("v2-no-inputs", V2, b'{"id": "x"}', JSON, 400),
    ("v2-inputs-null", V2, b'{"id": "x", "inputs": null}', JSON, 400),
    (
        "v2-two-inputs",
        V2,
        json.dumps(v2_body(["ok"], inputs=v2_body(["a"])["inputs"] * 2)).encode(),
        JSON,
        400,
    ),
    (
        "v2-fp32",
        V2,
        json.dumps(
            {"id": "x", "inputs": [{"name": "t", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
        ).encode(),
        JSON,
        400,
    ),
    ("v2-number-data", V2, json.dumps(v2_body([3])).encode(), JSON, 400),
    ("v2-null-data", V2, json.dumps(v2_body([None])).encode(), JSON, 400),
    ("v2-nested-junk", V2, json.dumps(v2_body([[{"a": ["b"]}]], shape=[1, 1])).encode(), JSON, 400),
    ("v2-shape-mismatch", V2, json.dumps(v2_body(["a", "b"], shape=[3])).encode(), JSON, 400),
    ("v2-shape-junk", V2, json.dumps(v2_body(["a"], shape="one")).encode(), JSON, 400),
    ("v2-empty-text", V2, json.dumps(v2_body([""])).encode(), JSON, 400),
    ("v1-body-too-large", V1, json.dumps({"instances": ["y" * 1500] * 800}).encode(), JSON, 413),
    ("unknown-model", "/v1/models/nope:predict", b'{"instances": ["fine"]}', JSON, 404),
    # issue 12: bounded ids and headers, exact V2 shapes (nesting included)
    ("v2-huge-id", V2, json.dumps(v2_body(["ok"], id="i" * 900_000)).encode(), JSON, 400),
    ("v2-long-id", V2, json.dumps(v2_body(["ok"], id="i" * 257)).encode(), JSON, 400),
    ("v2-control-char-id", V2, json.dumps(v2_body(["ok"], id="a\nb")).encode(), JSON, 400),
    ("v1-long-request-id", V1, b'{"instances": ["ok"]}', {**JSON, "x-request-id": "r" * 300}, 400),
    ("header-flood", V1, b'{"instances": ["ok"]}', {**JSON, **{f"x-h{i}": "v" for i in range(80)}}, 431),
    ("header-too-big", V1, b'{"instances": ["ok"]}', {**JSON, "x-big": "b" * 9000}, 431),
    ("v2-nesting-not-shape", V2, json.dumps(v2_body([["a", "b"]], shape=[2, 1])).encode(), JSON, 400),
    ("v2-nested-for-flat", V2, json.dumps(v2_body([["a"]], shape=[1])).encode(), JSON, 400),
    ("v2-mixed-nesting", V2, json.dumps(v2_body([["a"], "b"], shape=[2, 1])).encode(), JSON, 400),
    ("v2-deep-nesting", V2, json.dumps(v2_body([[["a"]]], shape=[1, 1])).encode(), JSON, 400),
    ("v2-shape-2d-wide", V2, json.dumps(v2_body(["a", "b"], shape=[1, 2])).encode(), JSON, 400),
    ("v2-shape-3d", V2, json.dumps(v2_body(["a"], shape=[1, 1, 1])).encode(), JSON, 400),
    ("v2-shape-negative", V2, json.dumps(v2_body(["a"], shape=[-1])).encode(), JSON, 400),
    ("v2-shape-huge", V2, json.dumps(v2_body(["a"], shape=[2**62])).encode(), JSON, 400),
    ("v2-shape-bool", V2, json.dumps(v2_body(["a"], shape=[True])).encode(), JSON, 400),
    ("v2-shape-float", V2, json.dumps(v2_body(["a"], shape=[1.0])).encode(), JSON, 400),
    ("v2-too-many", V2, json.dumps(v2_body(["a"] * 65, shape=[65])).encode(), JSON, 400),
    ("v1-huge-int", V1, b'{"instances": [' + b"9" * 5000 + b"]}", JSON, 400),
    ("repository-unload", "/v2/repository/models/sentiment/unload", b"{}", JSON, 405),
    ("explain", f"/v1/models/{MODEL}:explain", b'{"instances": ["ok"]}', JSON, 405),
]


ROUTES = {
    "direct": "tfidf_server",
    "via_kserve": "tfidf_server_via_kserve",
    "int8": "transformer_int8_server",
    "ensemble": "ensemble_server",
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(
    ("path", "body", "headers", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_4xx_json_error(
    request: pytest.FixtureRequest, route: str, path: str, body: bytes, headers: dict, status: int
) -> None:
    server: Server = request.getfixturevalue(ROUTES[route])
    response = httpx.post(server.url + path, content=body, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json().get("error")


def test_chunked_body_over_the_cap_is_refused(tfidf_server: Server) -> None:
    def chunks():  # no Content-Length: the cap is enforced while reading
        yield b'{"instances": ["'
        for _ in range(2048):
            yield b"z" * 1024
        yield b'"]}'

    response = httpx.post(tfidf_server.url + V1, content=chunks(), headers=JSON, timeout=30)
    assert response.status_code == 413
    assert "error" in response.json()


@pytest.mark.parametrize("route", ["direct", "int8", "ensemble"])
def test_server_still_healthy_after_the_bad_inputs(request: pytest.FixtureRequest, route: str) -> None:
    server: Server = request.getfixturevalue(ROUTES[route])
    for _, path, body, headers, _ in CASES:
        httpx.post(server.url + path, content=body, headers=headers, timeout=30)
    assert httpx.get(server.url + "/v2/health/ready", timeout=5).status_code == 200
    response = server.v1(["still serving after all that"])
    assert response.status_code == 200
    metrics = server.metrics()
    server_errors = [
        v
        for (name, labels), v in metrics.items()
        if name == "sentiment_requests_total" and dict(labels)["status_code"].startswith("5")
    ]
    assert sum(server_errors) == 0
    precision = {dict(labels)["precision"] for (name, labels) in metrics if name == "sentiment_model_info"}
    # int8: its recorded loss is 0.1; the ensemble records none, so its transformer member serves fp32
    assert precision == {{"direct": "fp64", "int8": "int8-dynamic", "ensemble": "fp32+fp64"}[route]}
    assert metrics[("sentiment_requests_total", (("endpoint", "v1_predict"), ("status_code", "415")))] >= 2
