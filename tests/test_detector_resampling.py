"""Resampling generated rows by a detector: inclusion probabilities, raking, the correction
of a known dependence, and the fitted model's detector (saved, pickled, dropped)."""

from __future__ import annotations

import pickle

import pytest
import torch

import ppvae
from ppvae import detector_resampling
from ppvae.boosted_trees import fit_trees
from ppvae.data.layout import Layout, TensorTable
from ppvae.detector_resampling import (
    choose,
    detector_features,
    inclusion,
    rake,
    resample,
    roc_auc,
    tells_apart,
)

LAYOUT = Layout(
    columns=("a", "b", "c"), cont_names=("a", "b"), cat_names=("c",), cat_cardinalities=(3,)
)


def table(cont: torch.Tensor, cat: torch.Tensor, cont_mask=None) -> TensorTable:
    n = len(cont)
    return TensorTable(
        x_cont=cont,
        cont_mask=torch.ones_like(cont, dtype=torch.bool) if cont_mask is None else cont_mask,
        x_cat=cat,
        cat_mask=torch.ones_like(cat, dtype=torch.bool),
        x_miss=torch.zeros(n, 0),
    )


def test_features_are_slots_with_masked_cells_set_apart():
    t = table(
        torch.tensor([[0.5, 1.0], [2.0, -1.0]]),
        torch.tensor([[2], [0]]),
        cont_mask=torch.tensor([[True, False], [True, True]]),
    )
    x = detector_features(t, LAYOUT)
    assert x.tolist() == [[0.5, detector_resampling.MASKED_SCORE, 2.0], [2.0, -1.0, 0.0]]


def test_inclusion_probabilities_are_capped_at_one_and_sum_to_n():
    pi = inclusion(torch.tensor([10.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.double), 2)
    assert torch.allclose(pi, torch.tensor([1.0, 0.25, 0.25, 0.25, 0.25], dtype=torch.double))


def test_systematic_draws_are_distinct_and_follow_the_inclusion_probabilities():
    torch.manual_seed(0)
    w = torch.tensor([5.0, 1.0, 2.0, 0.5, 3.0, 1.0, 0.2, 8.0], dtype=torch.double)
    pi = inclusion(w, 3)
    counts = torch.zeros(8, dtype=torch.double)
    for _ in range(20_000):
        picked = choose(w, 3)
        assert len(picked) == 3 and len(torch.unique(picked)) == 3
        counts[picked] += 1
    assert (counts / 20_000 - pi).abs().max() < 0.015  # binomial sd <= 0.0035


def test_raking_gives_every_slot_its_unweighted_shares():
    g = torch.Generator().manual_seed(0)
    n = 4000
    cont = torch.randn(n, 2, generator=g)
    mask = torch.rand(n, 2, generator=g) > 0.1  # a tenth masked: a bin of their own
    cat = torch.randint(0, 3, (n, 1), generator=g)
    t = table(cont, cat, mask)
    w = torch.exp(2 * cont[:, 0] + (cat[:, 0] == 1) * 1.0).double()  # tilts both marginals
    raked = rake(w, t, LAYOUT)
    assert abs(float(raked.sum()) - 1) < 1e-9
    for level in range(3):
        share = float((cat[:, 0] == level).double().mean())
        assert abs(float(raked[cat[:, 0] == level].sum()) - share) < 2e-3
    assert abs(float(raked[~mask[:, 0]].sum()) - float((~mask[:, 0]).double().mean())) < 2e-3
    edges = torch.quantile(cont[:, 0].double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.double))
    quarter = mask[:, 0] & (cont[:, 0] > edges[2])
    assert abs(float(raked[quarter].sum()) - float(quarter.double().mean())) < 0.01


def test_resampling_restores_a_lost_dependence_and_keeps_the_marginals():
    """Real rows: two standard normals with correlation 0.5; generated rows: independent
    ones, the right marginals. The kept rows (5,000 of a pool of 20,000) regain most of the
    correlation (above 0.4; the pool allows at most a fourfold weight), their marginals
    stay standard (mean within 0.05, sd within 0.05)."""
    g = torch.Generator().manual_seed(0)
    n = 4000
    a = torch.randn(n, generator=g)
    real = torch.stack([a, 0.5 * a + 0.75**0.5 * torch.randn(n, generator=g)], 1)
    cat = torch.zeros(n, 1, dtype=torch.long)
    synthetic = torch.randn(2 * n, 2, generator=g)
    x = torch.cat(
        [
            detector_features(table(real, cat), LAYOUT),
            detector_features(table(synthetic, cat.repeat(2, 1)), LAYOUT),
        ]
    )
    y = torch.cat([torch.zeros(n), torch.ones(2 * n)])
    detector = fit_trees(x, y)
    pool = torch.randn(20_000, 2, generator=g)
    torch.manual_seed(0)
    kept = pool[
        resample(detector, table(pool, torch.zeros(20_000, 1, dtype=torch.long)), LAYOUT, 5000)
    ]
    assert torch.corrcoef(pool.T)[0, 1].abs() < 0.03
    assert torch.corrcoef(kept.T)[0, 1] > 0.4
    assert kept.mean(0).abs().max() < 0.05 and (kept.std(0) - 1).abs().max() < 0.05


@pytest.fixture()
def low_threshold(monkeypatch):
    """A detector from 150 validation rows, so that a 1,500-row fit gets one."""
    monkeypatch.setattr(detector_resampling, "MIN_REAL_ROWS", 150)


def test_a_fitted_model_keeps_its_detector_through_save_load_and_pickle(
    adult_small, tmp_path, low_threshold
):
    df = adult_small.iloc[:1500]
    vae = ppvae.TabularVAE(epochs=3, verbose=False).fit(df)
    assert vae.model_.detector.grown > 0
    sample = vae.sample(300, seed=1)
    assert len(sample) == 300 and sample.equals(vae.sample(300, seed=1))
    vae.save(tmp_path / "m")
    assert ppvae.load(tmp_path / "m").sample(300, seed=1).equals(sample)
    assert pickle.loads(pickle.dumps(vae)).sample(300, seed=1).equals(sample)
    vae.refit_prior("standard_normal")  # the detector judged the old prior's rows
    assert not hasattr(vae.model_, "detector")
    off = ppvae.TabularVAE(epochs=3, verbose=False, detector_resampling=False).fit(df)
    assert not hasattr(off.model_, "detector")


def test_no_detector_from_fewer_validation_rows_than_the_minimum(adult_small):
    vae = ppvae.TabularVAE(epochs=2, verbose=False).fit(adult_small.iloc[:1500])
    assert not hasattr(vae.model_, "detector")  # 150 validation rows < MIN_REAL_ROWS


def test_the_option_is_checked():
    with pytest.raises(ValueError, match="detector_resampling"):
        ppvae.TabularVAE(detector_resampling="yes").fit(ppvae.datasets.load("adult").head(50))


def test_roc_auc_counts_ties_half_and_the_chance_gate():
    score = torch.tensor([0.1, 0.4, 0.4, 0.8, 0.9])
    label = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0])
    # positives 0.4 and 0.8 against negatives 0.1, 0.4, 0.9: 1 + 0.5 + 0 + 1 + 1 + 0 = 3.5 of 6
    assert roc_auc(score, label) == pytest.approx(3.5 / 6)
    g = torch.Generator().manual_seed(0)
    label = (torch.rand(2000, generator=g) < 0.8).float()
    noise = torch.randn(2000, generator=g)
    assert not tells_apart(noise, label)  # AUC within two standard errors (0.016) of 1/2
    assert tells_apart(noise + 0.3 * label, label)  # AUC about 0.58
    label = (torch.rand(20_000, generator=g) < 0.8).float()
    # AUC about 0.53: far beyond chance on 20,000 rows, but below MIN_AUC
    assert not tells_apart(torch.randn(20_000, generator=g) + 0.1 * label, label)
