"""The input contract of both protocols, as plain functions over decoded JSON (no framework types).

V1: ``{"instances": [<str> | {"text": <str>}, ...]}``.
V2 (Open Inference Protocol): ``{"id": <str>, "inputs": [{"name": "text", "datatype": "BYTES",
"shape": [n], "data": [<str>, ...]}]}``. The ``id`` is required here (it keys the payload log) and at
most ``max_id_chars`` long. The data must match the declared shape exactly: ``[n]`` holds ``n``
strings; ``[n, 1]`` holds ``n`` strings (row-major flat form) or ``n`` one-string rows (nested form).
Every text must be a non-empty string of at most ``max_chars`` characters: longer texts are rejected,
never silently truncated (the transformer still truncates to its ``max_length`` tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.config import ServingSettings


class InputError(ValueError):
    """A request that breaks the input contract; answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ParsedRequest:
    """A validated prediction request: which protocol it came by, its id and its texts."""

    v2: bool
    request_id: str
    texts: list[str]


@dataclass(frozen=True)
class Limits:
    """Caps on one request."""

    max_chars: int
    max_instances: int
    max_id_chars: int = 256

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> Limits:
        return cls(settings.max_text_chars, settings.max_instances, settings.max_id_chars)


def _check_texts(texts: list[Any], limits: Limits, where: str) -> list[str]:
    if not texts:
        raise InputError(f"{where} must hold at least one text")
    if len(texts) > limits.max_instances:
        raise InputError(f"{where} holds {len(texts)} texts; at most {limits.max_instances} per request")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"{where}[{i}] must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InputError(f"{where}[{i}] is empty")
        if len(text) > limits.max_chars:
            raise InputError(f"{where}[{i}] has {len(text)} characters; at most {limits.max_chars}")
    return texts


def v1_texts(body: Any, limits: Limits) -> list[str]:
    """The texts of a V1 ``:predict`` body, or InputError."""
    if not isinstance(body, dict) or "instances" not in body:
        raise InputError('body must be a JSON object with an "instances" list')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InputError('"instances" must be a list')
    texts = [item["text"] if isinstance(item, dict) and "text" in item else item for item in instances]
    for i, item in enumerate(instances):
        if isinstance(item, dict) and set(item) != {"text"}:
            raise InputError(f'instances[{i}] must be a string or {{"text": <string>}}')
    return _check_texts(texts, limits, "instances")


def check_request_id(request_id: Any, limits: Limits) -> str:
    """A request id is a non-empty string of at most ``max_id_chars`` printable characters."""
    if not isinstance(request_id, str) or not request_id:
        raise InputError('"id" (a non-empty string) is required')
    if len(request_id) > limits.max_id_chars:
        raise InputError(f'"id" has {len(request_id)} characters; at most {limits.max_id_chars}')
    if not request_id.isprintable():
        raise InputError('"id" must hold printable characters only')
    return request_id


def _shape(tensor: dict[str, Any], limits: Limits) -> list[int]:
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) not in (1, 2)
        or not all(type(d) is int and d >= 0 for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise InputError('the input tensor needs a "shape" of [n] or [n, 1] with n a non-negative integer')
    if shape[0] > limits.max_instances:
        raise InputError(f"shape {shape} holds {shape[0]} texts; at most {limits.max_instances} per request")
    return shape


def v2_texts(body: Any, limits: Limits) -> tuple[str, list[str]]:
    """The request id and texts of a V2 ``/infer`` body, or InputError."""
    if not isinstance(body, dict):
        raise InputError("body must be a JSON object")
    request_id = check_request_id(body.get("id"), limits)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InputError('"inputs" must be a list with exactly one tensor')
    tensor = inputs[0]
    if tensor.get("datatype") != "BYTES":
        raise InputError('the input tensor must have "datatype": "BYTES"')
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InputError('the input tensor needs a "data" list')
    shape = _shape(tensor, limits)
    if len(data) != shape[0]:
        raise InputError(f"shape {shape} does not match {len(data)} data elements")
    nested = [isinstance(row, list) for row in data]
    if any(nested):
        if len(shape) != 2 or not all(nested):
            raise InputError(f"data nesting does not match shape {shape}")
        if any(len(row) != 1 for row in data):
            raise InputError(f"data nesting does not match shape {shape}: every row must hold one text")
        data = [row[0] for row in data]
    return request_id, _check_texts(data, limits, "data")
