"""ASGI middleware in front of KServe's prediction routes: enforce the input contract at the door,
answer valid predictions directly, and count every answer.

KServe answers some malformed requests with 500 (no JSON Content-Type, V2 body without ``id``). Here
every prediction request is checked before KServe sees it: Content-Type (415), body size (413, also for
chunked bodies), UTF-8 and JSON syntax and the protocol's shape (400), each with a ``{"error": ...}``
body. Any exception that still escapes becomes a JSON 500 (or 503 when the queue is full), and
``sentiment_requests_total`` / ``sentiment_request_latency_seconds`` see every outcome.

Direct path (``direct_predict``, on by default): a valid request for the served model is answered here
by the model's own ``predict``/``postprocess`` and KServe's response types, instead of being replayed
through FastAPI's router and KServe's dataplane, which parse the JSON body a second time and more
than double the TF-IDF server's CPU per request (1.26 vs 0.57 ms, docs/benchmarks.md). Everything else (metadata, health,
unknown model names, gRPC) is KServe's as before.

Every HTTP request, prediction or not, is held to ``max_headers`` / ``max_header_bytes`` (431). Only
GET/HEAD reach KServe's other routes: any other method there (KServe's repository ``load``/``unload``,
``:explain``) is 405, so nobody who can reach the pod can unload the model or send a body that is read
without a size limit.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import orjson
from kserve.errors import InferenceError
from kserve.protocol.infer_type import InferResponse

from serving.batching import Overloaded
from serving.metrics import LATENCY, REQUESTS
from serving.protocol import InputError, Limits, ParsedRequest, check_request_id, v1_texts, v2_texts

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ENDPOINTS = {
    "v1_predict": re.compile(r"^/v1/models/(?P<model>[^/]+):predict$"),
    "v2_infer": re.compile(r"^/v2/models/(?P<model>[^/]+)(/versions/[^/]+)?/infer$"),
}


class Predictor(Protocol):
    """What the direct path needs of the served model (serving.model.SentimentPredictor)."""

    name: str
    ready: bool

    async def predict(self, payload: ParsedRequest, headers: dict[str, str] | None = None) -> Any: ...

    async def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any: ...


def route_of(scope: Scope) -> tuple[str, str] | None:
    """(metric label, model name) of a prediction route, or None for everything else."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    for name, pattern in ENDPOINTS.items():
        match = pattern.match(scope["path"])
        if match:
            return name, match["model"]
    return None


async def send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Validates prediction requests, turns escaping errors into JSON, and records request metrics."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits,
        max_body_bytes: int,
        direct: Predictor | None = None,
        max_header_bytes: int = 8192,
        max_headers: int = 64,
    ) -> None:
        self.app = app
        self.limits = limits
        self.max_body_bytes = max_body_bytes
        self.direct = direct
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    def _header_error(self, scope: Scope) -> str | None:
        headers = scope.get("headers") or []
        if len(headers) > self.max_headers:
            return f"{len(headers)} request headers; at most {self.max_headers}"
        size = sum(len(k) + len(v) for k, v in headers)
        if size > self.max_header_bytes:
            return f"request headers of {size} bytes; at most {self.max_header_bytes}"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self._header_error(scope)
            if error is not None:
                endpoint = route_of(scope)
                if endpoint is not None:
                    REQUESTS.labels(endpoint[0], "431").inc()
                await send_json(send, 431, {"error": error})
                return
        route = route_of(scope)
        if route is None:
            if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
                await send_json(send, 405, {"error": f"{scope['method']} {scope['path']} is not allowed"})
                return
            await self.app(scope, receive, send)
            return
        endpoint, model_name = route
        started = time.perf_counter()
        state = {"status": 500, "sent": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["sent"] = message["status"], True
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            parsed = self._parse(endpoint, body, scope)
            if self.direct is not None and model_name == self.direct.name:
                await self._answer(parsed, send_wrapper)
                return

            pending = [{"type": "http.request", "body": body, "more_body": False}]

            async def replay() -> Message:  # the body once, then the real channel (disconnects)
                return pending.pop() if pending else await receive()

            await self.app(scope, replay, send_wrapper)
        except Exception as exc:
            if isinstance(exc, InputError):
                status, message = exc.status, exc.message
            elif isinstance(exc, Overloaded):
                status, message = 503, str(exc)
            elif isinstance(exc, InferenceError):  # e.g. injected faults: KServe's answer, too
                status, message = 500, str(exc)
            else:
                log.exception("unhandled error on %s", scope["path"])
                status, message = 500, f"internal error: {type(exc).__name__}"
            if not state["sent"]:
                await send_json(send_wrapper, status, {"error": message})
        finally:
            REQUESTS.labels(endpoint, str(state["status"])).inc()
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            raise InputError("Content-Type must be application/json", status=415)
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise InputError(f"request body larger than {self.max_body_bytes} bytes", status=413)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InputError("client disconnected before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise InputError(f"request body larger than {self.max_body_bytes} bytes", status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _parse(self, endpoint: str, body: bytes, scope: Scope) -> ParsedRequest:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError("request body is not valid UTF-8") from exc
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"request body is not valid JSON: {exc}") from exc
        if endpoint == "v1_predict":
            texts = v1_texts(data, self.limits)
            header = dict(scope["headers"]).get(b"x-request-id")
            if not header:
                return ParsedRequest(False, uuid.uuid4().hex, texts)
            try:
                request_id = check_request_id(header.decode("ascii"), self.limits)
            except (UnicodeDecodeError, InputError) as exc:
                raise InputError(f"bad x-request-id header: {exc}") from None
            return ParsedRequest(False, request_id, texts)
        request_id, texts = v2_texts(data, self.limits)
        return ParsedRequest(True, request_id, texts)

    async def _answer(self, parsed: ParsedRequest, send: Send) -> None:
        """Run a validated request through the model and send its response (the direct path)."""
        assert self.direct is not None
        if not self.direct.ready:
            await send_json(send, 503, {"error": f"model {self.direct.name} is not ready"})
            return
        response = await self.direct.postprocess(await self.direct.predict(parsed))
        if isinstance(response, InferResponse):
            response, _ = response.to_rest()
        await send_json(send, 200, response)
