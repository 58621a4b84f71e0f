"""Regression tests for the seventeen input defects of issue 19 (one section per item)."""

from __future__ import annotations

import bz2
import datetime
import decimal
import gzip
import json
import lzma
import os
import signal
import stat
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.cli import main
from ppvae.data.errors import DataError
from ppvae.outputs import OutputError, atomic_dir, write_table
from ppvae.params import ParameterError
from ppvae.persistence import ModelFormatError

TINY = {"epochs": 1, "hidden": (8,), "latent_dim": 2, "verbose": False}
N = 40


def fit(df: pd.DataFrame, **params) -> ppvae.TabularVAE:
    return ppvae.TabularVAE(**{**TINY, **params}).fit(df)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.DataFrame({"x": np.linspace(0.0, 1.0, N), "c": ["a", "b", "c", "d"] * (N // 4)})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, table):
    return fit(table).save(tmp_path_factory.mktemp("m") / "model")


@pytest.fixture(scope="module")
def csv(tmp_path_factory, table):
    path = tmp_path_factory.mktemp("d") / "t.csv"
    table.to_csv(path, index=False)
    return path


def no_training(monkeypatch):
    def refuse(self, df):
        raise AssertionError("training started before the output was checked")

    monkeypatch.setattr(ppvae.TabularVAE, "fit", refuse)


# 1. time-zone aware datetimes ------------------------------------------------------------
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_tz_aware_datetimes_sample_and_diagnose(tmp_path, tz):
    from ppvae.diagnostics.report import write_report

    df = pd.DataFrame({"t": pd.date_range("2020", periods=50, freq="h", tz=tz)})
    vae = fit(df)
    synth = ppvae.load(vae.save(tmp_path / "m")).sample(20, seed=0)
    assert synth["t"].dtype == df["t"].dtype
    assert synth["t"].between(df["t"].min(), df["t"].max()).all()
    assert write_report(vae, df, tmp_path / "r").is_file()


def test_datetime_units_other_than_ns_keep_their_values():
    df = pd.DataFrame({"t": pd.date_range("2020", periods=50, freq="D").astype("datetime64[s]")})
    synth = fit(df).sample(20, seed=0)
    assert synth["t"].dtype == df["t"].dtype
    assert synth["t"].between(df["t"].min(), df["t"].max()).all()


# 2. timedelta, Period, Decimal, bytes, Timestamp objects, tuples --------------------------
@pytest.mark.parametrize(
    "values, dtype",
    [
        (pd.to_timedelta(np.arange(N), unit="min"), "timedelta64[ns]"),
        (pd.period_range("2020-01", periods=N, freq="M"), "period[M]"),
        (pd.Series(list(pd.date_range("2020", periods=N)), dtype=object), "datetime64[ns]"),
        ([datetime.date(2020, 1, 1 + i % 28) for i in range(N)], "datetime64[ns]"),
    ],
    ids=["timedelta", "period", "timestamp-objects", "date-objects"],
)
def test_time_types_survive_save_and_load(tmp_path, values, dtype):
    df = pd.DataFrame({"v": values})
    vae = fit(df)
    synth = ppvae.load(vae.save(tmp_path / "m")).sample(10, seed=0)
    assert str(synth["v"].dtype) == dtype
    real = pd.Series(values)
    if dtype.startswith("period"):
        real = real.dt.to_timestamp()
        assert synth["v"].dt.to_timestamp().between(real.min(), real.max()).all()
    else:
        real = pd.to_datetime(real) if dtype.startswith("datetime") else real
        assert synth["v"].between(real.min(), real.max()).all()


@pytest.mark.parametrize(
    "values",
    [
        pd.to_timedelta(np.arange(N), unit="min"),
        pd.period_range("2020-01", periods=N, freq="M"),
        np.arange(N, dtype=np.uint64) // np.uint64(2) * np.uint64(3) + np.uint64(2**63),
    ],
    ids=["timedelta", "period", "uint64"],
)
def test_diagnose_handles_converted_types(tmp_path, values):
    from ppvae.diagnostics.report import write_report

    df = pd.DataFrame({"v": values, "x": np.arange(N) * 1.5})
    assert write_report(fit(df), df, tmp_path / "r").is_file()


def test_decimal_is_modelled_as_float_with_a_warning(tmp_path):
    df = pd.DataFrame({"d": [decimal.Decimal(i) / 4 for i in range(N)]})
    with pytest.warns(UserWarning, match="'d' holds Decimal values"):
        vae = fit(df)
    synth = ppvae.load(vae.save(tmp_path / "m")).sample(10, seed=0)
    assert synth["d"].dtype == np.float64 and synth["d"].between(0, (N - 1) / 4).all()


@pytest.mark.parametrize(
    "cells, message",
    [
        ([b"a", b"b"], "'v' holds bytes; decode them"),
        ([(1, 2), (3, 4)], "'v' holds tuple values"),
        ([pd.Interval(0, 1), pd.Interval(1, 2)], "cannot store"),
    ],
    ids=["bytes", "tuple", "interval"],
)
def test_unstorable_cells_are_refused_before_training(monkeypatch, cells, message):
    from ppvae import training

    def refuse(*args, **kwargs):
        raise AssertionError("training started on a table that cannot be saved")

    monkeypatch.setattr(training, "train", refuse)
    with pytest.raises(DataError, match=message):
        fit(pd.DataFrame({"v": cells * (N // 2)}))


# 3. unwritable outputs are found before the work -----------------------------------------
def test_fit_checks_the_output_before_training(csv, tmp_path, monkeypatch, capsys):
    no_training(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["fit", str(csv), "-o", str(blocker / "model"), "-q"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert main(["fit", str(csv), "-o", str(tmp_path / "model"), "-q"]) == 2
    assert "no permission to write" in capsys.readouterr().err


def test_sample_and_diagnose_check_the_output_before_loading(model_dir, csv, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["sample", str(model_dir), "-n", "5", "-o", str(blocker / "s.csv")]) == 2
    assert main(["diagnose", str(model_dir), "--data", str(csv), "-o", str(blocker / "r")]) == 2
    assert capsys.readouterr().err.count("is a file, not a folder") == 2


# 4. YAML billion laughs ------------------------------------------------------------------
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)


def test_billion_laughs_spec_is_refused(csv, tmp_path, capsys):
    spec = tmp_path / "laughs.yaml"
    spec.write_text(LAUGHS)
    assert main(["fit", str(csv), "-o", str(tmp_path / "m"), "--spec", str(spec)]) == 2
    assert "expands to more than" in capsys.readouterr().err
    flat = "{" + LAUGHS.replace("\n", ", ").rstrip(", ") + "}"
    assert main(["fit", str(csv), "-o", str(tmp_path / "m"), "--set", f"kinds={flat}"]) == 2
    assert "expands to more than" in capsys.readouterr().err


# 5. CSV variants -------------------------------------------------------------------------
def test_semicolon_file_is_sniffed_with_a_warning(table, tmp_path, capsys):
    path = tmp_path / "semi.csv"
    table.to_csv(path, sep=";", index=False)
    out = tmp_path / "m"
    assert main(["fit", str(path), "-o", str(out), "--epochs", "1", "-q"]) == 0
    assert "guessed the separator ';'" in capsys.readouterr().err
    assert ppvae.load(out).columns_ == ["x", "c"]
    out2 = tmp_path / "m2"
    assert main(["fit", str(path), "-o", str(out2), "--epochs", "1", "--sep", ";", "-q"]) == 0
    assert "guessed" not in capsys.readouterr().err


def test_date_columns_are_parsed_with_a_warning(tmp_path):
    from ppvae.data.reader import read_table

    path = tmp_path / "dates.csv"
    pd.DataFrame(
        {"day": pd.date_range("2021-03-01", periods=N).strftime("%Y-%m-%d"), "v": range(N)}
    ).to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"parsed column\(s\) \['day'\] as dates"):
        df = read_table(path)
    assert df["day"].dtype == "datetime64[ns]" and df["v"].dtype == np.int64


def test_duplicate_headers_are_refused(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n4,5,6\n")
    assert main(["fit", str(path), "-o", str(tmp_path / "m")]) == 2
    assert "duplicate column name(s) ['a']" in capsys.readouterr().err


def test_latin1_files_are_read(tmp_path, capsys):
    from ppvae.data.reader import read_table

    path = tmp_path / "latin.csv"
    path.write_bytes(b"stadt,n\n" + "Zürich,1\nGenève,2\n".encode("latin-1") * 10)
    with pytest.warns(UserWarning, match="read as latin-1"):
        df = read_table(path)
    assert df["stadt"].iloc[0] == "Zürich"
    assert read_table(path, encoding="latin-1")["stadt"].iloc[1] == "Genève"
    assert main(["fit", str(path), "-o", str(tmp_path / "m"), "--encoding", "utf-8"]) == 2
    assert "--encoding latin-1" in capsys.readouterr().err


def test_missing_values_option_does_not_swallow_the_data(csv, tmp_path):
    out = tmp_path / "m"
    argv = ["fit", "--missing-values", "?", str(csv), "-o", str(out), "--epochs", "1", "-q"]
    assert main(argv) == 0 and ppvae.load(out).missing_values == ["?"]


def test_diagnose_help_shows_data_as_required(capsys):
    from ppvae.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    usage = commands["diagnose"].format_usage()
    assert "--data DATA" in usage and "[--data DATA]" not in usage
    assert "--missing-values '?'" in commands["fit"].format_help()  # quoted: not a shell glob


# 6. one validation of every parameter, whatever the door ---------------------------------
BAD_PARAMS = [
    ("hidden", 5, "hidden must be a list"),
    ("val_fraction", "0.1", "val_fraction must be in"),
    ("val_fraction", 0.99, "val_fraction must be in"),
    ("seed", "x", "seed must be a non-negative integer"),
    ("seed", -1, "seed must be a non-negative integer"),
    ("kinds", 5, "kinds must be a mapping"),
    ("missing_values", 5, "missing_values must be a list"),
    ("device", "tpu", "device must be a device name"),
    ("lr", True, "lr must be a positive learning rate"),
    ("likelihood", "gauss", "likelihood must be one of"),
    ("verbose", "yes", "verbose must be true or false"),
]


@pytest.mark.parametrize("name, value, message", BAD_PARAMS)
def test_bad_parameters_through_the_constructor(table, name, value, message):
    with pytest.raises(ParameterError, match=message):
        ppvae.TabularVAE(**{**TINY, name: value}).fit(table)


@pytest.mark.parametrize("name, value, message", BAD_PARAMS)
def test_bad_parameters_through_a_spec(tmp_path, name, value, message):
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({name: value}))  # JSON is YAML
    with pytest.raises(ParameterError, match=message):
        ppvae.TabularVAE.from_spec(spec)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "hidden=5"], "hidden must be a list"),
        (["--set", "val_fraction=abc"], "val_fraction must be in"),
        (["--set", "kinds=5"], "kinds must be a mapping"),
        (["--set", "lr=true"], "lr must be a positive learning rate"),
        (["--device", "tpu"], "device must be a device name"),
        (["--seed", "-1"], "seed must be a non-negative integer"),
    ],
)
def test_bad_parameters_through_the_command_line(csv, tmp_path, monkeypatch, capsys, argv, message):
    no_training(monkeypatch)
    assert main(["fit", str(csv), "-o", str(tmp_path / "m"), *argv]) == 2
    assert message in capsys.readouterr().err


# 7. --force replaces only a ppvae output of the same kind --------------------------------
def test_force_never_replaces_the_model_with_a_sample(model_dir, capsys):
    argv = ["sample", str(model_dir), "-n", "5", "-o", str(model_dir), "--force"]
    assert main(argv) == 2
    assert "is not a ppvae table" in capsys.readouterr().err
    assert ppvae.load(model_dir).sample(2, seed=0).shape == (2, 2)


def test_force_never_deletes_a_users_folder(csv, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    no_training(monkeypatch)
    assert main(["fit", str(csv), "-o", str(folder), "--force"]) == 2
    assert "is not a ppvae model" in capsys.readouterr().err
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_force_replaces_a_model_by_a_model(table, tmp_path):
    path = fit(table).save(tmp_path / "m")
    fit(table, seed=3).save(path, force=True)
    assert ppvae.load(path).seed == 3


# 8. huge samples: streamed in chunks, refused when the disk cannot hold them -------------
def test_huge_sample_is_refused_before_writing(model_dir, tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 0, 10**6))
    out = tmp_path / "s.csv"
    assert main(["sample", str(model_dir), "-n", "1000000000000", "-o", str(out)]) == 2
    assert "only 0.001 GB are free" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sample_is_streamed_in_chunks(model_dir, tmp_path, monkeypatch):
    import ppvae.cli as cli

    sizes = []
    original = ppvae.TabularVAE.sample

    def record(self, n, seed=None, condition=None):
        sizes.append(n)
        return original(self, n, seed=seed, condition=condition)

    monkeypatch.setattr(cli, "SAMPLE_CHUNK", 100)
    monkeypatch.setattr(ppvae.TabularVAE, "sample", record)
    out = tmp_path / "s.csv"
    assert main(["sample", str(model_dir), "-n", "250", "-o", str(out), "--seed", "2"]) == 0
    assert sizes == [100, 100, 50]
    written = pd.read_csv(out)
    assert len(written) == 250
    pd.testing.assert_frame_equal(written.head(100), original(ppvae.load(model_dir), 100, seed=2))


# 9. unsigned and large integers ----------------------------------------------------------
def test_uint64_at_and_above_2_63_round_trips_exactly(tmp_path):
    big = np.arange(N, dtype=np.uint64) * np.uint64(3) + np.uint64(2**63 + 1)
    df = pd.DataFrame({"u": big, "small": np.arange(N, dtype=np.uint8) % 3})
    synth = ppvae.load(fit(df).save(tmp_path / "m")).sample(50, seed=0)
    assert synth["u"].dtype == np.uint64 and synth["small"].dtype == np.uint8
    assert all(int(big.min()) <= int(v) <= int(big.max()) for v in synth["u"])
    assert set(synth["small"]) <= {0, 1, 2}


def test_nullable_and_negative_integers_keep_their_dtype():
    df = pd.DataFrame(
        {
            "i": pd.array([None, *range(-(2**62), -(2**62) + N - 1)], dtype="Int64"),
            "n": np.arange(N, dtype=np.int16) - 100,
        }
    )
    # consecutive integers read as row keys; declared integer, they are modelled as data
    synth = fit(df, kinds={"i": "integer", "n": "integer"}).sample(50, seed=0)
    assert synth["i"].dtype == "Int64" and synth["n"].dtype == np.int16
    observed = synth["i"].dropna()
    assert ((observed >= -(2**62)) & (observed <= -(2**62) + N)).all()
    assert synth["n"].between(-100, N - 101).all()


# 10. sample(condition=...) is checked ----------------------------------------------------
@pytest.mark.parametrize(
    "condition, message",
    [
        ({"zz": torch.zeros(4, 2)}, "which the model does not sample"),
        ({"z": "abc"}, "must be numbers"),
        ({"z": torch.zeros(4, 3)}, r"must have shape \[n, 2\]"),
        ({"x_cat": torch.full((4, 1), 7)}, "outside what the site can take"),
        ({"z": torch.full((4, 2), float("nan"))}, "NaN or inf"),
        ([1, 2], "condition must be a mapping"),
    ],
)
def test_sample_condition_is_validated(model_dir, condition, message):
    vae = ppvae.load(model_dir)
    with pytest.raises(ParameterError, match=message):
        vae.sample(4, condition=condition)


# 11. diagnose on a tiny table ------------------------------------------------------------
def test_diagnose_on_one_row_is_a_clear_error(model_dir, table, tmp_path, capsys):
    path = tmp_path / "one.csv"
    table.head(1).to_csv(path, index=False)
    assert main(["diagnose", str(model_dir), "--data", str(path), "-o", str(tmp_path / "r")]) == 2
    assert "diagnose needs at least 10 rows" in capsys.readouterr().err


# 12. model integrity ---------------------------------------------------------------------
@pytest.fixture
def saved(table, tmp_path):
    return fit(table).save(tmp_path / "m")


def test_flipped_bit_in_weights_is_detected(saved):
    data = bytearray((saved / "weights.pt").read_bytes())
    data[-40] ^= 0x01
    (saved / "weights.pt").write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="weights.pt changed since the model was saved"):
        ppvae.load(saved)


def test_edited_transforms_are_detected(saved):
    text = (saved / "transformer.json").read_text().replace('"a"', '"A"')
    (saved / "transformer.json").write_text(text)
    with pytest.raises(ModelFormatError, match="transformer.json changed"):
        ppvae.load(saved)


def test_non_finite_weights_are_refused(saved):
    from ppvae.persistence import write_checksums

    state = torch.load(saved / "weights.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(state, saved / "weights.pt")
    write_checksums(saved)  # a consistent but poisoned model
    with pytest.raises(ModelFormatError, match="non-finite"):
        ppvae.load(saved)


def test_a_directory_in_place_of_history_is_refused(saved):
    from ppvae.persistence import write_checksums

    (saved / "history.csv").unlink()
    (saved / "history.csv").mkdir()
    with pytest.raises(ModelFormatError, match="history.csv is missing or is not a file"):
        ppvae.load(saved)
    write_checksums(saved)  # checksums rewritten without it: still refused
    with pytest.raises(ModelFormatError, match="history.csv is not a file"):
        ppvae.load(saved)


# 13. compressed outputs follow the extension ---------------------------------------------
@pytest.mark.parametrize(
    "suffix, opener",
    [(".csv.gz", gzip.open), (".csv.bz2", bz2.open), (".csv.xz", lzma.open), (".csv.zip", None)],
)
def test_sample_output_is_compressed_by_its_extension(model_dir, tmp_path, suffix, opener):
    out = tmp_path / f"s{suffix}"
    assert main(["sample", str(model_dir), "-n", "30", "-o", str(out), "--seed", "1"]) == 0
    if opener is None:
        with zipfile.ZipFile(out) as zf:
            assert zf.namelist() == ["s.csv"]
    else:
        with opener(out, "rt") as fh:
            assert fh.readline().strip() == "x,c"
    from ppvae.data.reader import read_table  # what `ppvae fit` reads

    assert read_table(out).shape == (30, 2)


def test_unknown_output_extension_is_refused(model_dir, tmp_path, capsys):
    assert main(["sample", str(model_dir), "-n", "5", "-o", str(tmp_path / "s.xlsx")]) == 2
    assert "use a .csv name" in capsys.readouterr().err


# 14. outputs honour the umask ------------------------------------------------------------
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_outputs_honour_the_umask(umask_022, table, model_dir, csv, tmp_path):
    from ppvae.diagnostics.report import write_report

    vae = fit(table)
    model = vae.save(tmp_path / "m")
    assert stat.S_IMODE(model.stat().st_mode) == 0o755
    assert stat.S_IMODE((model / "weights.pt").stat().st_mode) == 0o644
    out = tmp_path / "s.csv"
    assert main(["sample", str(model_dir), "-n", "5", "-o", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    report = write_report(vae, table, tmp_path / "r").parent
    assert stat.S_IMODE(report.stat().st_mode) == 0o755


# 15. list/dict cells, MultiIndex columns, complex numbers --------------------------------
@pytest.mark.parametrize(
    "df, message",
    [
        (pd.DataFrame({"l": [[1], [2]] * 20}), "'l' holds list values"),
        (pd.DataFrame({"d": [{"a": 1}, {"b": 2}] * 20}), "'d' holds dict values"),
        (pd.DataFrame({"c": np.arange(40) + 1j}), "'c' holds complex numbers"),
        (pd.DataFrame({"c": [1 + 2j, 3.0] * 20}), "'c' holds complex numbers"),
        (
            pd.DataFrame(
                np.ones((40, 2)), columns=pd.MultiIndex.from_tuples([("a", "b"), ("a", "c")])
            ),
            "multi-level",
        ),
        (pd.DataFrame({pd.Timestamp("2020"): [1.0] * 40}), "not strings or numbers"),
    ],
)
def test_unmodellable_cells_and_columns_are_refused(df, message):
    with pytest.raises(DataError, match=message):
        fit(df)


# 16. tiny tables -------------------------------------------------------------------------
@pytest.mark.parametrize("rows", [1, 2])
def test_tiny_tables_warn_that_samples_are_copies(table, rows):
    with pytest.warns(UserWarning, match=f"only {rows} row"):
        fit(table.head(rows))


# 17. SIGTERM while writing ---------------------------------------------------------------
def test_sigterm_during_a_table_write_leaves_no_temporary(table, tmp_path):
    def chunks():
        yield table
        os.kill(os.getpid(), signal.SIGTERM)
        yield table

    with pytest.raises(SystemExit):
        write_table(chunks(), tmp_path / "s.csv")
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_during_a_folder_write_leaves_no_temporary(tmp_path):
    with pytest.raises(SystemExit):
        with atomic_dir(tmp_path / "m", "model") as tmp:
            (tmp / "ppvae.json").write_text("{}")
            os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []


def test_output_error_is_a_value_error():
    assert issubclass(OutputError, ValueError)


def test_parquet_output_needs_pyarrow_or_round_trips(model_dir, tmp_path, capsys):
    out = tmp_path / "s.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert main(["sample", str(model_dir), "-n", "5", "-o", str(out)]) == 2
        assert "pip install pyarrow" in capsys.readouterr().err
        assert not out.exists()
    else:
        assert main(["sample", str(model_dir), "-n", "5", "-o", str(out)]) == 0
        assert pd.read_parquet(out).shape == (5, 2)


def test_stdout_sample_has_one_header(model_dir, monkeypatch, capsys):
    import ppvae.cli as cli

    monkeypatch.setattr(cli, "SAMPLE_CHUNK", 4)
    assert main(["sample", str(model_dir), "-n", "10", "-o", "-", "--seed", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "x,c" and len(lines) == 11 and lines.count("x,c") == 1


def test_demo_force_never_deletes_a_users_folder(tmp_path, monkeypatch, capsys):
    from ppvae import datasets

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    monkeypatch.setattr(datasets, "load", lambda name: pytest.fail("demo started"))
    assert main(["demo", "-o", str(folder), "--force", "-q"]) == 2
    assert "is not a ppvae demo" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep"


# found by the hostile CLI probe after the fixes above -------------------------------------
def test_binary_file_without_nul_bytes_is_refused(tmp_path, capsys):
    path = tmp_path / "random.csv"
    path.write_bytes(bytes(range(1, 32)) * 8 + b"abc")
    assert main(["fit", str(path), "-o", str(tmp_path / "m")]) == 2
    assert "contains binary data" in capsys.readouterr().err


def test_rows_with_more_fields_than_the_header_are_refused(tmp_path, capsys):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2,3,4\n5,6\n")
    assert main(["fit", str(path), "-o", str(tmp_path / "m")]) == 2
    assert "more fields than the header" in capsys.readouterr().err


def test_demo_checks_seed_without_an_epochs_option(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "d"), "--seed", "-1", "-q"]) == 2
    assert "seed must be a non-negative integer" in capsys.readouterr().err


def test_force_replaces_a_table_file_but_not_other_files(model_dir, tmp_path, capsys):
    table = tmp_path / "old.csv.gz"
    table.write_bytes(gzip.compress(b"a\n1\n"))
    assert main(["sample", str(model_dir), "-n", "3", "-o", str(table), "--force"]) == 0
    assert pd.read_csv(table).shape == (3, 2)
    notes = tmp_path / "notes"
    notes.write_text("keep")
    assert main(["sample", str(model_dir), "-n", "3", "-o", str(notes), "--force"]) == 2
    assert "is not a ppvae table" in capsys.readouterr().err and notes.read_text() == "keep"
