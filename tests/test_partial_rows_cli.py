"""``ppvae sample --given`` and ``ppvae impute``: outputs and exit codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppvae.cli import main


@pytest.fixture(scope="module")
def csv(tmp_path_factory, adult_small):
    path = tmp_path_factory.mktemp("data") / "adult.csv"
    adult_small.head(400).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, csv):
    out = tmp_path_factory.mktemp("runs") / "m"
    args = ["fit", str(csv), "-o", str(out), "--epochs", "2", "--seed", "1", "-q"]
    assert main([*args, "--missing-values", "?"]) == 0
    return out


def test_sample_given_values_and_a_range(model_dir, tmp_path):
    out = tmp_path / "s.csv"
    given = ["--given", "sex=Female", "--given", "age=30:40", "--given", "education-num=13"]
    assert main(["sample", str(model_dir), "-n", "40", *given, "-o", str(out), "--seed", "0"]) == 0
    rows = pd.read_csv(out)
    assert len(rows) == 40 and (rows["sex"] == "Female").all()
    assert rows["age"].between(30, 40).all() and (rows["education-num"] == 13).all()


@pytest.mark.parametrize(
    "given, message",
    [
        ("salary=1", "'salary'"),
        ("sex=Other", "not a level"),
        ("age=300", "outside the range"),
        ("age", "COLUMN=VALUE"),
        ("age=a:b", "pair of numbers"),
    ],
)
def test_sample_given_bad_input_exits_2(model_dir, tmp_path, capsys, given, message):
    code = main(
        ["sample", str(model_dir), "-n", "5", "--given", given, "-o", str(tmp_path / "x.csv")]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_impute_writes_the_completed_table_and_stacked_imputations(model_dir, csv, tmp_path):
    df = pd.read_csv(csv).head(30)
    df.loc[[0, 1], "age"] = np.nan
    df.loc[[2], "sex"] = np.nan
    incomplete = tmp_path / "incomplete.csv"
    df.to_csv(incomplete, index=False)
    one = tmp_path / "completed.csv"
    assert main(["impute", str(model_dir), "--data", str(incomplete), "-o", str(one)]) == 0
    done = pd.read_csv(one)
    assert list(done.columns) == list(df.columns) and len(done) == 30
    assert done["age"].notna().all() and done["sex"].notna().all()
    assert (done.loc[3:, "age"] == df.loc[3:, "age"]).all()
    many = tmp_path / "many.csv"
    args = ["impute", str(model_dir), "--data", str(incomplete), "-o", str(many), "-m", "3"]
    assert main(args) == 0
    stacked = pd.read_csv(many)
    assert list(stacked.columns) == ["imputation", *df.columns] and len(stacked) == 90
    assert main(args) == 2  # exists: --force to replace
    assert main([*args, "--force"]) == 0


def test_impute_bad_input_exits_2(model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"salary": [1.0, np.nan]}).to_csv(bad, index=False)
    args = ["impute", str(model_dir), "--data", str(bad), "-o", str(tmp_path / "o.csv")]
    assert main(args) == 2
    assert "'salary'" in capsys.readouterr().err
    assert main([*args[:-2], "-o", str(tmp_path / "o.csv"), "-m", "0"]) == 2
