"""Copy the monitoring sources into the Helm chart, so they keep exactly one hand-maintained source.

Helm can only read files inside the chart, so ``helm/sentimentops/files/`` holds copies of the files the
monitoring engineer owns (Prometheus rule files, Grafana dashboards, the Alertmanager configuration),
mirroring their paths under ``monitoring/``. Edit the originals, then run ``make regen`` (``outputs()``:
every copy, and copies whose source is gone deleted); ``python -m infra.regen --check`` names stale copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOT = REPO_ROOT / "monitoring"
CHART_FILES = REPO_ROOT / "helm" / "sentimentops" / "files"

# (folder under monitoring/, glob patterns): what the chart's templates read.
SYNCED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("prometheus/rules", ("*.yaml",)),
    ("grafana/dashboards", ("*.json",)),
    ("alertmanager", ("alertmanager.yml", "alertmanager.yaml", "*.tmpl")),
)


@dataclass(frozen=True)
class Difference:
    """One copy that is not an exact copy of its source."""

    path: str  # relative to the chart's files/ (and to monitoring/)
    problem: str  # "missing", "differs" or "stale" (copy without a source)

    def __str__(self) -> str:
        return f"{self.problem}: {self.path}"


def _matching(folder: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}


def _pairs(source_root: Path, chart_files: Path):
    """Yield (relative path, source or None, copy or None) over sources and existing copies."""
    for folder, patterns in SYNCED:
        sources = _matching(source_root / folder, patterns)
        copies = _matching(chart_files / folder, patterns)
        for name in sorted(sources.keys() | copies.keys()):
            yield f"{folder}/{name}", sources.get(name), copies.get(name)


def differences(source_root: Path = SOURCE_ROOT, chart_files: Path = CHART_FILES) -> list[Difference]:
    """Every copy under ``chart_files`` that is missing, differs from its source, or has no source."""
    found = []
    for rel, source, copy in _pairs(source_root, chart_files):
        if source is None:
            found.append(Difference(rel, "stale"))
        elif copy is None:
            found.append(Difference(rel, "missing"))
        elif source.read_bytes() != copy.read_bytes():
            found.append(Difference(rel, "differs"))
    return found


def outputs(source_root: Path = SOURCE_ROOT, chart_files: Path = CHART_FILES) -> dict[Path, bytes | None]:
    """Every copy -> the bytes of its source (``None``: a copy without a source, to delete)."""
    return {
        chart_files / rel: None if source is None else source.read_bytes()
        for rel, source, _ in _pairs(source_root, chart_files)
    }
