"""Check parameters for ``sentiment-retrain`` and render a Workflow that runs it (``workflowTemplateRef``).

``python -m workflows.submit --param dataset_uri=gs://... [--param epochs=1 ...] | kubectl create -f -``
submits a retraining run without the argo CLI. Unknown names, a missing/empty required parameter and values
outside a parameter's ``enum`` are refused here with one clear line, before anything reaches the cluster
(Argo refuses the same submissions server-side from the template's own ``enum`` and missing values).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from workflows.argo import PARAMETER_ENUMS, REQUIRED_PARAMETERS, RETRAIN_TEMPLATE, retrain_parameters
from workflows.cluster import DEFAULT_CLUSTER, ClusterConfig


class ParameterError(ValueError):
    """A submitted parameter set that the template would refuse."""


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; refuses items without ``=`` and repeats."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ParameterError(f"expected NAME=VALUE, got {item!r}")
        if name in out:
            raise ParameterError(f"parameter {name!r} given twice")
        out[name] = value
    return out


def check_parameters(values: dict[str, str], cfg: ClusterConfig = DEFAULT_CLUSTER) -> dict[str, str]:
    """Validate submitted values against the template's parameters; return every parameter's value."""
    declared = {p.name: p for p in retrain_parameters(cfg)}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)} for {RETRAIN_TEMPLATE}; known: {', '.join(declared)}"
        )
    merged = {name: values.get(name, p.value) for name, p in declared.items()}
    for name in REQUIRED_PARAMETERS:
        if not (merged.get(name) or "").strip():
            raise ParameterError(f"parameter {name} is required (e.g. --param {name}=gs://bucket/data.csv)")
    root = merged["artifacts_root"] or ""
    if not root.startswith("gs://") or root.endswith("/"):
        raise ParameterError(
            f"parameter artifacts_root={root!r} must be a gs:// prefix without a trailing slash "
            "(pods have no persistent disk; each run writes under <artifacts_root>/<workflow uid>)"
        )
    for name, allowed in PARAMETER_ENUMS.items():
        if merged[name] not in allowed:
            raise ParameterError(f"parameter {name}={merged[name]!r} is not one of {', '.join(allowed)}")
    return {name: str(value) for name, value in merged.items()}


def workflow_manifest(
    values: dict[str, str], cfg: ClusterConfig = DEFAULT_CLUSTER, generate_name: str = "sentiment-retrain-"
) -> dict[str, Any]:
    """A Workflow running ``sentiment-retrain`` with the given (checked) parameter values."""
    check_parameters(values, cfg)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": generate_name,
            "namespace": cfg.namespace,
            "labels": {"sentimentops/trigger": "manual"},
        },
        "spec": {
            "workflowTemplateRef": {"name": RETRAIN_TEMPLATE},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in values.items()]},
        },
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: print the Workflow YAML, or one error line and exit code 2."""
    parser = argparse.ArgumentParser(
        prog="workflows.submit", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    try:
        manifest = workflow_manifest(parse_assignments(args.param))
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
