import subprocess
import sys

import pandas as pd
import pytest

from ppvae.cli import main


@pytest.fixture(scope="module")
def csv(tmp_path_factory, adult_small):
    path = tmp_path_factory.mktemp("data") / "adult.csv"
    adult_small.head(600).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, csv):
    out = tmp_path_factory.mktemp("runs") / "m"
    assert (
        main(
            [
                "fit",
                str(csv),
                "-o",
                str(out),
                "--epochs",
                "2",
                "--seed",
                "1",
                "--missing-values",
                "?",
                "-q",
            ]
        )
        == 0
    )
    return out


def test_help_for_every_command():
    for argv in (
        ["--help"],
        ["fit", "--help"],
        ["sample", "--help"],
        ["diagnose", "--help"],
        ["demo", "--help"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "ppvae", *argv], capture_output=True, text=True
        )
        assert proc.returncode == 0 and "usage: ppvae" in proc.stdout


def test_fit_then_sample(model_dir, tmp_path, csv):
    out = tmp_path / "synth.csv"
    assert main(["sample", str(model_dir), "-n", "250", "-o", str(out), "--seed", "3"]) == 0
    synth = pd.read_csv(out)
    assert synth.shape == (250, 15)
    assert list(synth.columns) == list(pd.read_csv(csv).columns)


def test_existing_output_is_refused_without_force(model_dir, tmp_path, capsys):
    out = tmp_path / "synth.csv"
    out.write_text("precious")
    assert main(["sample", str(model_dir), "-n", "5", "-o", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "precious"
    assert main(["sample", str(model_dir), "-n", "5", "-o", str(out), "--force"]) == 0
    assert len(pd.read_csv(out)) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["synth.csv"]


@pytest.mark.parametrize("n", ["0", "-5"])
def test_bad_n(model_dir, tmp_path, capsys, n):
    assert main(["sample", str(model_dir), "-n", n, "-o", str(tmp_path / "x.csv")]) == 2
    assert "-n must be a positive number" in capsys.readouterr().err


def test_not_a_csv(tmp_path, capsys):
    bad = tmp_path / "image.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert main(["fit", str(bad), "-o", str(tmp_path / "m")]) == 2
    assert "is not a CSV file" in capsys.readouterr().err
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('a,b\n1,2\n3,"4\n')
    assert main(["fit", str(ragged), "-o", str(tmp_path / "m")]) == 2
    assert "could not be read as a CSV" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()


def test_missing_model_dir(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nope"), "-n", "3", "-o", str(tmp_path / "s.csv")]) == 2
    assert "not a directory saved by ppvae" in capsys.readouterr().err


def test_specs_lists_shipped_specs(capsys):
    assert main(["specs"]) == 0
    assert "default" in capsys.readouterr().out


def test_unknown_spec_option(csv, tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("latent_dim: 4\nprior: {name: nope}\n")
    assert (
        main(
            ["fit", str(csv), "-o", str(tmp_path / "m"), "--spec", str(spec), "--epochs", "1", "-q"]
        )
        == 2
    )
    assert "unknown prior 'nope'" in capsys.readouterr().err


def test_prior_objective_and_set_override_the_spec(csv, tmp_path):
    import yaml

    out = tmp_path / "m"
    argv = ["fit", str(csv), "-o", str(out), "--spec", "vamp", "--epochs", "1", "-q"]
    argv += ["--prior", "{name: mixture, components: 3}", "--objective", "geco"]
    argv += ["--set", "latent_dim=4", "--set", "hidden=[32, 32]"]
    assert main(argv) == 0
    saved = yaml.safe_load((out / "spec.yaml").read_text())
    assert saved["prior"]["name"] == "mixture" and saved["prior"]["components"] == 3
    assert saved["objective"] == "geco" or saved["objective"]["name"] == "geco"
    assert saved["latent_dim"] == 4 and list(saved["hidden"]) == [32, 32]


@pytest.mark.parametrize(
    "option, message",
    [
        (["--set", "latent_dims=4"], "unknown option 'latent_dims'; did you mean 'latent_dim'?"),
        (["--set", "latent_dim"], "--set expects KEY=VALUE"),
        (["--prior", "{name: [unclosed"], "--prior"),
        (["--objective", "nope"], "unknown objective 'nope'"),
    ],
)
def test_bad_overrides_are_refused(csv, tmp_path, capsys, option, message):
    argv = ["fit", str(csv), "-o", str(tmp_path / "m"), "--epochs", "1", "-q", *option]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
