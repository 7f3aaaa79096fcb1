"""Write the Argo manifests generated from ``workflows/spec.py`` to ``workflows/manifests/<environment>/``.

One folder per environment of ``infra/topology.py`` (project, buckets, image, GPU pool), each a kustomization
that Argo CD syncs into the platform namespace together with ``k8s/argo``: the canary-analysis template
(generated here too, from ``workflows/canary.py``), whose environment-specific parameters it patches.

``make regen`` (``python -m infra.regen``) writes them with every other generated file; ``--check`` there
names the stale ones. ``python -m workflows.generate --out DIR --project P ...`` writes a folder for another
project; ``--param NAME=VALUE`` bakes another default into ``sentiment-retrain`` (unknown names are refused).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.regen import write_outputs
from workflows.argo import build_all
from workflows.canary import build_canary_template
from workflows.cluster import CLUSTERS, DEFAULT_CLUSTER, GPU_ACCELERATORS, ClusterConfig
from workflows.submit import ParameterError, check_parameters, parse_assignments

MANIFESTS_DIR = Path(__file__).resolve().parent / "manifests"
CANARY_TEMPLATE = Path(__file__).resolve().parents[1] / "k8s" / "argo" / "canary-analysis.yaml"
HEADER = "# Generated from workflows/spec.py by `python -m workflows.generate`. Do not edit by hand.\n"
CANARY_HEADER = "# Generated from workflows/canary.py by `make regen`. Do not edit by hand.\n"


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with indented sequences (what yamllint and kubectl users expect)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def to_yaml(manifest: dict[str, Any], header: str = HEADER) -> str:
    """Deterministic YAML for one manifest, with the do-not-edit header."""
    body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    return header + "---\n" + body


def canary_parameters(cfg: ClusterConfig) -> dict[str, str]:
    """The canary-analysis parameters that differ per environment."""
    return {
        "environment": cfg.environment,
        "serving-namespace": cfg.topology.serving_namespace,
        "image": cfg.image,
        "tracking-uri": cfg.tracking_uri,
    }


def kustomization(cfg: ClusterConfig, names: list[str]) -> dict[str, Any]:
    """The environment's kustomization: the generated templates plus k8s/argo with its parameters patched."""
    base = build_canary_template(DEFAULT_CLUSTER).to_dict()
    index = {p["name"]: i for i, p in enumerate(base["spec"]["arguments"]["parameters"])}
    ops = [
        {"op": "replace", "path": f"/spec/arguments/parameters/{index[name]}/value", "value": value}
        for name, value in canary_parameters(cfg).items()
    ]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": cfg.namespace,
        "resources": [*names, "../../../k8s/argo"],
        "patches": [
            {"target": {"kind": "WorkflowTemplate", "name": "canary-analysis"}, "patch": yaml.safe_dump(ops)}
        ],
    }


def render(cfg: ClusterConfig = DEFAULT_CLUSTER) -> dict[str, str]:
    """File name -> YAML text of every generated manifest of one environment."""
    out = {name: to_yaml(manifest) for name, manifest in build_all(cfg).items()}
    out["kustomization.yaml"] = to_yaml(kustomization(cfg, sorted(out)))
    return out


def render_all() -> dict[str, str]:
    """``<environment>/<file>`` -> YAML text for every environment of infra/topology.py."""
    return {f"{env}/{name}": text for env, cfg in CLUSTERS.items() for name, text in render(cfg).items()}


def outputs() -> dict[Path, str]:
    """Every committed file this module generates -> its content (``infra.regen`` writes or checks them):
    each environment's folder, and the canary-analysis template of ``k8s/argo`` (prod defaults, patched
    per environment by the kustomizations)."""
    out = {MANIFESTS_DIR / name: text for name, text in render_all().items()}
    out[CANARY_TEMPLATE] = to_yaml(build_canary_template(DEFAULT_CLUSTER).to_dict(), CANARY_HEADER)
    return out


def _rendered(cfg: ClusterConfig | None) -> dict[str, str]:
    return render_all() if cfg is None else render(cfg)


def write(out_dir: Path = MANIFESTS_DIR, cfg: ClusterConfig | None = None) -> list[Path]:
    """Write every manifest (only files whose content changed are touched); returns the paths written.
    ``cfg`` None: every environment, each in its folder."""
    return write_outputs({out_dir / name: text for name, text in _rendered(cfg).items()})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workflows.generate", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--out", type=Path, default=MANIFESTS_DIR, help="output folder")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a sentiment-retrain parameter's default (a name from workflows/spec.py)",
    )
    parser.add_argument(
        "--project",
        default=None,
        help="GCP project (buckets, image): writes one folder for that project instead of every environment",
    )
    parser.add_argument("--namespace", default=DEFAULT_CLUSTER.namespace)
    parser.add_argument("--image-tag", default=DEFAULT_CLUSTER.image_tag)
    parser.add_argument(
        "--gpu-accelerator",
        default=DEFAULT_CLUSTER.gpu_pool.accelerator,
        choices=GPU_ACCELERATORS,
        help="GKE accelerator of the GPU pool (staging: nvidia-tesla-t4)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> ClusterConfig | None:
    """The cluster config with the CLI's overrides (None: every environment as committed); parameter
    names and values are checked."""
    overrides = parse_assignments(args.param)
    # Unknown names and enum violations are refused; dataset_uri may stay unset (required at submission).
    check_parameters({"dataset_uri": "placeholder", **overrides})
    custom = overrides or args.project or args.namespace != DEFAULT_CLUSTER.namespace
    custom = custom or args.image_tag != DEFAULT_CLUSTER.image_tag
    custom = custom or args.gpu_accelerator != DEFAULT_CLUSTER.gpu_pool.accelerator
    if not custom:
        return None
    return dataclasses.replace(
        DEFAULT_CLUSTER,
        project=args.project or DEFAULT_CLUSTER.project,
        namespace=args.namespace,
        image_tag=args.image_tag,
        gpu_pool=dataclasses.replace(DEFAULT_CLUSTER.gpu_pool, accelerator=args.gpu_accelerator),
        extra_parameter_defaults=tuple(overrides.items()),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in write(args.out, cfg):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
