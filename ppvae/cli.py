"""The ``ppvae`` command line: ``fit``, ``sample``, ``diagnose``, ``demo`` and ``specs``.

Exit codes: 0 on success, 2 on bad input or usage (a message on stderr says what to fix),
1 on an unexpected failure.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from ppvae.data.errors import DataError
from ppvae.outputs import OutputError
from ppvae.persistence import ModelFormatError
from ppvae.registry import SpecError
from ppvae.training import TrainingError

USER_ERRORS = (
    DataError,
    SpecError,
    ModelFormatError,
    OutputError,
    FileExistsError,
    FileNotFoundError,
    TrainingError,
    ValueError,
)
SAMPLE_CHUNK = 65_536  # rows drawn and written at a time by `ppvae sample`


class CLIError(Exception):
    """Bad input from the command line: printed without a traceback, exit code 2."""


def read_csv(
    path: str,
    missing_values: Sequence[str] = (),
    sep: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a table file (see :func:`ppvae.data.reader.read_table`)."""
    from ppvae.data.reader import read_table

    return read_table(path, sep=sep, encoding=encoding, missing_values=missing_values)


def _yaml_value(text: str, option: str):
    """A name (``vamp``), number or inline YAML mapping (``{name: mixture, components: 5}``)."""
    from ppvae.spec import safe_yaml

    try:
        return safe_yaml(text, option)
    except yaml.YAMLError as exc:
        raise CLIError(
            f"{option}: {text!r} is not a name, number or YAML mapping ({exc})"
        ) from None


def _spec_params(args: argparse.Namespace) -> dict:
    from ppvae.params import check_params
    from ppvae.spec import check_spec_keys, load_spec
    from ppvae.vae import TabularVAE

    params = load_spec(args.spec) if args.spec else {}
    for key in ("prior", "objective"):
        text = getattr(args, key, None)
        if text is not None:
            params[key] = _yaml_value(text, f"--{key}")
    for item in getattr(args, "set", None) or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set expects KEY=VALUE (e.g. --set latent_dim=8), got {item!r}")
        params[key.strip()] = _yaml_value(text, f"--set {key.strip()}")
    check_spec_keys(params, "command line", TabularVAE.option_names())
    if "hidden" in params and isinstance(params["hidden"], list):
        params["hidden"] = tuple(params["hidden"])
    for key in ("epochs", "seed", "device"):
        value = getattr(args, key, None)
        if value is not None:
            params[key] = value
    if getattr(args, "missing_values", None):
        params["missing_values"] = list(args.missing_values)
    params["verbose"] = not args.quiet
    check_params(params, "command line")
    return params


def cmd_fit(args: argparse.Namespace) -> int:
    from ppvae.distributed import is_writer
    from ppvae.outputs import check_target
    from ppvae.vae import TabularVAE

    out = check_target(args.output, "model", args.force)
    params = _spec_params(args)
    streamed = args.stream or Path(args.data).suffix.lower() in (".parquet", ".pq")
    streamed = streamed or Path(args.data).is_dir()
    if streamed and (args.sep or args.encoding):
        raise CLIError("--sep and --encoding apply to a CSV read in memory, not --stream")
    df = (
        args.data
        if streamed
        else read_csv(args.data, args.missing_values or (), args.sep, args.encoding)
    )
    start = time.perf_counter()
    vae = fit_checkpointed(TabularVAE(**params), df, out, args)
    if is_writer():
        print(
            f"fitted {vae.n_rows_} rows x {len(vae.columns_)} columns in "
            f"{time.perf_counter() - start:.1f} s ({len(vae.history_)} epochs); model saved "
            f"to {out}",
            file=sys.stderr,
        )
    return 0


def fit_checkpointed(vae, df: pd.DataFrame | str, out: Path, args: argparse.Namespace):
    """Fit with checkpoints in ``<output>.ckpt`` (resumed with --resume), save, and remove
    the checkpoint once the model is saved (under torchrun: rank 0 only)."""
    from ppvae.checkpoint import Checkpointing
    from ppvae.distributed import is_writer

    ckpt = out.with_name(f"{out.name}.ckpt")
    if ckpt.exists() and not (args.resume or args.force):
        raise CLIError(
            f"{ckpt} holds the checkpoint of an interrupted fit; pass --resume to continue "
            "it, or --force to start over"
        )
    policy = Checkpointing(
        ckpt,
        every_epochs=args.checkpoint_every or None,
        every_minutes=args.checkpoint_minutes or None,
    )
    try:
        vae.fit(df, checkpoint=policy, resume=args.resume)
    except KeyboardInterrupt:
        if ckpt.exists():
            print(f"checkpoint kept in {ckpt}: add --resume to continue the fit", file=sys.stderr)
        raise
    if is_writer():
        vae.save(out, force=args.force, allow_diverged=args.allow_diverged)
        ckpt.unlink(missing_ok=True)
    return vae


def sample_chunks(
    vae, n: int, seed: int | None, chunk: int = SAMPLE_CHUNK
) -> Iterator[pd.DataFrame]:
    """``n`` rows from ``vae`` in chunks of at most ``chunk`` rows. The first chunk is
    ``vae.sample(min(n, chunk), seed)``; chunk i > 0 uses a seed derived from (seed, i)."""
    for i, start in enumerate(range(0, n, chunk)):
        if seed is None or i == 0:
            chunk_seed = seed
        else:
            chunk_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        yield vae.sample(min(chunk, n - start), seed=chunk_seed)


def cmd_sample(args: argparse.Namespace) -> int:
    from ppvae.outputs import check_disk_space, check_target, write_table
    from ppvae.vae import load

    if args.n <= 0:
        raise CLIError(f"-n must be a positive number of rows, got {args.n}")
    if args.output != "-":
        target = check_target(args.output, "table", args.force)
        if target.resolve() == Path(args.model).resolve():
            raise CLIError(f"-o {args.output} is the model itself; write the rows elsewhere")
    vae = load(args.model)
    if args.given:
        return _sample_given(args, vae)
    chunks = sample_chunks(vae, args.n, args.seed, SAMPLE_CHUNK)
    first = next(chunks)
    if args.privacy_check:
        _privacy_check(args, vae, first)
    if args.output != "-":
        check_disk_space(first, args.n, args.output)
    with tqdm(total=args.n, unit="rows", disable=args.n <= SAMPLE_CHUNK, file=sys.stderr) as bar:

        def counted(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for part in parts:
                yield part
                bar.update(len(part))

        rows = write_table(counted(itertools.chain([first], chunks)), args.output, args.force)
    if args.output != "-":
        print(f"wrote {rows} rows to {args.output}", file=sys.stderr)
    return 0


def _sample_given(args: argparse.Namespace, vae) -> int:
    """``ppvae sample --given COLUMN=VALUE``: rows drawn given those cells (docs/partial_rows.md)."""
    from ppvae.outputs import write_table
    from ppvae.partial_rows import given_from_text

    if args.privacy_check:
        raise CLIError("--privacy-check applies to unconditional samples; drop --given or it")
    rows = vae.sample(args.n, seed=args.seed, given=given_from_text(vae, args.given))
    written = write_table(rows, args.output, args.force)
    ess = rows.attrs["inference"]["ess"][0]
    if args.output != "-":
        print(f"wrote {written} rows to {args.output} (ESS {ess:.0f})", file=sys.stderr)
    return 0


def cmd_impute(args: argparse.Namespace) -> int:
    """``ppvae impute MODEL --data incomplete.csv -o completed.csv [-m 20]``."""
    from ppvae.outputs import check_target, write_table
    from ppvae.vae import load

    if args.m <= 0:
        raise CLIError(f"-m must be a positive number of imputations, got {args.m}")
    if args.output != "-":
        check_target(args.output, "table", args.force)
    vae = load(args.model)
    df = read_csv(args.data, vae.missing_values or (), args.sep, args.encoding)
    draws = vae.impute(df, num_imputations=args.m, seed=args.seed)
    out = draws.reset_index(level=0).reset_index(drop=True)
    if args.m == 1:
        out = out.drop(columns="imputation")
    rows = write_table(out, args.output, args.force)
    if args.output != "-":
        cells = int(df.isna().to_numpy().sum())
        print(
            f"wrote {rows} rows to {args.output} ({cells} cells imputed x {args.m})",
            file=sys.stderr,
        )
    return 0


def _privacy_check(args: argparse.Namespace, vae, synth: pd.DataFrame) -> None:
    """``sample --privacy-check``: refuse (exit 2) rows that sit closer to the training rows
    than a real holdout's do (thresholds: ``ppvae.privacy``)."""
    from ppvae.privacy import privacy_report

    if not (args.data and args.holdout):
        raise CLIError(
            "--privacy-check needs the training rows and a real holdout the model never saw: "
            "pass --data TRAIN.csv --holdout HOLDOUT.csv"
        )
    missing = vae.missing_values or ()
    train = read_csv(args.data, missing, args.sep, args.encoding)
    holdout = read_csv(args.holdout, missing, args.sep, args.encoding)
    report = privacy_report(train, synth, holdout, seed=args.seed or 0)
    if not report.passed:
        raise CLIError(
            "privacy check failed, no rows written:\n" + str(report) + "\n(see docs/evaluate.md)"
        )
    print(f"privacy check passed:\n{report}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ppvae.outputs import check_target
    from ppvae.synthetic_report import evaluate

    out = check_target(args.output, "report", args.force)
    missing, sep, encoding = args.missing_values or (), args.sep, args.encoding
    real = read_csv(args.real, missing, sep, encoding)
    synth = read_csv(args.synthetic, missing, sep, encoding)
    holdout = read_csv(args.holdout, missing, sep, encoding) if args.holdout else None
    try:
        report = evaluate(real, synth, holdout, seed=args.seed, max_rows=args.max_rows)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    path = report.write(out, force=args.force)
    print(report)
    print(f"report written to {path}", file=sys.stderr)
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from ppvae.diagnostics.report import write_report
    from ppvae.outputs import check_target
    from ppvae.vae import load

    out = check_target(args.output, "report", args.force)
    vae = load(args.model)
    df = read_csv(args.data, vae.missing_values or (), args.sep, args.encoding)
    synthetic = (
        read_csv(args.synthetic, vae.missing_values or (), args.sep, args.encoding)
        if args.synthetic
        else None
    )
    path = write_report(vae, df, out, force=args.force, synthetic=synthetic)
    print(f"report written to {path}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ppvae import datasets
    from ppvae.demo import run_demo
    from ppvae.outputs import check_target
    from ppvae.params import check_params

    out = check_target(args.output, "demo", args.force)
    check_params(
        {"seed": args.seed, **({} if args.epochs is None else {"epochs": args.epochs})},
        "command line",
    )
    df = datasets.load("adult")
    path = run_demo(
        df, out, epochs=args.epochs, seed=args.seed, verbose=not args.quiet, force=args.force
    )
    print(f"demo finished: read {path}", file=sys.stderr)
    return 0


def _add_reading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sep", help="column separator (default: guessed among , ; TAB |, with a warning)"
    )
    p.add_argument("--encoding", help="text encoding (default: UTF-8, else latin-1 with a warning)")


def cmd_specs(args: argparse.Namespace) -> int:
    from ppvae.spec import SPECS_DIR, shipped_specs

    for name in shipped_specs():
        first = (SPECS_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[:1]
        note = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        print(f"{name:<16} {note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ppvae import __version__

    parser = argparse.ArgumentParser(
        prog="ppvae",
        description="Fit, sample and diagnose variational auto-encoders on tables (Pyro).",
    )
    parser.add_argument("--version", action="version", version=f"ppvae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "fit",
        help="fit a model to a CSV file and save it",
        description="Fit a TabularVAE to a CSV file and save it to a directory.",
    )
    p.add_argument(
        "data", help="input CSV file, or Parquet file/directory (streamed: docs/scale.md)"
    )
    p.add_argument("-o", "--output", required=True, help="directory to save the model to")
    p.add_argument(
        "--stream",
        action="store_true",
        help="stream a CSV in blocks instead of reading it into memory (Parquet always streams)",
    )
    p.add_argument("--spec", help="YAML spec file or shipped spec name (see `ppvae specs`)")
    p.add_argument(
        "--prior",
        help="override the spec's prior: a name (vamp) or YAML ('{name: mixture, components: 5}')",
    )
    p.add_argument("--objective", help="override the spec's objective: a name or YAML mapping")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any spec key, e.g. --set latent_dim=8 (repeatable; VALUE is YAML)",
    )
    p.add_argument("--epochs", type=int, help="override the spec's number of epochs")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument(
        "--missing-values",
        action="append",
        metavar="MARKER",
        help="a value read as missing, quoted for the shell: --missing-values '?' "
        "(repeat the option for several markers)",
    )
    _add_reading_options(p)
    p.add_argument(
        "--force", action="store_true", help="replace an existing ppvae model at --output"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted fit from its checkpoint OUTPUT.ckpt (same data, options)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        metavar="EPOCHS",
        help="write OUTPUT.ckpt every EPOCHS epochs (default 10; 0: not by epochs)",
    )
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=10.0,
        metavar="MINUTES",
        help="and at the first epoch end MINUTES after the last one (default 10; 0: never)",
    )
    p.add_argument(
        "--allow-diverged",
        action="store_true",
        help="save the model even if training ended far above its best loss",
    )
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "sample",
        help="draw synthetic rows from a saved model",
        description="Draw synthetic rows from a saved model into a CSV file.",
    )
    p.add_argument("model", help="model directory written by `ppvae fit`")
    p.add_argument("-n", type=int, required=True, help="number of rows")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .csv, .csv.gz/.bz2/.xz/.zip (compressed), .parquet, or '-' (stdout)",
    )
    p.add_argument("--seed", type=int, help="random seed (same seed, same rows)")
    p.add_argument(
        "--force", action="store_true", help="replace an existing table file at --output"
    )
    p.add_argument(
        "--privacy-check",
        action="store_true",
        help="write no rows (exit 2) if they sit closer to the training rows than the "
        "holdout's do or copy them more often (needs --data and --holdout; docs/evaluate.md)",
    )
    p.add_argument("--data", help="the model's training CSV (for --privacy-check)")
    p.add_argument("--holdout", help="real rows the model never saw (for --privacy-check)")
    p.add_argument(
        "--given",
        action="append",
        metavar="COLUMN=VALUE",
        help="draw rows with this cell fixed (repeatable); a numeric range as COLUMN=LOW:HIGH "
        "(docs/partial_rows.md)",
    )
    _add_reading_options(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "impute",
        help="fill the missing cells of a table from a saved model",
        description="Fill the missing cells of a table by drawing them from the model given "
        "the row's other cells (multiple imputation with -m; docs/partial_rows.md).",
    )
    p.add_argument("model", help="model directory written by `ppvae fit`")
    p.add_argument("--data", required=True, help="the table with missing cells (CSV)")
    p.add_argument(
        "-o", "--output", required=True, help="output table file (as for `sample`), or '-'"
    )
    p.add_argument(
        "-m",
        type=int,
        default=1,
        help="number of imputations; above 1 the rows of each are stacked under a leading "
        "'imputation' column (default 1: the completed table)",
    )
    p.add_argument("--seed", type=int, help="random seed (same seed, same draws)")
    p.add_argument(
        "--force", action="store_true", help="replace an existing table file at --output"
    )
    _add_reading_options(p)
    p.set_defaults(func=cmd_impute)

    p = sub.add_parser(
        "evaluate",
        help="how well synthetic rows pass for real ones, and what gives them away",
        description="Detection AUC of a gradient-boosted detector (cross-validated), the "
        "columns and pairs it leans on, the rows it flags most, SDMetrics quality (if "
        "installed) and privacy (exact copies, distance to the closest training row against a "
        "holdout), as a Markdown report with PNG figures and JSON. Needs scikit-learn "
        "(pip install 'ppvae[evaluate]').",
    )
    p.add_argument("real", help="real CSV file (the training rows, for the privacy numbers)")
    p.add_argument("synthetic", help="synthetic CSV file with the same columns")
    p.add_argument("-o", "--output", required=True, help="report directory")
    p.add_argument("--holdout", help="real rows the generator never saw: the privacy reference")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--max-rows",
        type=int,
        default=10_000,
        help="rows of each table the detector sees (default 10000)",
    )
    p.add_argument(
        "--missing-values",
        action="append",
        metavar="MARKER",
        help="a value read as missing, quoted for the shell: --missing-values '?' (repeatable)",
    )
    _add_reading_options(p)
    p.add_argument(
        "--force", action="store_true", help="replace an existing ppvae report at --output"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "diagnose",
        help="write a diagnostics report for a saved model",
        description="Collapse, holes and posterior predictive checks of a saved model, as a Markdown report with PNG figures and JSON.",
    )
    p.add_argument("model", help="model directory written by `ppvae fit`")
    p.add_argument(
        "--data",
        required=True,
        help="CSV file the model should explain (e.g. its training data)",
    )
    p.add_argument("-o", "--output", required=True, help="report directory")
    _add_reading_options(p)
    p.add_argument(
        "--force", action="store_true", help="replace an existing ppvae report at --output"
    )
    p.add_argument(
        "--synthetic", help="synthetic CSV: add what gives its rows away (`ppvae evaluate`)"
    )
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser(
        "demo",
        help="fit, sample and diagnose on the bundled Adult table",
        description="Fit the default model on the bundled UCI Adult table, sample from it, and write a short report.",
    )
    p.add_argument(
        "-o", "--output", default="ppvae-demo", help="output directory (default: ppvae-demo)"
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (default: the default spec's, with early stopping)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--force", action="store_true", help="replace an existing ppvae demo at --output"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("specs", help="list the model specs shipped with ppvae")
    p.set_defaults(func=cmd_specs)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = str(message)
    print(f"ppvae: warning: {text.removeprefix('ppvae: ')}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", UserWarning)
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"ppvae {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except USER_ERRORS as exc:
        print(f"ppvae {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
