"""``python -m serving --model-dir <dir> --model-name sentiment --http-port 8080``.

Takes KServe's own flags (``--http_port``, ``--grpc_port``, ``--enable_grpc`` ...) plus one flag per
``ServingSettings`` field (``--fault-latency-ms`` ...; env ``SENTIMENTOPS_FAULT_LATENCY_MS`` ...).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from components.common.settings import add_settings_arguments, run_cli, settings_from_args


def build_parser() -> argparse.ArgumentParser:
    from kserve.model_server import parser as kserve_parser

    from serving.config import ServingSettings

    parser = argparse.ArgumentParser(
        prog="python -m serving", description=__doc__, parents=[kserve_parser], conflict_handler="resolve"
    )
    add_settings_arguments(parser, ServingSettings)
    parser.add_argument("--http-port", dest="http_port", type=int, help="alias of --http_port")
    parser.add_argument("--grpc-port", dest="grpc_port", type=int, help="alias of --grpc_port")
    parser.add_argument("--model-name", dest="model_name", help="alias of --model_name")
    parser.add_argument("--model_dir", dest="model_dir", help="alias of --model-dir")
    parser.set_defaults(model_name="sentiment", enable_latency_logging=False)
    return parser


def main() -> None:
    from serving.config import ServingSettings
    from serving.model import SentimentPredictor
    from serving.server import SentimentServer

    args = build_parser().parse_args()
    settings = settings_from_args(ServingSettings, args)
    server = SentimentServer(
        settings,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=args.enable_latency_logging,
    )
    if not args.enable_latency_logging:
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    if not settings.access_log:
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    ours = logging.getLogger("serving")  # log through the handlers KServe configured
    ours.handlers, ours.propagate = logging.getLogger("kserve").handlers, False
    ours.setLevel(logging.INFO)
    model = SentimentPredictor(args.model_name, settings)
    model.load()
    server.serve(model, settings)
    # Drained and flushed: skip the interpreter's teardown of native libraries (seconds, measured),
    # which would otherwise eat into the pod's termination grace period.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    run_cli(main)
