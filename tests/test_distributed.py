"""Data-parallel fits: two real gloo processes on a small table (ppvae.distributed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    """
    import os, sys, warnings
    import torch
    torch.set_num_threads(1)
    warnings.simplefilter("error")
    warnings.filterwarnings("ignore", "\\\\s*ArviZ is undergoing", FutureWarning)
    warnings.filterwarnings("ignore", "the fitted model looks collapsed", UserWarning)
    import pandas as pd
    import ppvae
    from ppvae.distributed import is_writer
    data, out, objective, die = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "die"
    rank = int(os.environ["RANK"])
    if die and rank == 1:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        os._exit(3)
    vae = ppvae.TabularVAE(latent_dim=2, hidden=(16,), epochs=3, batch_size=50,
                           objective=objective, verbose=False)
    source = pd.read_csv(data) if data.endswith(".csv") else data
    vae.fit(source)
    torch.save({k: v for k, v in vae.model_.state_dict().items()}, f"{out}/rank{rank}.pt")
    vae.history_.to_csv(f"{out}/history{rank}.csv", index=False)
    if is_writer():
        vae.save(f"{out}/model")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(tmp_path: Path, data: Path, objective: str = "elbo", die: bool = False):
    """Start two worker processes as torchrun would (its environment variables)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = free_port()
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "OMP_NUM_THREADS": "1",
            "PPVAE_DIST_TIMEOUT": "60",
        }
        cmd = [sys.executable, str(script), str(data), str(tmp_path), objective]
        cmd.append("die" if die else "live")
        with open(tmp_path / f"stderr{rank}.txt", "w") as log:
            procs.append(subprocess.Popen(cmd, env=env, stderr=log))
    codes = [p.wait(timeout=300) for p in procs]
    return [(rc, (tmp_path / f"stderr{r}.txt").read_text()) for r, rc in enumerate(codes)]


def small_table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {"x": x, "y": x + rng.normal(scale=0.5, size=n), "c": rng.choice(["a", "b"], n)}
    )


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_two_gloo_processes_train_one_model(tmp_path, source):
    if source == "parquet":
        pytest.importorskip("pyarrow")
    data = tmp_path / f"t.{source}"
    df = small_table()
    df.to_csv(data, index=False) if source == "csv" else df.to_parquet(data, row_group_size=100)
    results = run_ranks(tmp_path, data, objective="geco")
    assert [rc for rc, _ in results] == [0, 0], results
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # one model, not two
    h0, h1 = pd.read_csv(tmp_path / "history0.csv"), pd.read_csv(tmp_path / "history1.csv")
    assert h0.equals(h1) and len(h0) == 3
    loaded = ppvae.load(tmp_path / "model")
    assert all(torch.equal(loaded.model_.state_dict()[k], a[k]) for k in a)
    assert list(loaded.sample(10, seed=0).columns) == ["x", "y", "c"]
    assert loaded.n_rows_ == len(df)


def test_a_dying_rank_fails_the_others_without_a_model(tmp_path):
    data = tmp_path / "t.csv"
    small_table().to_csv(data, index=False)
    (rc0, err0), (rc1, _) = run_ranks(tmp_path, data, die=True)
    assert rc1 == 3 and rc0 != 0
    assert "lost contact with another process" in err0
    assert not (tmp_path / "model").exists()


def test_memory_shards_are_disjoint_and_equal():
    from ppvae.data.layout import TensorTable
    from ppvae.data.split import memory_split

    table = TensorTable(x_cont=torch.arange(103.0)[:, None])
    shards = []
    for rank in range(2):
        torch.manual_seed(0)
        train, val = memory_split(table, 0.1, rank, 2)
        shards.append((set(train.x_cont[:, 0].tolist()), set(val.x_cont[:, 0].tolist())))
    (t0, v0), (t1, v1) = shards
    assert len(t0) == len(t1) == 46 and not t0 & t1 and not (t0 | t1) & (v0 | v1)
