"""The drift job on real data: RT vs RT (no drift), RT vs out-of-domain reviews (drift), insufficient data,
the payload log reader, and the Pushgateway path (real Pushgateway; down -> outputs still written)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from components.common.models import load_model
from monitoring.drift.features import Vocabulary, build_features
from monitoring.drift.job import run_drift
from monitoring.drift.logs import read_window, records_for, write_log_file
from monitoring.drift.settings import DriftSettings
from tests.conftest import REPO_ROOT, free_port

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _log(root: Path, texts: list[str], probs: np.ndarray, version: str = "3", hours: float = 20) -> None:
    """Payload logs spread over the ``hours`` before END, as the serving logger writes them."""
    start = END - timedelta(hours=hours)
    write_log_file(
        root,
        "sentiment",
        records_for(texts, probs, start, timedelta(hours=hours) / len(texts), model_version=version),
    )


def _hostile_lines() -> list[bytes]:
    """Malformed payload log lines, one per kind seen in the wild or in the security review."""
    ok = {"ts": "2026-11-23T11:00:00Z", "request_id": "r", "model_name": "sentiment", "model_version": "3"}
    ok |= {"text": "a fine film", "label": 1, "probability": 0.9}

    def with_(**kw: object) -> bytes:
        return json.dumps(ok | kw).encode()

    raw = json.dumps(ok).encode()
    return [
        with_(ts=1763899200),  # numeric ts
        with_(ts="2026-13-45T99:00:00Z"),
        with_(ts=None),
        with_(label="pos"),
        with_(label=None),
        with_(label=7),
        raw.replace(b"0.9", b"9" * 400),  # a 400-digit probability (an integer)
        raw.replace(b"0.9", b"1" + b"0" * 400 + b".5"),  # 400 digits as a float: inf
        raw.replace(b"0.9", b"7" * 5000),  # past Python's int-parsing limit
        raw.replace(b"0.9", b"NaN"),
        with_(probability="0.9"),
        with_(probability=True),
        with_(probability=1.5),
        raw.replace(b"a fine film", b"caf\xe9 \xff\xfe"),  # invalid UTF-8
        with_(text=["a", "list"]),
        with_(text="x" * 100_000),  # an overlong line
        with_(model_version={"nested": [1, 2]}),
        b"not json at all",
        b"[1, 2, 3]",
        b'{"ts": "2026-11-23T11:00:00Z"',
        b"\x00\x01\x02",
        b"[" * 100_000,
    ]


def _settings(root: Path, reference: Path, **kw: object) -> DriftSettings:
    return DriftSettings(
        log_root=str(root), reference_uri=str(reference), window_end=END.isoformat(), window_hours=24, **kw
    )


def _digest(model_dir: Path) -> str:
    """The digest the registry records for ``model_dir`` (the drift job is pinned to it)."""
    from components.common.artifacts import read_manifest

    return read_manifest(model_dir).digest


@pytest.fixture(scope="module")
def model(baseline_model_dir: Path):  # noqa: ANN201
    return load_model(baseline_model_dir)


def test_vocabulary_leave_one_out() -> None:
    vocab = Vocabulary(["a good film", "a bad film", "unique words here"])
    assert vocab.oov_rate(["a good film"]).tolist() == [0.0]
    assert vocab.oov_rate(["a great film"]).tolist() == pytest.approx([1 / 3])
    # on its own texts, words only that text contains count as unseen
    assert vocab.oov_rate(["a good film", "unique words here"], leave_one_out=True).tolist() == pytest.approx(
        [1 / 3, 1.0]
    )


def test_features_are_computed_offline() -> None:
    frame = build_features(["Café au lait!", ""], np.array([0.9, 0.2]), Vocabulary(["cafe au lait"]))
    assert frame["non_ascii_share"].iloc[0] == pytest.approx(1 / 13)
    assert frame["word_count"].tolist() == [3.0, 0.0]
    assert frame["confidence"].tolist() == pytest.approx([0.9, 0.8])
    assert frame["predicted_label"].tolist() == ["positive", "negative"]


def test_rt_test_split_vs_training_reference_is_not_drift(
    tmp_path: Path, rt_validated_dir: Path, rt_test_texts: list[str], baseline_model_dir: Path, model
) -> None:
    _log(tmp_path / "logs", rt_test_texts, model.predict_proba(rt_test_texts)[:, 1])
    # 1 % of the lines are malformed: skipped, counted, and the run completes
    hostile = _hostile_lines()
    n_bad = max(len(rt_test_texts) // 100, 1)
    part = tmp_path / "logs" / "sentiment" / "dt=2026-11-23" / "hour=11"
    part.mkdir(parents=True, exist_ok=True)
    (part / "mixed.jsonl").write_bytes(b"\n".join(hostile[i % len(hostile)] for i in range(n_bad)) + b"\n")
    result = run_drift(
        _settings(
            tmp_path / "logs",
            rt_validated_dir,
            model_uri=str(baseline_model_dir),
            model_digest=_digest(baseline_model_dir),
        )
    )
    assert result.status == "ok" and result.current_rows == len(rt_test_texts)
    assert result.reference_rows > 8000
    assert set(result.features) == {
        "length_chars", "word_count", "oov_rate", "non_ascii_share",
        "probability", "confidence", "predicted_label", "text",
    }  # fmt: skip
    drifted = [name for name, f in result.features.items() if f.drifted]
    assert drifted == [], drifted
    assert result.drift_detected is False and result.drift_share == 0.0
    # leave-one-out OOV: the reference rate is comparable to unseen in-domain text
    oov = result.features["oov_rate"]
    assert 0.5 < oov.current_mean / oov.reference_mean < 2.0
    out = Path(result.output_uri)
    assert out.parent == tmp_path / "logs" / "sentiment" / "drift"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["drift_detected"] is False and summary["model_version"] == "3"
    assert summary["bad_lines"] == n_bad and sum(summary["bad_line_reasons"].values()) == n_bad
    assert (out / "report.html").stat().st_size > 10_000 and (out / "text_report.html").exists()


def test_out_of_domain_reviews_are_flagged(
    tmp_path: Path, rt_validated_dir: Path, ood_texts: list[str], baseline_model_dir: Path, model
) -> None:
    _log(tmp_path / "logs", ood_texts, model.predict_proba(ood_texts)[:, 1])
    result = run_drift(
        _settings(
            tmp_path / "logs",
            rt_validated_dir,
            model_uri=str(baseline_model_dir),
            model_digest=_digest(baseline_model_dir),
        )
    )
    assert result.drift_detected is True
    drifted = {name for name, f in result.features.items() if f.drifted}
    assert {"length_chars", "word_count", "text"} <= drifted
    assert result.features["text"].score > 0.7  # domain classifier ROC AUC
    assert result.drift_share >= 0.5


@pytest.mark.parametrize("method", ["ks", "wasserstein"])
def test_methods_and_thresholds_are_configurable(
    tmp_path: Path, rt_validated_dir: Path, ood_texts: list[str], method: str
) -> None:
    _log(tmp_path / "logs", ood_texts, np.full(len(ood_texts), 0.7))
    result = run_drift(
        _settings(
            tmp_path / "logs",
            rt_validated_dir,
            num_method=method,
            feature_methods="oov_rate=psi",
            feature_thresholds="length_chars=0.999",
        )
    )
    assert result.features["word_count"].method.lower().startswith(method[:4])
    assert result.features["oov_rate"].method == "psi"
    assert result.features["length_chars"].threshold == 0.999
    assert "probability" not in result.features  # reference without predictions: no prediction tests
    assert any("no predictions" in w for w in result.warnings)
    assert result.features["word_count"].drifted


def test_unknown_feature_in_settings_is_an_error(
    tmp_path: Path, rt_validated_dir: Path, ood_texts: list[str]
) -> None:
    from components.common.settings import ComponentError

    _log(tmp_path / "logs", ood_texts, np.full(len(ood_texts), 0.7))
    with pytest.raises(ComponentError, match="unknown feature"):
        run_drift(_settings(tmp_path / "logs", rt_validated_dir, feature_methods="lenght=ks"))
    with pytest.raises(ValueError):
        DriftSettings(feature_methods="oops")


def test_too_few_rows_is_insufficient_data_not_drift(
    tmp_path: Path, rt_validated_dir: Path, ood_texts: list[str]
) -> None:
    _log(tmp_path / "logs", ood_texts[:50], np.full(50, 0.9))
    result = run_drift(_settings(tmp_path / "logs", rt_validated_dir))
    assert result.status == "insufficient_data"
    assert result.drift_detected is False and result.drift_share is None and result.features == {}
    assert "50 row(s)" in result.reason and "at least 200" in result.reason
    summary = json.loads((Path(result.output_uri) / "summary.json").read_text())
    assert summary["status"] == "insufficient_data"
    assert "insufficient data" in (Path(result.output_uri) / "report.html").read_text()


def test_log_reader_window_versions_and_bad_lines(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    texts = [f"text {i}" for i in range(30)]
    # 30 records one hour apart ending just before END: only the last 24 fall in the window
    write_log_file(
        root, "sentiment", records_for(texts, np.full(30, 0.8), END - timedelta(hours=30), timedelta(hours=1))
    )
    write_log_file(
        root,
        "sentiment",
        records_for(
            ["other"] * 3, np.full(3, 0.1), END - timedelta(hours=1), timedelta(minutes=1), model_version="9"
        ),
        seq=1,
    )
    part = (
        root / "sentiment" / f"dt={END - timedelta(hours=1):%Y-%m-%d}" / f"hour={END - timedelta(hours=1):%H}"
    )
    (part / "broken.jsonl").write_text('{"ts": "2026-11-23T11:30:00Z", "text": "x"}\nnot json\n')
    (part / ".in-flight.jsonl").write_text(
        '{"ts": "2026-11-23T11:30:00Z", "text": "x", "probability": 0.5}\n'
    )
    (part / "partial.jsonl.tmp").write_text("garbage")
    window = read_window(str(root), "sentiment", END - timedelta(hours=24), END)
    assert window.versions == {"1": 24, "9": 3}
    assert window.bad_lines == 2
    assert len(window.frame) == 27


def _metrics_text(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=5).text


def test_push_to_a_real_pushgateway(
    tmp_path: Path, rt_validated_dir: Path, ood_texts: list[str], pushgateway: str
) -> None:
    """A full run over logs of which 1 % are malformed lines: it completes, and summary.json and the
    pushed metrics report how many lines were skipped."""
    _log(tmp_path / "logs", ood_texts, np.full(len(ood_texts), 0.7))
    hostile = _hostile_lines()
    n_bad = max(len(ood_texts) // 100, len(hostile))
    bad = [hostile[i % len(hostile)] for i in range(n_bad)]
    part = tmp_path / "logs" / "sentiment" / "dt=2026-11-23" / "hour=11"
    part.mkdir(parents=True, exist_ok=True)
    (part / "mixed.jsonl").write_bytes(b"\n".join(bad) + b"\n")
    result = run_drift(_settings(tmp_path / "logs", rt_validated_dir, pushgateway_url=pushgateway))
    assert result.status == "ok" and result.current_rows == len(ood_texts)
    assert result.bad_lines == n_bad and sum(result.bad_line_reasons.values()) == n_bad
    summary = json.loads((Path(result.output_uri) / "summary.json").read_text())
    assert summary["bad_lines"] == n_bad and summary["bad_line_reasons"]["line_too_long"] >= 1
    assert result.pushed is True and result.push_error is None
    text = _metrics_text(pushgateway)
    assert (
        f'sentiment_drift_malformed_lines{{instance="",job="sentiment_drift",model_name="sentiment"}} {n_bad}'
        in text
    )
    assert 'sentiment_drift_detected{instance="",job="sentiment_drift",model_name="sentiment"} 1' in text
    assert (
        'sentiment_drift_feature_score{feature="text",instance="",job="sentiment_drift",model_name="sentiment"}'
        in text
    )
    assert "sentiment_drift_share{" in text and "sentiment_drift_last_success_timestamp_seconds{" in text
    # a later run with too little data replaces the group: no stale feature scores remain
    for old in (tmp_path / "logs" / "sentiment").glob("dt=*"):
        for f in old.rglob("*.jsonl"):
            f.unlink()
    _log(tmp_path / "logs", ood_texts[:10], np.full(10, 0.7))
    run_drift(_settings(tmp_path / "logs", rt_validated_dir, pushgateway_url=pushgateway))
    text = _metrics_text(pushgateway)
    assert "sentiment_drift_feature_score{" not in text
    assert (
        'sentiment_drift_insufficient_data{instance="",job="sentiment_drift",model_name="sentiment"} 1'
        in text
    )
    assert 'sentiment_drift_detected{instance="",job="sentiment_drift",model_name="sentiment"} 0' in text


def test_every_hostile_line_is_skipped_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    texts = [f"text {i}" for i in range(20)]
    write_log_file(
        root,
        "sentiment",
        records_for(texts, np.full(20, 0.8), END - timedelta(hours=2), timedelta(minutes=1)),
    )
    hostile = _hostile_lines()
    part = root / "sentiment" / "dt=2026-11-23" / "hour=11"
    part.mkdir(parents=True, exist_ok=True)
    (part / "hostile.jsonl").write_bytes(b"\n".join(hostile))  # the last line has no newline
    window = read_window(str(root), "sentiment", END - timedelta(hours=24), END)
    assert len(window.frame) == 20
    assert window.bad_lines == len(hostile), window.bad_reasons
    assert window.bad_reasons["line_too_long"] == 2 and window.bad_reasons["invalid_utf8"] == 1


def test_rows_and_line_length_are_capped(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    texts = [f"text {i}" for i in range(50)]
    write_log_file(
        root,
        "sentiment",
        records_for(texts, np.full(50, 0.8), END - timedelta(hours=2), timedelta(minutes=1)),
    )
    window = read_window(str(root), "sentiment", END - timedelta(hours=24), END, max_rows=10)
    assert len(window.frame) == 10 and window.rows_capped
    window = read_window(str(root), "sentiment", END - timedelta(hours=24), END, max_line_bytes=100)
    assert len(window.frame) == 0 and window.bad_reasons == {"line_too_long": 50}


def test_mutation_without_the_record_check_a_bad_line_stops_the_run(tmp_path: Path) -> None:
    """The old reader: a numeric ts raised outside the skip path and aborted the whole read."""
    from monitoring.drift import logs
    from tests.mutation import mutant

    root = tmp_path / "logs"
    part = root / "sentiment" / "dt=2026-11-23" / "hour=11"
    part.mkdir(parents=True)
    (part / "a.jsonl").write_bytes(_hostile_lines()[0] + b"\n")
    assert read_window(str(root), "sentiment", END - timedelta(hours=24), END).bad_lines == 1
    weak = mutant(logs, "if not isinstance(ts_value, str) or len(ts_value) > 64:", "if False:")
    with pytest.raises(AttributeError):
        weak.read_window(str(root), "sentiment", END - timedelta(hours=24), END)


def test_reference_model_directory_needs_the_pinned_digest(
    tmp_path: Path, rt_validated_dir: Path, baseline_model_dir: Path
) -> None:
    from components.common.artifacts import ArtifactError
    from monitoring.drift.job import load_reference

    with pytest.raises(ArtifactError, match="needs --model-digest"):
        load_reference(_settings(tmp_path / "logs", rt_validated_dir, model_uri=str(baseline_model_dir)))
    with pytest.raises(ArtifactError, match="does not match the registered"):
        load_reference(
            _settings(
                tmp_path / "logs", rt_validated_dir, model_uri=str(baseline_model_dir), model_digest="0" * 64
            )
        )


def test_pushgateway_down_still_writes_outputs_and_exits_nonzero(
    tmp_path: Path, rt_validated_dir: Path, rt_test_texts: list[str]
) -> None:
    """The CLI in a subprocess, pushing to a port nothing listens on."""
    _log(tmp_path / "logs", rt_test_texts, np.full(len(rt_test_texts), 0.5))
    out_dir = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitoring.drift",
            "--log-root",
            str(tmp_path / "logs"),
            "--reference-uri",
            str(rt_validated_dir),
            "--window-end",
            END.isoformat(),
            "--output-uri",
            str(out_dir),
            "--pushgateway-url",
            f"http://127.0.0.1:{free_port()}",
            "--push-timeout-s",
            "2",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "push to http://127.0.0.1" in proc.stderr and "failed" in proc.stderr
    assert "drift: no drift" in proc.stdout
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["pushed"] is False and "refused" in summary["push_error"].lower(), summary["push_error"]
    assert summary["status"] == "ok" and (out_dir / "report.html").exists()


def test_reference_predictions_are_cached_per_model(
    tmp_path: Path, rt_validated_dir: Path, baseline_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import components.common.models as models
    from monitoring.drift.job import load_reference

    settings = _settings(
        tmp_path / "logs",
        rt_validated_dir,
        model_uri=str(baseline_model_dir),
        model_digest=_digest(baseline_model_dir),
    )
    first = load_reference(settings)
    (cache,) = (tmp_path / "logs" / "sentiment" / "drift" / "reference-cache").glob("*.parquet")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded again")

    monkeypatch.setattr(models, "load_model", refuse)
    second = load_reference(settings)
    assert np.array_equal(first.frame["probability"].to_numpy(), second.frame["probability"].to_numpy())
    cache.unlink()
    with pytest.raises(AssertionError, match="loaded again"):
        load_reference(settings)
