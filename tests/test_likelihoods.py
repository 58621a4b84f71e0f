import pytest
import torch

from ppvae.likelihoods import CategoricalColumns, CategoricalGroups, likelihoods, slot_log_prob


@pytest.mark.parametrize("cards", [(2,), (3, 2, 5), (2, 2, 40, 7, 1000, 3)])
def test_categorical_columns_match_independent_categoricals(cards):
    torch.manual_seed(0)
    logits = torch.randn(11, sum(cards))
    value = torch.stack([torch.randint(0, k, (11,)) for k in cards], -1)
    fn = CategoricalColumns(logits, CategoricalGroups(cards))
    expected, start = [], 0
    for j, k in enumerate(cards):
        expected.append(
            torch.distributions.Categorical(logits=logits[:, start : start + k]).log_prob(
                value[:, j]
            )
        )
        start += k
    expected = torch.stack(expected, -1)
    torch.testing.assert_close(fn.slot_log_prob(value), expected)
    torch.testing.assert_close(fn.log_prob(value), expected.sum(-1))
    assert fn.batch_shape == (11,) and fn.event_shape == (len(cards),)


def test_categorical_groups_bound_padding():
    groups = CategoricalGroups((2, 2, 3, 40, 1000))
    for members, index in groups.groups:
        cards = [groups.cardinalities[j] for j in members.tolist()]
        assert index.shape[1] == max(cards) <= 2 * min(cards)


def test_categorical_sampling_frequencies_follow_probabilities():
    torch.manual_seed(1)
    probs = torch.tensor([0.7, 0.2, 0.1])
    logits = probs.log().expand(20000, 3)
    fn = CategoricalColumns(
        torch.cat([logits, torch.zeros(20000, 2)], -1), CategoricalGroups((3, 2))
    )
    draws = fn.sample()
    assert draws.shape == (20000, 2)
    freq = torch.bincount(draws[:, 0], minlength=3).float() / 20000
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)
    assert abs(draws[:, 1].float().mean().item() - 0.5) < 0.015


def test_mask_drops_slots():
    fn = CategoricalColumns(
        torch.zeros(2, 5),
        CategoricalGroups((2, 3)),
        mask=torch.tensor([[True, False], [False, False]]),
    )
    out = fn.slot_log_prob(torch.zeros(2, 2, dtype=torch.long))
    torch.testing.assert_close(
        out, torch.tensor([[-torch.log(torch.tensor(2.0)).item(), 0.0], [0.0, 0.0]])
    )


@pytest.mark.parametrize("name", likelihoods.names())
def test_continuous_families_give_finite_slot_log_probs(name):
    family = likelihoods.build(name)
    raw = torch.randn(4, family.group_params(3))
    fn = family.group_distribution(raw, 3, None)
    assert fn.batch_shape == (4,) and fn.event_shape == (3,)
    lp = slot_log_prob(fn, torch.randn(4, 3))
    assert lp.shape == (4, 3) and torch.isfinite(lp).all()
    torch.testing.assert_close(
        fn.log_prob(torch.zeros(4, 3)), slot_log_prob(fn, torch.zeros(4, 3)).sum(-1)
    )


def test_normal_family_is_the_documented_normal():
    raw = torch.tensor([[[0.5, 0.0]]])
    fn = likelihoods.build("normal")(raw)
    scale = torch.nn.functional.softplus(torch.tensor(0.0)) + 1e-3
    torch.testing.assert_close(
        fn.log_prob(torch.tensor([[1.5]])),
        torch.distributions.Normal(0.5, scale).log_prob(torch.tensor([[1.5]])),
    )
