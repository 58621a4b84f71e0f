import json
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import cross_val_score

import ppvae
from ppvae.cli import main
from ppvae.data.errors import DataError
from ppvae.detection import MAX_LEVELS, detection_auc, detection_data, encode_features
from ppvae.numeric_grid import grid_decimals, off_grid_share
from ppvae.synthetic_report import unseen_combinations

COLUMNS = ["age", "education", "education-num", "hours-per-week", "sex", "income"]


@pytest.fixture(scope="module")
def halves(adult_small):
    """Two disjoint samples of 1,000 real Adult rows: 'real' and a stand-in 'synthetic'."""
    df = adult_small[COLUMNS]
    return df.iloc[:1000].reset_index(drop=True), df.iloc[1000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def shifted_report(halves):
    real, other = halves
    shifted = other.assign(**{"hours-per-week": other["hours-per-week"] + 8})
    return ppvae.evaluate(real, shifted, top_columns=4, top_pairs=0)


def test_shifted_column_is_named(shifted_report):
    report = shifted_report
    assert report.columns.index[0] == "hours-per-week"  # most important to the detector
    assert report.columns["auc"].idxmax() == "hours-per-week"  # best detector on one column
    assert report.columns.loc["hours-per-week", "auc"] > 0.6
    assert "'hours-per-week'" in report.giveaways()[0]
    flagged = report.flagged
    assert list(flagged.columns) == [*COLUMNS, "p_synthetic"]
    assert flagged["p_synthetic"].is_monotonic_decreasing and len(flagged) == 10


def test_broken_pair_is_named(halves):
    real, other = halves
    rng = np.random.default_rng(0)
    broken = other.assign(**{"education-num": rng.permutation(other["education-num"].to_numpy())})
    report = ppvae.evaluate(real, broken, top_columns=1, top_pairs=2)  # pairs by association
    top = report.pairs.iloc[0]
    assert {top["column_a"], top["column_b"]} == {"education", "education-num"}
    assert top["lift"] > 0.1
    assert report.columns.loc["education-num", "auc"] < 0.6  # its marginal is untouched
    assert top["association_real"] == pytest.approx(1.0)  # one-to-one in real rows
    assert top["unseen_combinations"] > 0.5  # most shuffled rows pair values never seen
    assert any("'education'" in g and "'education-num'" in g for g in report.giveaways())


def test_detection_auc_is_the_cross_validated_detector(halves):
    """The hand-written folds give cross_val_score's number (the bench's former definition)."""
    real, other = halves
    n = 600
    r, s = encode_features([real.sample(n, random_state=3), other.sample(n, random_state=3)])
    x, y = pd.concat([r, s], ignore_index=True), np.r_[np.zeros(n), np.ones(n)]
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=3)
    expected = cross_val_score(clf, x, y, cv=5, scoring="roc_auc").mean()
    assert detection_auc(real, other, seed=3, max_rows=n) == pytest.approx(expected, abs=1e-12)


def test_same_distribution_is_hard_to_detect(halves):
    assert detection_auc(*halves) < 0.6


def test_encoding_of_datetimes_and_many_levels():
    n = 400
    df = pd.DataFrame(
        {
            "when": pd.date_range("2020-01-01", periods=n, freq="h"),
            "id": [f"user{i}" for i in range(n)],
            "flag": [True, False] * (n // 2),
        }
    )
    (enc,) = encode_features([df])
    assert enc["when"].dtype == float and enc["when"].iloc[1] - enc["when"].iloc[0] == 3.6e12
    assert len(enc["id"].cat.categories) == MAX_LEVELS + 1  # the rest merged into one level
    assert isinstance(enc["flag"].dtype, pd.CategoricalDtype)
    data = detection_data(df, df.sample(frac=1, random_state=0), max_rows=100)
    assert len(data.x) == 200 and data.y.sum() == 100 and len(data.splits) == 5


def test_numeric_grid():
    assert grid_decimals(pd.Series([1.25, 3.5, 7.0])) == 2
    assert grid_decimals(pd.Series([0.29, 0.1])) == 2  # 0.29 * 100 is 28.999999999999996
    assert grid_decimals(pd.Series([3, 10, np.nan])) == 0
    assert grid_decimals(pd.Series(np.random.default_rng(0).normal(size=50))) is None
    assert off_grid_share(pd.Series([1.25, 3.5]), pd.Series([1.2, 1.2345, 2.0, 0.5])) == (
        2,
        pytest.approx(0.25),
    )


def test_unseen_combinations():
    real = pd.DataFrame({"a": ["x", "y", "x"], "b": [1, 2, 1]})
    synth = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": [1, 2, 2, 2]})
    assert unseen_combinations(real, synth, "a", "b") == pytest.approx(0.25)


def test_report_files_and_json(shifted_report, tmp_path):
    path = shifted_report.write(tmp_path / "report")
    files = {p.name for p in path.parent.iterdir()}
    assert files == {"report.md", "report.json", "columns.png", "pairs.png", "scores.png"}
    data = json.loads(path.with_name("report.json").read_text())  # strict JSON: no NaN
    assert data["detection_auc"] == pytest.approx(shifted_report.detection_auc)
    assert data["columns"][0]["column"] == "hours-per-week"
    assert data["privacy"]["exact_copies_holdout"] is None  # no holdout given
    text = path.read_text()
    assert "![columns](columns.png)" in text and "hours-per-week" in text
    assert "detection AUC" in str(shifted_report)
    with pytest.raises(FileExistsError, match="force"):
        shifted_report.write(tmp_path / "report")


def test_bad_input_is_named(halves):
    real, other = halves
    with pytest.raises(DataError, match=r"missing \['sex'\]"):
        ppvae.evaluate(real, other.drop(columns="sex"))
    with pytest.raises(DataError, match="needs 10 or more"):
        ppvae.evaluate(real, other.head(3))


def test_missing_scikit_learn_is_a_clear_error(halves, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"ppvae\[evaluate\]"):
        ppvae.evaluate(*halves)


def test_cli_evaluate(halves, tmp_path, capsys):
    real, other = halves
    paths = {}
    for name, df in (
        ("real", real.iloc[:300]),
        ("synth", other.iloc[:300]),
        ("hold", other.iloc[300:600]),
    ):
        paths[name] = tmp_path / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    out = tmp_path / "report"
    argv = ["evaluate", str(paths["real"]), str(paths["synth"]), "-o", str(out)]
    assert main([*argv, "--holdout", str(paths["hold"]), "--max-rows", "200"]) == 0
    assert "detection AUC" in capsys.readouterr().out
    assert (out / "report.md").is_file() and (out / "columns.png").is_file()
    assert main(argv) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err


def test_diagnose_reports_giveaways_of_a_sample(adult_small, tmp_path):
    from ppvae.diagnostics import write_report

    df = adult_small[COLUMNS].iloc[:200]
    vae = ppvae.TabularVAE(epochs=2, hidden=(32,), latent_dim=2, verbose=False).fit(df)
    path = write_report(vae, df, tmp_path / "diag", synthetic=vae.sample(200, seed=0))
    assert "## What gives synthetic rows away" in path.read_text()
    assert (path.parent / "evaluate" / "report.md").is_file()
