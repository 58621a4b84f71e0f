"""The peer benchmark's quick mode runs end to end, so the harness cannot rot."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "adult.csv"


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/data/adult.csv is not present")
def test_bench_quick_mode_writes_all_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = pd.read_csv(tmp_path / "results.csv")
    assert set(results["contender"]) == {"ppvae-default", "copula", "torch-vae"}
    for column in ("column_shapes", "column_pair_trends", "ml_efficacy", "exact_copies"):
        assert results[column].between(0, 1).all(), column
    assert results["detection_auc"].between(0.3, 1).all()
    assert (results["fit_s"] > 0).all() and (results["dcr_ratio"] > 0).all()
    assert "QUICK MODE" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").stat().st_size > 1000
