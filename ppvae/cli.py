"""The ``ppvae`` command line: ``fit``, ``sample``, ``diagnose``, ``demo`` and ``specs``.

Exit codes: 0 on success, 2 on bad input or usage (a message on stderr says what to fix),
1 on an unexpected failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from ppvae.data.errors import DataError
from ppvae.persistence import ModelFormatError, replace_path
from ppvae.registry import SpecError
from ppvae.training import TrainingError

USER_ERRORS = (
    DataError,
    SpecError,
    ModelFormatError,
    FileExistsError,
    FileNotFoundError,
    TrainingError,
    ValueError,
)


class CLIError(Exception):
    """Bad input from the command line: printed without a traceback, exit code 2."""


def read_csv(path: str, missing_values: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV file, turning pandas' parse failures into a clear :class:`CLIError`."""
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"no such file: {path}")
    with open(p, "rb") as fh:
        head = fh.read(4096)
    compressed = p.suffix in {".gz", ".bz2", ".zip", ".xz", ".zst"}
    if not compressed and b"\x00" in head:
        raise CLIError(f"{path} is not a CSV file (it contains binary data)")
    try:
        df = pd.read_csv(p, na_values=list(missing_values) or None, keep_default_na=True)
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        OSError,
        EOFError,
    ) as exc:
        raise CLIError(f"{path} could not be read as a CSV file: {exc}") from None
    if df.shape[1] == 0 or len(df) == 0:
        raise CLIError(f"{path} holds no data rows")
    return df


def write_csv(df: pd.DataFrame, path: str, force: bool) -> None:
    """Write ``df`` to ``path`` atomically ('-' writes to stdout)."""
    if path == "-":
        df.to_csv(sys.stdout, index=False)
        return
    target = Path(path)
    if target.exists() and not force:
        raise CLIError(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        replace_path(Path(tmp), target, force=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _yaml_value(text: str, option: str):
    """A name (``vamp``), number or inline YAML mapping (``{name: mixture, components: 5}``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CLIError(
            f"{option}: {text!r} is not a name, number or YAML mapping ({exc})"
        ) from None


def _spec_params(args: argparse.Namespace) -> dict:
    from ppvae.spec import check_spec_keys, load_spec

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
    check_spec_keys(params, "command line")
    for key in ("epochs", "seed", "device"):
        value = getattr(args, key, None)
        if value is not None:
            params[key] = value
    if getattr(args, "missing_values", None):
        params["missing_values"] = list(args.missing_values)
    params["verbose"] = not args.quiet
    return params


def cmd_fit(args: argparse.Namespace) -> int:
    from ppvae.vae import TabularVAE

    out = Path(args.output)
    if out.exists() and not args.force:
        raise CLIError(f"{out} already exists; pass --force to overwrite it")
    df = read_csv(args.data, args.missing_values or ())
    params = _spec_params(args)
    start = time.perf_counter()
    vae = TabularVAE(**params).fit(df)
    vae.save(out, force=args.force)
    print(
        f"fitted {len(df)} rows x {df.shape[1]} columns in {time.perf_counter() - start:.1f} s "
        f"({len(vae.history_)} epochs); model saved to {out}",
        file=sys.stderr,
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from ppvae.persistence import load

    if args.n <= 0:
        raise CLIError(f"-n must be a positive number of rows, got {args.n}")
    if args.output != "-" and Path(args.output).exists() and not args.force:
        raise CLIError(f"{args.output} already exists; pass --force to overwrite it")
    vae = load(args.model)
    synth = vae.sample(args.n, seed=args.seed)
    if args.privacy_check:
        _privacy_check(args, vae, synth)
    write_csv(synth, args.output, args.force)
    if args.output != "-":
        print(f"wrote {len(synth)} rows to {args.output}", file=sys.stderr)
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
    report = privacy_report(
        read_csv(args.data, missing), synth, read_csv(args.holdout, missing), seed=args.seed or 0
    )
    if not report.passed:
        raise CLIError(
            "privacy check failed, no rows written:\n" + str(report) + "\n(see docs/evaluate.md)"
        )
    print(f"privacy check passed:\n{report}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ppvae.synthetic_report import evaluate

    out = Path(args.output)
    if out.exists() and not args.force:
        raise CLIError(f"{out} already exists; pass --force to overwrite it")
    missing = args.missing_values or ()
    real, synth = read_csv(args.real, missing), read_csv(args.synthetic, missing)
    holdout = read_csv(args.holdout, missing) if args.holdout else None
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
    from ppvae.persistence import load

    out = Path(args.output)
    if out.exists() and not args.force:
        raise CLIError(f"{out} already exists; pass --force to overwrite it")
    vae = load(args.model)
    if args.data:
        df = read_csv(args.data, vae.missing_values or ())
    else:
        raise CLIError("diagnose needs the data the model should explain: pass --data FILE.csv")
    synthetic = read_csv(args.synthetic, vae.missing_values or ()) if args.synthetic else None
    path = write_report(vae, df, out, force=args.force, synthetic=synthetic)
    print(f"report written to {path}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ppvae import datasets
    from ppvae.demo import run_demo

    out = Path(args.output)
    if out.exists() and not args.force:
        raise CLIError(f"{out} already exists; pass --force to overwrite it")
    df = datasets.load("adult")
    path = run_demo(
        df, out, epochs=args.epochs, seed=args.seed, verbose=not args.quiet, force=args.force
    )
    print(f"demo finished: read {path}", file=sys.stderr)
    return 0


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
    p.add_argument("data", help="input CSV file")
    p.add_argument("-o", "--output", required=True, help="directory to save the model to")
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
        nargs="+",
        metavar="MARKER",
        help="extra missing-value markers, e.g. '?'",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "sample",
        help="draw synthetic rows from a saved model",
        description="Draw synthetic rows from a saved model into a CSV file.",
    )
    p.add_argument("model", help="model directory written by `ppvae fit`")
    p.add_argument("-n", type=int, required=True, help="number of rows")
    p.add_argument("-o", "--output", required=True, help="output CSV file ('-' for stdout)")
    p.add_argument("--seed", type=int, help="random seed (same seed, same rows)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument(
        "--privacy-check",
        action="store_true",
        help="write no rows (exit 2) if they sit closer to the training rows than the "
        "holdout's do or copy them more often (needs --data and --holdout; docs/evaluate.md)",
    )
    p.add_argument("--data", help="the model's training CSV (for --privacy-check)")
    p.add_argument("--holdout", help="real rows the model never saw (for --privacy-check)")
    p.set_defaults(func=cmd_sample)

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
        "--missing-values", nargs="+", metavar="MARKER", help="extra missing-value markers"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "diagnose",
        help="write a diagnostics report for a saved model",
        description="Collapse, holes and posterior predictive checks of a saved model, as a Markdown report with PNG figures and JSON.",
    )
    p.add_argument("model", help="model directory written by `ppvae fit`")
    p.add_argument("--data", help="CSV file the model should explain (e.g. its training data)")
    p.add_argument("-o", "--output", required=True, help="report directory")
    p.add_argument(
        "--synthetic", help="synthetic CSV: add what gives its rows away (`ppvae evaluate`)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
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
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("specs", help="list the model specs shipped with ppvae")
    p.set_defaults(func=cmd_specs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
