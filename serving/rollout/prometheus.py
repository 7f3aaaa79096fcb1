"""A small Prometheus HTTP API client: instant queries with a timeout and one-line errors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx

from components.common.settings import ComponentError


class PrometheusError(ComponentError):
    """Prometheus could not be queried, or answered with an error."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: dict[str, str]
    value: float


class Prometheus:
    """Instant queries against ``base_url`` (``/api/v1/query``), each bounded by ``timeout_s``."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """Evaluate ``promql`` at time ``at`` (unix seconds; default: now) and return the vector."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.base_url}/api/v1/query"
        try:
            response = httpx.get(url, params=params, timeout=self.timeout_s)
        except httpx.TimeoutException as exc:
            raise PrometheusError(
                f"Prometheus at {self.base_url} did not answer in {self.timeout_s}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus unreachable at {self.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise PrometheusError(
                f"Prometheus at {self.base_url} answered HTTP {response.status_code} without JSON"
            ) from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus rejected the query ({response.status_code}, {body.get('errorType')}): "
                f"{body.get('error')}"
            )
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise PrometheusError(f"expected an instant vector, got {data.get('resultType')!r}")
        return [Sample(dict(item["metric"]), float(item["value"][1])) for item in data.get("result", [])]

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        """The single value of an aggregated query; None for an empty result or NaN."""
        samples = self.query(promql, at)
        if not samples:
            return None
        if len(samples) > 1:
            raise PrometheusError(f"expected one series, got {len(samples)} for {promql}")
        value = samples[0].value
        return None if math.isnan(value) else value
