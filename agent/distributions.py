"""Output distributions of DreamerV3 (spec 2.3, 2.5): symlog, two-hot, unimix categoricals,
the bounded normal policy. Everything here computes in float32."""
import torch
from torch.nn import functional as F


def symlog(x):
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x):
    return torch.sign(x) * torch.expm1(torch.abs(x))


def twohot_bins(count: int = 255) -> torch.Tensor:
    """Bins in raw reward units: symexp of a symmetric grid, mirrored so 0 is exact (spec 2.5)."""
    assert count % 2 == 1, count
    half = symexp(torch.linspace(-20.0, 0.0, (count + 1) // 2))  # (128,) ends at exactly 0
    return torch.cat([half, -half[:-1].flip(0)])  # (255,)


class TwoHot:
    """Categorical over fixed raw-space bins; mean and two-hot cross-entropy (outs.py:273-330)."""

    def __init__(self, logits, bins):
        self.logits = logits.float()  # (..., K)
        self.bins = bins  # (K,)

    def mean(self):
        # Pairwise sum of mirrored bins, so that uniform probabilities give exactly 0.
        probs = self.logits.softmax(-1)
        middle = (self.bins.shape[0] - 1) // 2
        low = probs[..., :middle] * self.bins[:middle]
        high = probs[..., middle + 1:].flip(-1) * self.bins[middle + 1:].flip(0)
        return (low + high).sum(-1) + probs[..., middle] * self.bins[middle]

    def loss(self, target):
        """Cross-entropy against the two-hot encoding of the raw target (...,)."""
        return -(twohot(target.float(), self.bins) * self.logits.log_softmax(-1)).sum(-1)


def twohot(target, bins):
    """Raw value (...,) -> weights (..., K) on its two neighbouring bins, linear in raw space."""
    count = bins.shape[0]
    below = (bins <= target[..., None]).sum(-1) - 1
    above = count - (bins > target[..., None]).sum(-1)
    below = below.clamp(0, count - 1)
    above = above.clamp(0, count - 1)
    equal = below == above
    to_below = torch.where(equal, 1.0, (bins[below] - target).abs())
    to_above = torch.where(equal, 1.0, (bins[above] - target).abs())
    total = to_below + to_above
    return (F.one_hot(below, count) * (to_above / total)[..., None]
            + F.one_hot(above, count) * (to_below / total)[..., None])


def unimix_logits(logits, unimix: float):
    """log of (1 - unimix) * softmax(logits) + unimix / C."""
    logits = logits.float()
    if not unimix:
        return logits.log_softmax(-1)
    probs = (1 - unimix) * logits.softmax(-1) + unimix / logits.shape[-1]
    return probs.log()


class OneHotCategorical:
    """Categoricals over the last axis with straight-through one-hot samples (outs.py:208-270)."""

    def __init__(self, logits, unimix: float = 0.0):
        self.logits = unimix_logits(logits, unimix)  # (..., C), normalised log-probs

    @property
    def probs(self):
        return self.logits.exp()

    def sample(self):
        probs = self.probs
        index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1)
        onehot = F.one_hot(index.reshape(probs.shape[:-1]), probs.shape[-1]).to(probs.dtype)
        return onehot + probs - probs.detach()

    def mode(self):
        return F.one_hot(self.logits.argmax(-1), self.logits.shape[-1]).float()

    def entropy(self):
        return -(self.probs * self.logits).sum(-1)

    def kl(self, other):
        return (self.probs * (self.logits - other.logits)).sum(-1)

    def log_prob(self, onehot):
        return (onehot * self.logits).sum(-1)


class BoundedNormal:
    """Diagonal Normal with mean tanh(m) and std in [min_std, max_std] (heads.py:146-155).

    Samples are not squashed: they may leave [-1, 1], the env clips them.
    """

    def __init__(self, mean_logit, std_logit, min_std: float, max_std: float):
        self.mean = torch.tanh(mean_logit.float())
        self.std = (max_std - min_std) * torch.sigmoid(std_logit.float() + 2.0) + min_std

    def sample(self):
        noise = torch.randn_like(self.mean)
        return (self.mean + self.std * noise).detach()

    def log_prob(self, value):  # summed over action dimensions
        z = (value - self.mean) / self.std
        return (-0.5 * z.square() - self.std.log() - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1)

    def entropy(self):
        return (0.5 + 0.5 * torch.log(torch.tensor(2 * torch.pi)) + self.std.log()).sum(-1)
