"""Return computations and the return normaliser (spec 3.3, 3.4, 3.6)."""
import torch
from torch import nn


def imagined_returns(reward, cont, value, lam: float):
    """λ-returns along an imagined trajectory (agent.py:482-490).

    reward, cont, value: (N, H+1), index t = state s_t. Returns R_0..R_{H-1}: (N, H), with
    R_H = v_H and R_t = r_{t+1} + c_{t+1} [(1 - λ) v_{t+1} + λ R_{t+1}].
    """
    horizon = reward.shape[1] - 1
    returns = [value[:, -1]]
    for t in reversed(range(horizon)):
        returns.append(reward[:, t + 1] + cont[:, t + 1] * ((1 - lam) * value[:, t + 1] + lam * returns[-1]))
    return torch.stack(returns[1:][::-1], 1)


def replay_returns(reward, is_last, is_terminal, bootstrap, gamma: float, lam: float):
    """λ-returns on the real sequence for the replay value loss (agent.py:449-479).

    All inputs (B, T); bootstrap B_t = the imagined return R_0 started at step t.
    G_{T-1} = B_{T-1}; G_t = r_{t+1} + γ (1 - term_{t+1}) [(1 - k) B_{t+1} + k G_{t+1}],
    k = λ (1 - last_{t+1}). Returns G_0..G_{T-2}: (B, T-1).
    """
    live = 1.0 - is_terminal.float()
    keep = lam * (1.0 - is_last.float())
    returns = [bootstrap[:, -1]]
    for t in reversed(range(reward.shape[1] - 1)):
        mix = (1 - keep[:, t + 1]) * bootstrap[:, t + 1] + keep[:, t + 1] * returns[-1]
        returns.append(reward[:, t + 1] + gamma * live[:, t + 1] * mix)
    return torch.stack(returns[1:][::-1], 1)


class ReturnNormalizer(nn.Module):
    """Scale S = max(limit, EMA(P95) - EMA(P5)); updated before it is read (utils.py:16-91)."""

    def __init__(self, low: float = 5.0, high: float = 95.0, rate: float = 0.01, limit: float = 1.0):
        super().__init__()
        self.rate, self.limit = rate, limit
        # A buffer, not torch.tensor(...) per update: a host-to-GPU copy would wait for the GPU.
        self.register_buffer("quantiles", torch.tensor([low / 100.0, high / 100.0]), persistent=False)
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns):
        values = returns.detach().float().flatten()
        quantiles = torch.quantile(values, self.quantiles)
        self.low.mul_(1 - self.rate).add_(self.rate * quantiles[0])
        self.high.mul_(1 - self.rate).add_(self.rate * quantiles[1])

    def scale(self):
        return torch.clamp(self.high - self.low, min=self.limit)
