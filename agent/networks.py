"""Layers, encoder, decoder and MLP heads of DreamerV3 (spec sections 1, 2.2, 2.4, 2.5).

Every hidden layer is weight -> RMSNorm -> SiLU. Weights use the official truncated
normal fan-in init times the layer's `outscale`; biases start at 0, norm scales at 1.
Images are NHWC uint8 outside this module and NCHW float inside.
"""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agent.distributions import symlog
from spaces import STEP_KEYS, Space


def trunc_normal_in_(weight: torch.Tensor, fan_in: int, outscale: float = 1.0):
    """Standard normal truncated to [-2, 2], rescaled to std 1/sqrt(fan_in) (spec 1)."""
    with torch.no_grad():
        nn.init.trunc_normal_(weight, 0.0, 1.0, -2.0, 2.0)
        weight.mul_(1.1368 * math.sqrt(1.0 / fan_in) * outscale)
    return weight


class Linear(nn.Linear):
    """exact_bias_grad: sum the bias gradient over the batch in float64 (see `AddBias`)."""

    def __init__(self, inputs: int, units: int, outscale: float = 1.0, exact_bias_grad: bool = False):
        super().__init__(inputs, units)
        trunc_normal_in_(self.weight, inputs, outscale)
        nn.init.zeros_(self.bias)
        self.exact_bias_grad = exact_bias_grad

    def forward(self, x):
        if not self.exact_bias_grad:
            return super().forward(x)
        return AddBias.apply(F.linear(x, self.weight), self.bias)


class AddBias(torch.autograd.Function):
    """y + bias (..., U), whose bias gradient is summed over the batch in float64, so that every unit's
    sum comes out the same whatever order the kernel adds its rows in.

    Why: a two-hot head's bins mirror each other (b_{K-1-i} = -b_i, up to 4.85e8) and the far ones never
    get a target, so their logits stay exactly mirror-equal through training in the official code, and
    its mean there is exactly 0. PyTorch's CPU sum over the batch (float32) rounds some columns
    differently from their mirrors (a vectorised body and a scalar tail); that one-ulp asymmetry then
    grows, and with a fifth of the probability on the far bins (imagined states past an episode end)
    one ulp of logit moves the mean by about 0.06 per bin pair: imagined rewards of 2-5 on catch in 3 of 6 runs.
    """

    @staticmethod
    def forward(ctx, y, bias):
        ctx.bias_dtype = bias.dtype
        return y + bias.to(y.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad.reshape(-1, grad.shape[-1]).double().sum(0).to(ctx.bias_dtype)


class BlockLinear(nn.Module):
    """Block-diagonal linear layer: input (..., g, I/g) -> output (..., g, O/g).

    The fan-in of the init is the full input width I, not I/g (spec 1).
    """

    def __init__(self, inputs: int, units: int, blocks: int, outscale: float = 1.0):
        super().__init__()
        assert inputs % blocks == 0 and units % blocks == 0, (inputs, units, blocks)
        self.weight = nn.Parameter(torch.empty(blocks, inputs // blocks, units // blocks))
        self.bias = nn.Parameter(torch.zeros(blocks, units // blocks))
        trunc_normal_in_(self.weight, inputs, outscale)

    def forward(self, x):  # (..., g, I/g) -> (..., g, O/g)
        lead = x.shape[:-2]
        x = x.reshape(-1, *x.shape[-2:]).transpose(0, 1)  # (g, N, I/g)
        y = torch.bmm(x, self.weight.to(x.dtype)).transpose(0, 1)  # (N, g, O/g)
        return y.reshape(*lead, *y.shape[1:]) + self.bias.to(y.dtype)


class RMSNorm(nn.Module):
    """y = x * rsqrt(mean(x^2) + eps) * scale over the last axis, in float32 (spec 1)."""

    def __init__(self, size: int, eps: float = 1e-4):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        y = x.float()
        y = y * torch.rsqrt(y.square().mean(-1, keepdim=True) + self.eps) * self.scale
        return y.to(x.dtype)


class Dense(nn.Module):
    """Linear -> RMSNorm -> SiLU."""

    def __init__(self, inputs: int, units: int):
        super().__init__()
        self.linear = Linear(inputs, units)
        self.norm = RMSNorm(units)

    def forward(self, x):
        return F.silu(self.norm(self.linear(x)))


class MLP(nn.Sequential):
    def __init__(self, inputs: int, units: int, layers: int):
        super().__init__(*[Dense(inputs if i == 0 else units, units) for i in range(layers)])
        self.outputs = units if layers else inputs


class Conv(nn.Conv2d):
    """5x5 stride-1 SAME convolution with the fan-in init (fan-in = k*k*in)."""

    def __init__(self, inputs: int, outputs: int, kernel: int, outscale: float = 1.0):
        super().__init__(inputs, outputs, kernel, padding=kernel // 2)
        trunc_normal_in_(self.weight, kernel * kernel * inputs, outscale)
        nn.init.zeros_(self.bias)


def conv_stack(channels: int, widths: list[int], kernel: int):
    """Convolutions from `channels` through each width, with one RMSNorm per stage."""
    convs, norms = nn.ModuleList(), nn.ModuleList()
    for width in widths:
        convs.append(Conv(channels, width, kernel))
        norms.append(RMSNorm(width))
        channels = width
    return convs, norms


def channel_norm(norm: RMSNorm, x):  # RMSNorm over channels of an NCHW map, per pixel
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def split_keys(obs_space: dict[str, Space]):
    """Image keys (3-D uint8) and vector keys (<= 2-D), sorted (spec 2.1)."""
    images, vectors = [], []
    for key, space in sorted(obs_space.items()):
        if key in STEP_KEYS or key.startswith("log/"):
            continue
        if len(space.shape) == 3:
            if space.dtype != np.uint8:
                raise ValueError(f"observation {key!r} has 3-D shape {space.shape}, so it is an image "
                                 f"and must be uint8, got {space.dtype}")
            images.append(key)
        elif len(space.shape) <= 2:
            vectors.append(key)
        else:
            raise ValueError(f"observation {key!r} has shape {space.shape}: supported are images "
                             "(H, W, C) uint8 and vectors of at most 2 dimensions")
    return images, vectors


def vector_width(space: Space) -> int:
    """Encoder input width of a vector key: one-hot for integers, flattened floats."""
    size = int(np.prod(space.shape))
    return size * space.classes if space.discrete else size


def image_stages(resolution: int) -> int:
    """Number of 2x2 pooling stages is fixed at 4; the final map must be 3..16 wide."""
    final = resolution // 16
    if resolution % 16 or not 3 <= final <= 16:
        raise ValueError(f"image size {resolution} is not supported: it must be a multiple of 16 "
                         "between 48 and 256 (e.g. 64 or 96)")
    return final


class Encoder(nn.Module):
    """Observations -> token vector: vector MLP features concatenated with CNN features."""

    def __init__(self, obs_space: dict[str, Space], config):
        super().__init__()
        self.obs_space = obs_space
        self.image_keys, self.vector_keys = split_keys(obs_space)
        self.outputs = 0
        if self.vector_keys:
            inputs = sum(vector_width(obs_space[k]) for k in self.vector_keys)
            self.mlp = MLP(inputs, config.units, config.enc_layers)
            self.outputs += config.units
        if self.image_keys:
            shapes = {obs_space[k].shape[:2] for k in self.image_keys}
            if len(shapes) != 1:
                raise ValueError(f"image observations must share one height and width, got {shapes}")
            (height, width), = shapes
            final = image_stages(height)
            image_stages(width)
            channels = sum(obs_space[k].shape[2] for k in self.image_keys)
            widths = [config.depth * m for m in config.cnn_mults]
            self.convs, self.norms = conv_stack(channels, widths, config.kernel)
            self.outputs += final * (width // 16) * widths[-1]

    def forward(self, obs: dict) -> torch.Tensor:  # obs: (..., *shape) -> (..., E)
        first = (self.vector_keys + self.image_keys)[0]
        lead = obs[first].shape[:obs[first].dim() - len(self.obs_space[first].shape)]
        features = []
        if self.vector_keys:
            parts = []
            for key in self.vector_keys:
                space, x = self.obs_space[key], obs[key]
                x = x.reshape(*lead, -1)
                if space.discrete:
                    x = F.one_hot(x.long() - space.first, space.classes).flatten(-2)
                    parts.append(x.float())
                else:
                    parts.append(symlog(x.float()))
            features.append(self.mlp(torch.cat(parts, -1)))
        if self.image_keys:
            x = torch.cat([obs[k] for k in self.image_keys], -1)  # (..., H, W, C) uint8
            x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float() / 255.0 - 0.5
            for conv, norm in zip(self.convs, self.norms):
                x = F.max_pool2d(conv(x), 2)
                x = F.silu(channel_norm(norm, x))
            # Flatten in (H, W, C) order as the official NHWC code does.
            features.append(x.permute(0, 2, 3, 1).reshape(*lead, -1))
        dtype = features[-1].dtype
        return torch.cat([f.to(dtype) for f in features], -1)


class Decoder(nn.Module):
    """Latent state -> reconstructions: symlog MSE vectors, sigmoid images (spec 2.4)."""

    def __init__(self, obs_space: dict[str, Space], config):
        super().__init__()
        self.obs_space = obs_space
        self.image_keys, self.vector_keys = split_keys(obs_space)
        stoch = config.stoch * config.classes
        if self.vector_keys:
            self.mlp = MLP(stoch + config.deter, config.units, config.dec_layers)
            self.vector_heads = nn.ModuleDict({
                key: Linear(config.units, vector_width(obs_space[key])) for key in self.vector_keys})
        if self.image_keys:
            height, width = obs_space[self.image_keys[0]].shape[:2]
            self.map_shape = (height // 16, width // 16, config.depth * config.cnn_mults[-1])
            units = int(np.prod(self.map_shape))
            self.blocks = config.blocks
            self.from_deter = BlockLinear(config.deter, units, config.blocks)
            self.from_stoch = nn.Sequential(Dense(stoch, 2 * config.units), Linear(2 * config.units, units))
            self.map_norm = RMSNorm(self.map_shape[-1])
            widths = [config.depth * m for m in config.cnn_mults[:3]][::-1]  # 4c, 3c, 2c
            self.convs, self.norms = conv_stack(self.map_shape[-1], widths, config.kernel)
            self.image_channels = [obs_space[k].shape[2] for k in self.image_keys]
            self.out_conv = Conv(widths[-1], sum(self.image_channels), config.kernel)

    def forward(self, deter, stoch) -> dict:
        """deter (..., D), stoch (..., S, C) -> {key: prediction (..., *shape)}.

        Vector predictions live in symlog space; image predictions in [0, 1].
        """
        lead = deter.shape[:-1]
        stoch = stoch.flatten(-2)
        outputs = {}
        if self.vector_keys:
            hidden = self.mlp(torch.cat([stoch.to(deter.dtype), deter], -1))
            for key in self.vector_keys:
                space = self.obs_space[key]
                out = self.vector_heads[key](hidden)
                shape = (*space.shape, space.classes) if space.discrete else space.shape
                outputs[key] = out.reshape(*lead, *shape)
        if self.image_keys:
            m_h, m_w, channels = self.map_shape
            g = self.blocks
            x0 = self.from_deter(deter.reshape(-1, g, deter.shape[-1] // g))  # (N, g, U/g)
            # Block k fills channels [k*4c/g, (k+1)*4c/g) of the m x m x 4c map.
            x0 = x0.reshape(-1, g, m_h, m_w, channels // g).permute(0, 2, 3, 1, 4)
            x0 = x0.reshape(-1, m_h, m_w, channels)
            x1 = self.from_stoch(stoch.reshape(-1, stoch.shape[-1])).reshape(-1, m_h, m_w, channels)
            x = F.silu(self.map_norm(x0 + x1.to(x0.dtype))).permute(0, 3, 1, 2)  # (N, 4c, m, m)
            for conv, norm in zip(self.convs, self.norms):
                x = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
                x = F.silu(channel_norm(norm, x))
            x = self.out_conv(F.interpolate(x, scale_factor=2, mode="nearest"))
            x = torch.sigmoid(x.float()).permute(0, 2, 3, 1)  # (N, H, W, C)
            for key, part in zip(self.image_keys, x.split(self.image_channels, -1)):
                outputs[key] = part.reshape(*lead, *part.shape[1:])
        return outputs


class Head(nn.Module):
    """MLP on the feature vector, then a linear output layer with its own outscale. twohot: the outputs
    are two-hot logits, whose far bins must stay exactly mirror-equal (`AddBias`)."""

    def __init__(self, inputs: int, units: int, layers: int, outputs: int, outscale: float, twohot: bool = False):
        super().__init__()
        self.mlp = MLP(inputs, units, layers)
        self.out = Linear(self.mlp.outputs, outputs, outscale, exact_bias_grad=twohot)

    def forward(self, feat):
        return self.out(self.mlp(feat))
