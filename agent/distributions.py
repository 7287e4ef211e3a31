"""Output distributions of DreamerV3 (spec 2.3, 2.5): symlog, two-hot, unimix categoricals,
the bounded normal policy. Everything here computes in float32.

Lazily computed values are cached in plain attributes rather than with cached_property, whose lock
(Python 3.11) torch.compile cannot trace: it would split the compiled update into many graphs."""
import math

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
    """Categorical over fixed raw-space bins; mean and two-hot cross-entropy (outs.py:273-330).

    mean_order: "mirrored" (default) subtracts mirrored probabilities before one product with
    the bins, exact in float32; "official" multiplies each probability by its raw bin (up to
    4.85e8) before the mirrored sum, as the official `TwoHot.pred` does, which leaves about 0.1
    of float32 rounding noise in every reward and value prediction (see benchmarks/parity.py).
    """

    def __init__(self, logits, bins, mean_order: str = "mirrored"):
        self.logits = logits.float()  # (..., K)
        self.bins = bins  # (K,), bins[K-1-i] = -bins[i] and bins[(K-1)/2] = 0
        self.mean_order = mean_order
        self._log_normalizer = None

    @property
    def log_normalizer(self):  # (...,), shared by every loss on these logits
        if self._log_normalizer is None:
            self._log_normalizer = self.logits.logsumexp(-1)
        return self._log_normalizer

    def mean(self):
        # Pair each bin with its mirror: sum_i p_i b_i = sum_{i<m} (p_i - p_{K-1-i}) b_i, so that
        # uniform probabilities give exactly 0. One matmul instead of products and a sum.
        probs = self.logits.softmax(-1)
        middle = (self.bins.shape[0] - 1) // 2
        if self.mean_order == "official":
            products = probs * self.bins  # (..., K), rounded at the scale of each raw bin
            mirrored = products[..., :middle].flip(-1) + products[..., middle + 1:]
            return products[..., middle] + mirrored.sum(-1)
        return (probs[..., :middle] - probs[..., middle + 1:].flip(-1)) @ self.bins[:middle]

    def loss(self, target):
        """Cross-entropy against the two-hot encoding of the raw target (...,).

        Only the two neighbouring bins carry weight, so the loss is gathered from those two
        logits instead of multiplying a (..., K) two-hot: log Z - w_lo l_lo - w_hi l_hi.
        """
        below, above, w_below, w_above = twohot_neighbours(target.float(), self.bins)
        picked = w_below * self.logits.gather(-1, below[..., None])[..., 0]
        picked = picked + w_above * self.logits.gather(-1, above[..., None])[..., 0]
        return self.log_normalizer - picked


def twohot_neighbours(target, bins):
    """Raw value (...,) -> indices of its two neighbouring bins b_lo <= y < b_hi and their weights,
    linear in raw space; outside the range both indices are the end bin."""
    count = bins.shape[0]
    above = torch.searchsorted(bins, target.contiguous(), right=True)  # number of bins <= target
    below = (above - 1).clamp(0, count - 1)
    above = above.clamp(0, count - 1)
    equal = below == above
    to_below = torch.where(equal, 1.0, (bins[below] - target).abs())
    to_above = torch.where(equal, 1.0, (bins[above] - target).abs())
    total = to_below + to_above
    return below, above, to_above / total, to_below / total


def softmax(x, log: bool = False):
    """(Log-)softmax over the last axis. PyTorch's CPU kernel is slow when that axis is short
    (1m's 4 latent classes: 0.92 ms vs 0.06 ms at (1024, 32, 4), 2 threads); over the second-to-last
    axis of the transposed view it vectorises across rows. Same result, a transposed view."""
    function = torch.log_softmax if log else torch.softmax
    if x.device.type == "cpu" and x.dim() >= 2 and x.shape[-1] <= 8:
        return function(x.transpose(-1, -2), -2).transpose(-1, -2)
    return function(x, -1)


class OneHotCategorical:
    """Categoricals over the last axis with straight-through one-hot samples (outs.py:208-270).

    probs = (1 - unimix) softmax(logits) + unimix / C, logits = log(probs). Both are computed on
    first use, so sampling in the imagination rollout never takes the log.
    """

    def __init__(self, logits, unimix: float = 0.0):
        self.raw = logits.float()  # (..., C)
        self.unimix = unimix
        self._probs = self._logits = None

    @property
    def probs(self):
        if self._probs is None:
            self._probs = softmax(self.raw)
            if self.unimix:
                self._probs = (1 - self.unimix) * self._probs + self.unimix / self.raw.shape[-1]
        return self._probs

    @property
    def logits(self):  # normalised log-probabilities
        if self._logits is None:
            self._logits = self.probs.log() if self.unimix else softmax(self.raw, log=True)
        return self._logits

    def detach(self) -> "OneHotCategorical":
        return OneHotCategorical(self.logits.detach())  # normalised logits: log_softmax keeps them

    def sample(self):
        # Inverse CDF: one uniform per categorical, the class is the number of CDF values below it.
        probs = self.probs
        cdf = probs.detach().cumsum(-1)
        uniform = torch.rand_like(cdf[..., :1]) * cdf[..., -1:]  # scaled by the total: no index past C-1
        index = (cdf <= uniform).sum(-1)
        onehot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
        if not (probs.requires_grad and torch.is_grad_enabled()):
            return onehot  # without gradient the straight-through term would only add rounding
        return onehot + probs - probs.detach()  # straight-through

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
        return (-0.5 * z.square() - self.std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self):
        return (0.5 + 0.5 * math.log(2 * math.pi) + self.std.log()).sum(-1)
