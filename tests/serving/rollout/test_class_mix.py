"""The canary analysis of a multi-class model: the class mix of canary and stable is compared.

Real four-class predictors (``python -m serving``, the UCI source x sentiment task) run as three revisions:
stable (the four-class TF-IDF baseline), a canary serving the same model, and a canary serving a model
retrained on labels that lean to one class. Each gets the same balanced texts; a real Prometheus (loopback,
1 s scrapes) scrapes their ``/metrics``; ``analyse`` must roll back the shifted canary on its class mix, and
promote the unshifted one. Binary tracks keep the positive-rate check.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.rollout.analysis import Verdict, decide
from serving.rollout.settings import AnalysisSettings
from tests.conftest import free_port, require_binary, wait_for_http
from tests.serving.rollout.test_analysis import STABLE as BINARY_STABLE
from tests.serving.rollout.test_canary import (
    STABLE,
    _prometheus_config,
    _query,
    _start_predictor,
    _stop,
    _wait_until,
    analyse,
)

CLASSES = (
    "amazon-negative",
    "amazon-positive",
    "imdb-negative",
    "imdb-positive",
)  # data/uci_source_sentiment
LEANING = "imdb-positive"  # the class the shifted canary's model over-predicts
TEXTS = 400  # sent to every revision, two per request: 200 requests each (min_requests 100)
SAME = "sentiment-predictor-00002"
SHIFTED = "sentiment-predictor-00003"
SETTINGS = AnalysisSettings(canary_selector='revision="b"', stable_selector='revision="a"', min_requests=100)
BASE = replace(
    BINARY_STABLE,
    requests=400,
    predictions=400,
    positive=0,
    confidence_sum=400 * 0.8,
    confidence_count=400,
    class_counts=dict(zip(CLASSES, (100.0, 100.0, 100.0, 100.0), strict=True)),
)


def test_class_mix_decides_for_multiclass_and_positive_rate_for_binary() -> None:
    same = replace(
        BASE, selector='revision="b"', class_counts=dict(zip(CLASSES, (95, 105, 98, 102), strict=True))
    )
    decision = decide(same, BASE, SETTINGS)
    assert decision.verdict is Verdict.PROMOTE
    assert [c.name for c in decision.checks if "shift" in c.name] == [
        "class mix shift",
        "mean confidence shift",
    ]
    shifted = replace(same, class_counts=dict(zip(CLASSES, (40, 60, 60, 240), strict=True)))
    decision = decide(shifted, BASE, SETTINGS)
    assert decision.verdict is Verdict.ROLLBACK
    (reason,) = decision.reasons
    assert reason.startswith(
        "class mix shift: canary 0.6000 not |canary - stable| share of every class <= 0.15"
    )
    assert "'imdb-positive' 0.3500" in reason and "Jensen-Shannon distance" in reason
    binary = replace(BASE, positive=200, class_counts={"negative": 200.0, "positive": 200.0})
    decision = decide(
        replace(binary, positive=320, class_counts={"negative": 80.0, "positive": 320.0}), binary, SETTINGS
    )
    assert decision.verdict is Verdict.ROLLBACK and decision.reasons[0].startswith(
        "positive rate shift: canary"
    )


def _leaning_model(validated_dir: Path, out: Path) -> Path:
    """A four-class TF-IDF model trained on labels where two thirds of the other classes became ``LEANING``:
    a real retrained model whose class mix leans to one class."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from components.common.data import load_split
    from components.common.models import save_tfidf

    train = load_split(validated_dir / "dataset.parquet", "train")
    y = train["label"].to_numpy(dtype=int).copy()
    flip = (y != CLASSES.index(LEANING)) & (np.random.default_rng(0).random(len(y)) < 2 / 3)
    y[flip] = CLASSES.index(LEANING)
    pipeline = Pipeline(
        [
            ("hashing", HashingVectorizer(n_features=1 << 16, alternate_sign=False, norm=None)),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(train["text"].tolist(), y)
    out.mkdir(parents=True)
    save_tfidf(pipeline, out, {"labels": list(CLASSES)})
    return out


def _send(address: str, texts: list[str]) -> None:
    """``texts`` to one predictor, two per V1 request, eight requests in flight."""
    with httpx.Client(timeout=30) as client:

        def post(i: int) -> int:
            url = f"http://{address}/v1/models/sentiment:predict"
            return client.post(url, json={"instances": texts[i : i + 2]}).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(post, range(0, len(texts), 2))) == {200}


@pytest.fixture(scope="module")
def prometheus_url(four_class_model_dirs: dict[str, Path], four_class_validated_dir: Path) -> Iterator[str]:
    from components.common.data import load_split
    from components.common.models import load_model

    prometheus_bin = require_binary("prometheus")
    assert load_model(four_class_model_dirs["tfidf"]).labels.names == CLASSES
    workdir = Path(tempfile.mkdtemp(prefix="sentimentops-classmix-"))
    leaning = _leaning_model(four_class_validated_dir, workdir / "leaning" / "model")
    test = load_split(four_class_validated_dir / "dataset.parquet", "test")
    texts = test["text"].tolist()[:TEXTS]
    procs: list[subprocess.Popen] = []
    try:
        targets = {}
        for revision, model_dir in (
            (STABLE, four_class_model_dirs["tfidf"]),
            (SAME, four_class_model_dirs["tfidf"]),
            (SHIFTED, leaning),
        ):
            proc, address = _start_predictor(model_dir, workdir / f"{revision}.log")
            procs.append(proc)
            targets[revision] = address
        for proc, address in zip(procs, targets.values(), strict=True):
            wait_for_http(f"http://{address}/v2/health/ready", timeout=120, process=proc)
            _send(address, texts)
        config = workdir / "prometheus.yml"
        config.write_text(_prometheus_config(targets))
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/-/ready", timeout=30, process=procs[-1])
        _wait_until(
            lambda: len(_query(url, f'sentiment_predictions_total{{label="{LEANING}"}}')) == 3,
            30,
            "3 targets",
        )
        yield url
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("canary", "code", "expected"),
    [
        (SHIFTED, 2, "verdict: ROLLBACK (exit 2): class mix shift: canary"),
        (SAME, 0, "verdict: PROMOTE (exit 0)"),
    ],
)
def test_canary_whose_class_mix_shifted_is_rolled_back(
    prometheus_url: str, canary: str, code: int, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, _ = analyse(prometheus_url, canary, capsys=capsys)
    assert got == code and expected in out, out
    assert "class mix shift" in out and "positive rate shift" not in out
    if canary == SHIFTED:  # the reason names the class whose share moved most
        assert "class mix shift: canary" in out and f"'{LEANING}'" in out.split("verdict:")[1], out
