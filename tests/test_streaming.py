"""Streaming fits: the one-pass sketch, the row-hash split, Parquet/CSV/frames sources and
their bad input (docs/scale.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("pyarrow")

import ppvae  # noqa: E402
from ppvae.cli import main  # noqa: E402
from ppvae.data import DataError, TableTransformer  # noqa: E402
from ppvae.data.sketch import RowReservoir, Witnesses  # noqa: E402
from ppvae.data.sources import open_source  # noqa: E402
from ppvae.data.split import row_fate  # noqa: E402
from ppvae.data.streaming import scan  # noqa: E402


def table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + rng.normal(scale=0.3, size=n),
            "k": rng.integers(0, 40, n),
            "c": rng.choice(["a", "b", "c"], n),
        }
    )


def fast(**kw) -> ppvae.TabularVAE:
    return ppvae.TabularVAE(
        latent_dim=2, hidden=(16,), epochs=2, batch_size=100, verbose=False, **kw
    )


def test_reservoir_keeps_the_smallest_keys_and_merges_exactly():
    frame = pd.DataFrame({"v": np.arange(1000)})
    one = RowReservoir(size=50, seed=1)
    for start in range(0, 1000, 64):
        one.add(frame.iloc[start : start + 64])
    half_a, half_b = RowReservoir(size=50, seed=2), RowReservoir(size=50, seed=3)
    half_a.add(frame.iloc[:500])
    half_b.add(frame.iloc[500:])
    kept = {**dict(zip(half_a.sample["v"], np.sort(half_a.keys))),
            **dict(zip(half_b.sample["v"], np.sort(half_b.keys)))}  # fmt: skip
    merged = half_a.merge(half_b).sample
    assert len(one.sample) == 50 and one.sample["v"].is_unique
    assert list(merged["v"]) == sorted(kept, key=kept.get)[:50]


def test_witnesses_keep_extremes_missing_and_every_level():
    frame = pd.DataFrame({"n": [3.0, -7.0, 1.0, np.nan, 9.0], "c": ["a", "a", "b", "a", "z"]})
    seen = Witnesses()
    seen.add(frame, frame)
    kept = seen.frame(frame.iloc[:0], frame.iloc[:0])
    assert {-7.0, 9.0} <= set(kept["n"]) and kept["n"].isna().any()
    assert set(kept["c"]) == {"a", "b", "z"}
    sample = frame.iloc[[0, 2]]  # has 'a', 'b', no extreme, nothing missing
    assert list(seen.frame(sample, sample).index) == [1, 3, 4]


def test_rare_level_and_extremes_reach_the_transformer_from_a_small_sample(tmp_path):
    df = table(5000)
    df.loc[4321, "c"] = "rare"
    df.loc[17, "x"] = 50.0
    path = tmp_path / "t.parquet"
    df.to_parquet(path, row_group_size=1000)
    transformer = TableTransformer()
    scan(open_source(path), transformer, seed=0, val_fraction=0.1, block_rows=512)
    assert "rare" in transformer.transforms_[3].levels
    assert transformer.transforms_[0].knots[-1] == 50.0


def test_row_fate_is_a_function_of_the_row_number_and_seed():
    rows = np.arange(100_000)
    held, shard = row_fate(rows, seed=0, val_fraction=0.1, world=2)
    held2, shard2 = row_fate(rows[::-1], seed=0, val_fraction=0.1, world=2)
    assert np.array_equal(held, held2[::-1]) and np.array_equal(shard, shard2[::-1])
    assert abs(held.mean() - 0.1) < 0.005 and abs(shard.mean() - 0.5) < 0.005
    assert not np.array_equal(held, row_fate(rows, seed=1, val_fraction=0.1)[0])


def test_streamed_transformer_matches_the_in_memory_one_on_a_small_table(tmp_path):
    df = table()
    path = tmp_path / "t.parquet"
    df.to_parquet(path, row_group_size=100)
    streamed = TableTransformer()
    scan(open_source(path), streamed, seed=0, val_fraction=0.1, block_rows=64)
    memory = TableTransformer().fit(df)
    assert streamed.schema_.to_dict() == memory.schema_.to_dict()
    assert streamed.transforms_[3].to_dict() == memory.transforms_[3].to_dict()
    assert np.array_equal(streamed.transforms_[0].knots, memory.transforms_[0].knots)


@pytest.mark.parametrize("kind", ["parquet", "directory", "csv", "frames"])
def test_fit_streams_every_source_and_saves_like_any_model(tmp_path, kind):
    df = table()
    if kind == "parquet":
        data = tmp_path / "t.parquet"
        df.to_parquet(data, row_group_size=150)
    elif kind == "directory":
        data = tmp_path / "parts"
        data.mkdir()
        for i in range(3):
            df.iloc[i * 200 : (i + 1) * 200].to_parquet(data / f"p{i}.parquet")
    elif kind == "csv":
        data = tmp_path / "t.csv"
        df.to_csv(data, index=False)
    else:
        data = (df.iloc[i : i + 100] for i in range(0, len(df), 100))
    vae = fast().fit(data)
    assert vae.n_rows_ == len(df) and list(vae.history_.columns[:3]) == [
        "epoch",
        "train_loss",
        "val_loss",
    ]
    vae.save(tmp_path / "model")
    loaded = ppvae.load(tmp_path / "model")
    out = loaded.sample(50, seed=0)
    assert list(out.columns) == list(df.columns)
    assert out.equals(vae.sample(50, seed=0))
    assert not list(tmp_path.glob("ppvae-spool-*"))


def test_streamed_fit_is_reproducible(tmp_path):
    path = tmp_path / "t.parquet"
    table().to_parquet(path, row_group_size=100)
    a, b = fast().fit(path), fast().fit(path)
    assert a.history_.equals(b.history_)


def test_schema_change_between_files_is_refused(tmp_path):
    df = table(100)
    df.to_parquet(tmp_path / "a.parquet")
    df.assign(k=df["k"].astype(str)).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match="column 'k' is int64 in .*a.parquet but string"):
        fast().fit(tmp_path)


def test_column_missing_in_one_shard_is_refused(tmp_path):
    df = table(100)
    df.to_parquet(tmp_path / "a.parquet")
    df.drop(columns="c").to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"b.parquet lacks column\(s\) \['c'\]"):
        fast().fit([tmp_path / "a.parquet", tmp_path / "b.parquet"])


def test_frames_with_different_columns_are_refused():
    df = table(100)
    with pytest.raises(DataError, match=r"frame 1 lacks column\(s\) \['c'\]"):
        fast().fit(iter([df, df.drop(columns="c")]))


def test_only_paths_frames_and_iterators_stream():
    from ppvae.data.sources import is_stream

    assert is_stream("t.parquet") and is_stream(iter([table(5)])) and is_stream([table(5)])
    assert not is_stream(table(5)) and not is_stream([[1.0, 2.0], [3.0, 4.0]])
    assert not is_stream(np.zeros((3, 2))) and not is_stream([])


def test_a_frame_arrow_cannot_store_is_refused_with_the_fix():
    bad = pd.DataFrame({"m": [1, "a", 2.5] * 10, "x": np.arange(30.0)})
    with pytest.raises(DataError, match=r"frame 0 cannot be streamed .*astype\(str\)"):
        fast().fit(iter([bad]))


def test_cli_fit_streams_parquet(tmp_path, capsys):
    path = tmp_path / "t.parquet"
    table().to_parquet(path)
    args = ["fit", str(path), "-o", str(tmp_path / "m"), "-q", "--set", "latent_dim=2"]
    assert main([*args, "--epochs", "1", "--set", "hidden=[16]"]) == 0
    assert "fitted 600 rows x 4 columns" in capsys.readouterr().err
    assert list(ppvae.load(tmp_path / "m").sample(5, seed=0).columns) == ["x", "y", "k", "c"]


def test_an_epoch_takes_each_training_row_of_its_shard_once(tmp_path):
    from ppvae.data.streaming import StreamTable

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"v": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)})
    path = tmp_path / "t.parquet"
    df.to_parquet(path, row_group_size=400)
    transformer = TableTransformer()
    source = open_source(path)
    _, val_rows, n_rows, counts = scan(source, transformer, seed=0, val_fraction=0.1, world=2)
    assert n_rows == 3000 and counts.sum() + len(val_rows) == 3000
    seen = []
    for rank in range(2):
        stream = StreamTable(
            source, transformer, rows=int(counts.min()), seed=0, val_fraction=0.1,
            rank=rank, world=2, block_rows=256, shuffle_rows=1000,
        )  # fmt: skip
        batches = list(stream.batches(64, torch.Generator().manual_seed(0)))
        steps = -(-int(counts.min()) // 64)  # every rank takes as many steps
        assert len(batches) == steps
        values = torch.cat([b.x_cont[:, 0] for b in batches])
        assert len(values) == min(steps * 64, counts[rank])
        assert len(values.unique()) == len(values)
        seen.append(set(values.tolist()))
    assert not seen[0] & seen[1]
