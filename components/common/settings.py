"""Typed configuration shared by every component: pydantic settings, overridable by env vars and CLI flags.

Precedence (highest first): CLI flag > environment variable (``SENTIMENTOPS_<FIELD>``) > default.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SENTIMENTOPS_"
REPO_ROOT = Path(__file__).resolve().parents[2]

# Offline-friendly defaults: no telemetry from the libraries we embed.
for _var, _value in {
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_var, _value)


class ComponentSettings(BaseSettings):
    """Base class: every component's settings read ``SENTIMENTOPS_*`` env vars."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", protected_namespaces=(), populate_by_name=True
    )


class TrackingSettings(ComponentSettings):
    """Where runs and models are tracked; the embedded default is SQLite + a local artifact folder."""

    # MLflow's own MLFLOW_TRACKING_URI is honoured too, so a pod configured for MLflow works unchanged.
    tracking_uri: str = Field(
        f"sqlite:///{REPO_ROOT / 'mlruns' / 'mlflow.db'}",
        validation_alias=AliasChoices(f"{ENV_PREFIX}TRACKING_URI", "MLFLOW_TRACKING_URI", "tracking_uri"),
        description="MLflow tracking + registry URI",
    )
    experiment: str = "sentiment"
    registered_model: str = "sentiment"
    parent_run_id: str | None = None
    pipeline_id: str | None = None


class ComponentError(Exception):
    """An expected failure with a one-line, human-readable reason (the CLI prints it and exits non-zero)."""

    exit_code = 1
    prefix = "error"


class GateFailed(ComponentError):
    """A quality gate (validation or promotion) refused the input."""

    exit_code = 2


class GateHeld(ComponentError):
    """The promotion gate cannot decide (too little evidence): nothing is promoted, nothing is wrong."""

    exit_code = 3
    prefix = "hold"


S = TypeVar("S", bound=BaseSettings)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_bool(annotation: Any) -> bool:
    return annotation is bool or (get_origin(annotation) is not None and bool in get_args(annotation))


def help_escape(text: str) -> str:
    """argparse %-formats help strings: a literal ``%`` ("<1% subset") must be doubled or --help breaks."""
    return text.replace("%", "%%")


def add_settings_arguments(parser: argparse.ArgumentParser, settings_cls: type[BaseSettings]) -> None:
    """Add one ``--flag`` per settings field; unset flags fall back to env vars, then defaults."""
    for name, field in settings_cls.model_fields.items():
        help_text = field.description or ""
        if field.is_required():
            shown = "required"
        else:
            default = field.default if field.default_factory is None else field.default_factory()
            shown = f"default: {default!r}"
        help_text = help_escape(f"{help_text} (env {ENV_PREFIX}{name.upper()}, {shown})".strip())
        if _is_bool(field.annotation):
            # ``--flag`` alone means true; ``--flag false`` lets generated workflows pass the value through.
            parser.add_argument(
                _flag(name), dest=name, default=None, nargs="?", const="true", metavar="BOOL", help=help_text
            )
        else:
            parser.add_argument(_flag(name), dest=name, default=None, help=help_text)


def settings_from_args(settings_cls: type[S], args: argparse.Namespace) -> S:
    """Build settings from parsed CLI flags (only those given) layered over env vars and defaults."""
    overrides = {
        name: getattr(args, name)
        for name in settings_cls.model_fields
        if getattr(args, name, None) is not None
    }
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ComponentError(f"invalid setting {field!r}: {first['msg']}") from exc


def run_cli(main_fn: Any) -> None:
    """Run a component entrypoint: expected failures become one readable line and a non-zero exit code."""
    try:
        main_fn()
    except ComponentError as exc:
        print(f"{exc.prefix}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
