"""Every generated file of the repository, regenerated in dependency order: ``make regen``.

Each generator module has one function, ``outputs()``: the files it owns -> the content they must hold
(``None``: the file must not exist, e.g. a chart copy whose source is gone). They run in this order
because each reads what the ones before it wrote:

1. ``monitoring.grafana.build``  dashboards JSON, from the grafana-foundation-sdk builders;
2. ``monitoring.render``         PrometheusRule / AlertmanagerConfig / dashboard ConfigMaps (reads 1);
3. ``infra.sync_chart``          the chart's copies of monitoring/ (reads 1);
4. ``infra.topology``            the diagram in docs/architecture.md, infra/terraform/topology.json;
5. ``workflows.generate``        workflows/manifests/<env>/ and k8s/argo/canary-analysis.yaml;
6. ``tests.platform.report``     docs/flows.md (renders the chart, kustomizations and Terraform: reads 3-5).

``python -m infra.regen`` writes what changed; ``--check`` writes nothing, names every stale file and exits 1
(a file is stale when its generator, run on the tree as it is, would write something else).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

Content = str | bytes | None
Outputs = dict[Path, Content]


@dataclass(frozen=True)
class Generator:
    """A module whose ``outputs()`` returns the files it owns and their content."""

    module: str

    def outputs(self) -> Outputs:
        """The generator's files, computed from the tree as it is now (imported on first use)."""
        produce: Callable[[], Outputs] = importlib.import_module(self.module).outputs
        return produce()


GENERATORS: tuple[Generator, ...] = (
    Generator("monitoring.grafana.build"),
    Generator("monitoring.render"),
    Generator("infra.sync_chart"),
    Generator("infra.topology"),
    Generator("workflows.generate"),
    Generator("tests.platform.report"),
)


def is_stale(path: Path, content: Content) -> bool:
    """Whether ``path`` does not hold ``content`` (``None``: whether it exists)."""
    if content is None:
        return path.exists()
    if not path.is_file():
        return True
    if isinstance(content, bytes):
        return path.read_bytes() != content
    return path.read_text(encoding="utf-8") != content


def stale_files(outputs: Outputs) -> list[Path]:
    """The files of ``outputs`` that differ from what they must hold."""
    return [path for path, content in outputs.items() if is_stale(path, content)]


def write_outputs(outputs: Outputs) -> list[Path]:
    """Write (or delete) only the files that differ; returns them."""
    changed = stale_files(outputs)
    for path in changed:
        content = outputs[path]
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return changed


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def check(generators: Iterable[Generator] = GENERATORS) -> list[str]:
    """Every stale file (repository-relative), generator by generator; writes nothing."""
    return [_relative(path) for gen in generators for path in stale_files(gen.outputs())]


def regenerate(generators: Iterable[Generator] = GENERATORS) -> list[str]:
    """Run every generator in order, each on what the ones before it wrote; returns the files changed."""
    return [_relative(path) for gen in generators for path in write_outputs(gen.outputs())]


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.regen [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m infra.regen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = check()
        for path in stale:
            print(f"stale: {path}")
        if stale:
            print(f"{len(stale)} generated file(s) out of date: run `make regen`", file=sys.stderr)
            return 1
        print("every generated file is up to date")
        return 0
    for path in regenerate():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
