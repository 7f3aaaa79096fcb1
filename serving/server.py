"""The KServe ModelServer, bound to a configurable address, with our request guard and a readiness
probe that reflects the model (KServe's ``/v2/health/ready`` is always true once the server runs)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve.model_server import app as kserve_app

from serving.config import ServingSettings
from serving.guard import RequestGuard
from serving.model import SentimentPredictor
from serving.protocol import Limits

log = logging.getLogger(__name__)


def install(app: FastAPI, model: SentimentPredictor, settings: ServingSettings) -> None:
    """Add the guard middleware and the readiness route to KServe's app (before it starts)."""
    app.add_middleware(
        RequestGuard,
        limits=Limits.from_settings(settings),
        max_body_bytes=settings.max_body_bytes,
        direct=model if settings.direct_predict else None,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
    )

    # Registered before KServe's own routes, so these win.
    @app.get("/v2/health/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        if model.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "error": "model not ready"}, status_code=503)


class SentimentServer(ModelServer):
    """KServe's ModelServer (one worker), listening on ``settings.host`` instead of always 0.0.0.0."""

    def __init__(self, settings: ServingSettings, **kwargs: object) -> None:
        super().__init__(grace_period=settings.drain_timeout_s, **kwargs)  # type: ignore[arg-type]
        if self.workers != 1:
            raise ValueError("the predictor runs one worker per pod (micro-batching, metrics); scale pods")
        self.host = settings.host

    def setup_event_loop(self) -> None:
        """Called by ``start`` after it built the REST server and before it serves: set the bind address,
        and leave out KServe's timing middleware when nothing reads it."""
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
            if not self.enable_latency_logging and self.access_log_format is None:
                # It takes two getrusage() calls per request (7% of the TF-IDF server's CPU, profiled)
                # for a trace log that is off; our own middleware records latency for Prometheus.
                self._rest_server._add_middlewares = lambda app: None
        super().setup_event_loop()

    def serve(self, model: SentimentPredictor, settings: ServingSettings) -> None:
        """Serve until SIGTERM/SIGINT; uvicorn drains in-flight requests, then the model is closed."""
        install(kserve_app, model, settings)
        try:
            self.start([model])
        finally:
            model.close()
            log.info("predictor stopped")
