"""Returns, return normaliser and free nats (spec 3.1, 3.3, 3.4, 3.6) against hand computations."""
import pytest
import torch

from agent.config import make_config
from agent.losses import ReturnNormalizer, imagined_returns, live_mean, past_end_metrics, replay_returns
from agent.rssm import RSSM


def test_imagined_lambda_return_recursion():
    # H = 2: R_2 = v_2; R_1 = r_2 + c_2 ((1-λ) v_2 + λ R_2); R_0 = r_1 + c_1 ((1-λ) v_1 + λ R_1).
    lam = 0.5
    reward = torch.tensor([[9.0, 1.0, 2.0]])  # r_0 is never used
    cont = torch.tensor([[0.3, 0.9, 0.8]])  # c_0 is never used in the returns
    value = torch.tensor([[7.0, 3.0, 4.0]])
    r1 = 2.0 + 0.8 * (0.5 * 4.0 + 0.5 * 4.0)  # = 5.2
    r0 = 1.0 + 0.9 * (0.5 * 3.0 + 0.5 * r1)  # = 4.69
    torch.testing.assert_close(imagined_returns(reward, cont, value, lam), torch.tensor([[r0, r1]]))


def test_replay_returns_cut_at_episode_end():
    gamma, lam = 0.9, 0.5
    reward = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    is_last = torch.tensor([[False, False, True, False]])
    is_terminal = torch.tensor([[False, False, True, False]])
    boot = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    g2 = 3.0 + gamma * 1.0 * ((1 - lam) * 40.0 + lam * 40.0)  # G_3 = B_3
    g1 = 2.0 + gamma * 0.0 * 99  # step 2 is terminal: nothing after it counts
    g0 = 1.0 + gamma * ((1 - lam) * 20.0 + lam * g1)
    result = replay_returns(reward, is_last, is_terminal, boot, gamma, lam)
    torch.testing.assert_close(result, torch.tensor([[g0, g1, g2]]))
    # A time-limit end (last, not terminal) bootstraps fully from B at that step.
    result = replay_returns(reward, is_last, torch.zeros_like(is_terminal), boot, gamma, lam)
    assert result[0, 1].item() == pytest.approx(2.0 + gamma * 30.0)


def test_return_normalizer_percentiles_and_ema():
    norm = ReturnNormalizer(low=5, high=95, rate=0.01, limit=1.0)
    assert norm.scale().item() == 1.0  # lo = hi = 0 at the start: the limit applies
    returns = torch.linspace(0, 1000, 1001)  # P5 = 50, P95 = 950
    norm.update(returns)
    assert norm.low.item() == pytest.approx(0.5)
    assert norm.high.item() == pytest.approx(9.5)
    assert norm.scale().item() == pytest.approx(9.0)
    norm.update(returns)
    assert norm.low.item() == pytest.approx(0.99 * 0.5 + 0.5)
    assert norm.high.item() == pytest.approx(0.99 * 9.5 + 9.5)
    small = ReturnNormalizer()
    small.update(torch.linspace(0, 10, 11))
    assert small.scale().item() == 1.0  # 0.095 - 0.005 < 1: clipped to the limit


def test_free_nats_give_zero_gradient_below_one_nat():
    config = make_config("1m")
    rssm = RSSM(config, token_size=8, action_size=2)
    post = torch.zeros(3, config.stoch * config.classes, requires_grad=True)
    prior = (0.01 * torch.randn(3, config.stoch * config.classes)).requires_grad_(True)
    dyn, rep, _ = rssm.kl_losses(post, prior, free_nats=1.0)
    assert torch.all(dyn == 1.0) and torch.all(rep == 1.0)  # KL summed over 32 latents is < 1 nat
    (dyn.sum() + rep.sum()).backward()
    assert torch.all(post.grad == 0) and torch.all(prior.grad == 0)
    # Above one nat the gradient flows: dyn to the prior only, rep to the posterior only.
    post = (3 * torch.randn(3, config.stoch * config.classes)).requires_grad_(True)
    prior = torch.zeros(3, config.stoch * config.classes, requires_grad=True)
    dyn, rep, _ = rssm.kl_losses(post, prior, free_nats=1.0)
    assert torch.all(dyn > 1.0)
    dyn.sum().backward()
    assert post.grad is None or torch.all(post.grad == 0)
    assert prior.grad.abs().sum() > 0


def test_live_and_past_end_metrics_split_the_rollout_at_the_imagined_episode_end():
    # One rollout, H = 3: continues at s_0 and s_1, ends at s_2 (cont 0), so s_3 lies past the end.
    cont = torch.tensor([[1.0, 1.0, 0.0, 0.5]])  # (N, H+1)
    reward = torch.tensor([[0.0, 0.2, -1.0, 4.0]])
    weight = torch.cumprod(cont, 1)[:, :-1]  # (N, H) = [1, 1, 0], as imagine() builds it
    assert live_mean(torch.tensor([[2.0, 4.0, 100.0]]), weight) == 3.0  # the step past the end does not count
    metrics = past_end_metrics(reward, cont, weight)
    assert metrics["past_end/frac"] == pytest.approx(1 / 3)
    assert metrics["past_end/reward_mag"] == metrics["past_end/reward_max"] == 4.0  # s_3 only, not the terminal s_2
    assert metrics["past_end/cont"] == 0.5
