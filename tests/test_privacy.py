import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

import ppvae
from ppvae.cli import main
from ppvae.data.errors import DataError
from ppvae.privacy import (
    MIN_DCR_RATIO,
    closest_distances,
    exact_copy_rate,
    id_like_columns,
    privacy_report,
)

COLUMNS = ["age", "workclass", "education", "hours-per-week", "sex", "income"]


@pytest.fixture(scope="module")
def split(adult_small):
    """Disjoint real Adult rows: 1,000 'training', 500 holdout, 500 more never seen."""
    df = adult_small[COLUMNS]
    return df.iloc[:1000], df.iloc[1000:1500], df.iloc[1500:]


def test_exact_copy_rate():
    ref = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    src = pd.DataFrame({"a": [1, 2, 3, 1], "b": ["x", "x", "z", "x"]})
    assert exact_copy_rate(src, ref) == 0.75


def test_closest_distances_match_brute_force():
    rng = np.random.default_rng(0)
    ref, queries = rng.normal(size=(300, 7)), rng.normal(size=(1100, 7))
    queries[:5] = ref[:5]  # exact copies: distance 0 (up to rounding)
    expected = cdist(queries, ref).min(1)
    np.testing.assert_allclose(closest_distances(queries, ref, chunk=256), expected, atol=1e-6)


def test_dcr_by_hand():
    """Numbers standardised by the training mean and std (here 2), categories one-hot."""
    train = pd.DataFrame({"x": [0.0, 2.0, 4.0], "c": ["a", "b", "a"]})
    synth = pd.DataFrame({"x": [1.0, 4.0], "c": ["a", "a"]})  # 0.5 from (0, a); a copy
    holdout = pd.DataFrame({"x": [3.0, 0.0], "c": ["b", "b"]})  # 0.5 from (2, b); 1 from (2, b)
    report = privacy_report(train, synth, holdout)
    assert report.exact_copies == 0.5 and report.exact_copies_holdout == 0.0
    assert report.dcr_synth == pytest.approx(0.25, abs=1e-6)
    assert report.dcr_holdout == pytest.approx(0.75)
    assert report.dcr_ratio == pytest.approx(1 / 3, abs=1e-5)
    assert not report.passed and len(report.problems) == 2


def test_copies_of_training_rows_fail(split):
    train, holdout, _ = split
    copies = train.sample(600, replace=True, random_state=0)  # a model that memorised
    report = privacy_report(train, copies, holdout)
    assert report.exact_copies == 1.0 and report.dcr_ratio < 0.01
    assert not report.passed
    assert any("closer to training rows" in p for p in report.problems)
    assert "FAILS" in str(report)


def test_near_copies_fail_on_distance_alone(split):
    train, holdout, _ = split
    rng = np.random.default_rng(0)
    near = train.assign(age=train["age"] + rng.normal(0, 0.3, len(train)))  # no exact copy left
    report = privacy_report(train, near, holdout)
    assert report.exact_copies == 0.0
    assert report.dcr_ratio < MIN_DCR_RATIO and not report.passed


def test_new_real_rows_pass(split):
    train, holdout, unseen = split
    report = privacy_report(train, unseen, holdout)
    assert report.passed, str(report)
    assert 0.8 < report.dcr_ratio < 1.25


def test_copied_identifiers_fail(split):
    train, holdout, unseen = split
    train = train.assign(user=[f"u{i:05d}" for i in range(len(train))])
    holdout = holdout.assign(user=[f"h{i:05d}" for i in range(len(holdout))])
    copied = unseen.assign(user=train["user"].sample(len(unseen), random_state=0).to_numpy())
    assert id_like_columns(train) == ["user"]  # age repeats; the rest are categories
    report = privacy_report(train, copied, holdout)
    assert report.id_copies == {"user": 1.0} and report.id_copies_holdout == {"user": 0.0}
    assert [p for p in report.problems if "'user'" in p]


def test_without_holdout_there_is_no_reference(split):
    train, _, unseen = split
    report = privacy_report(train, unseen)
    assert np.isnan(report.dcr_ratio) and report.passed
    with pytest.raises(DataError, match="lacks the training columns"):
        privacy_report(train, unseen.drop(columns="sex"))


def test_evaluate_reports_privacy(split, monkeypatch):
    monkeypatch.setattr("ppvae.synthetic_report.sdmetrics_available", lambda: False)
    train, holdout, _ = split
    report = ppvae.evaluate(train, train.iloc[:300], holdout=holdout, top_columns=2, max_rows=200)
    assert report.privacy.exact_copies == 1.0
    assert "FAILS" in report.headline()["DCR ratio"]
    assert report.quality is None and "pip install sdmetrics" in report.notes[0]


@pytest.fixture(scope="module")
def saved_model(split, tmp_path_factory):
    train, holdout, _ = split
    root = tmp_path_factory.mktemp("privacy")
    train.to_csv(root / "train.csv", index=False)
    holdout.to_csv(root / "holdout.csv", index=False)
    vae = ppvae.TabularVAE(epochs=2, hidden=(32,), latent_dim=2, verbose=False).fit(train)
    vae.save(root / "model")
    return root


def test_cli_privacy_check(saved_model, capsys, monkeypatch):
    root = saved_model
    out = root / "synth.csv"
    argv = ["sample", str(root / "model"), "-n", "300", "-o", str(out), "--privacy-check"]
    assert main(argv) == 2
    assert "--holdout" in capsys.readouterr().err
    argv += ["--data", str(root / "train.csv"), "--holdout", str(root / "holdout.csv")]
    assert main(argv) == 0  # a barely trained model copies nothing
    assert "privacy check passed" in capsys.readouterr().err and out.is_file()

    train = pd.read_csv(root / "train.csv")
    monkeypatch.setattr(ppvae.TabularVAE, "sample", lambda self, n, seed=None: train.head(n))
    out.unlink()
    assert main(argv) == 2  # a model that memorised
    err = capsys.readouterr().err
    assert "privacy check failed, no rows written" in err and "closer to training rows" in err
    assert not out.exists()
