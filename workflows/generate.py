"""Write the Argo manifests generated from ``workflows/spec.py`` to ``workflows/manifests/``.

``python -m workflows.generate``            writes them;
``python -m workflows.generate --check``    exits 1 and names the files that differ from what is committed;
``--param NAME=VALUE`` bakes another default into ``sentiment-retrain`` (unknown names are refused).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

from workflows.argo import build_all
from workflows.cluster import DEFAULT_CLUSTER, GPU_ACCELERATORS, ClusterConfig
from workflows.submit import ParameterError, check_parameters, parse_assignments

MANIFESTS_DIR = Path(__file__).resolve().parent / "manifests"
HEADER = "# Generated from workflows/spec.py by `python -m workflows.generate`. Do not edit by hand.\n"


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with indented sequences (what yamllint and kubectl users expect)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def to_yaml(manifest: dict[str, Any]) -> str:
    """Deterministic YAML for one manifest, with the do-not-edit header."""
    body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    return HEADER + "---\n" + body


def render(cfg: ClusterConfig = DEFAULT_CLUSTER) -> dict[str, str]:
    """File name -> YAML text of every generated manifest."""
    return {name: to_yaml(manifest) for name, manifest in build_all(cfg).items()}


def write(out_dir: Path = MANIFESTS_DIR, cfg: ClusterConfig = DEFAULT_CLUSTER) -> list[Path]:
    """Write every manifest (only files whose content changed are touched); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(cfg).items():
        path = out_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def stale(out_dir: Path = MANIFESTS_DIR, cfg: ClusterConfig = DEFAULT_CLUSTER) -> list[str]:
    """Names of the manifests that are missing or differ from a fresh generation."""
    return [
        name
        for name, text in render(cfg).items()
        if not (out_dir / name).is_file() or (out_dir / name).read_text() != text
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workflows.generate", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--out", type=Path, default=MANIFESTS_DIR, help="output folder")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if files are stale")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a sentiment-retrain parameter's default (a name from workflows/spec.py)",
    )
    parser.add_argument("--project", default=DEFAULT_CLUSTER.project, help="GCP project (buckets, image)")
    parser.add_argument("--namespace", default=DEFAULT_CLUSTER.namespace)
    parser.add_argument("--image-tag", default=DEFAULT_CLUSTER.image_tag)
    parser.add_argument(
        "--gpu-accelerator",
        default=DEFAULT_CLUSTER.gpu_pool.accelerator,
        choices=GPU_ACCELERATORS,
        help="GKE accelerator of the GPU pool (staging: nvidia-tesla-t4)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> ClusterConfig:
    """The cluster config with the CLI's overrides; parameter names and values are checked."""
    overrides = parse_assignments(args.param)
    # Unknown names and enum violations are refused; dataset_uri may stay unset (required at submission).
    check_parameters({"dataset_uri": "placeholder", **overrides})
    return dataclasses.replace(
        DEFAULT_CLUSTER,
        project=args.project,
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
    if args.check:
        differ = stale(args.out, cfg)
        if differ:
            print(
                f"stale manifests in {args.out}: {', '.join(differ)} (run `python -m workflows.generate`)",
                file=sys.stderr,
            )
            return 1
        print(f"manifests in {args.out} are up to date")
        return 0
    for path in write(args.out, cfg):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
