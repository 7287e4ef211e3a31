"""Recurrent state-space model with a block GRU (spec 2.3, official dreamerv3/rssm.py).

State: deter h (B, D) and stoch z (B, S, C) one-hot (straight-through). Both start at
zero; on is_first the incoming state and the previous action are zeroed.
"""
import torch
from torch import nn
from torch.nn import functional as F

from agent.distributions import OneHotCategorical
from agent.networks import MLP, BlockLinear, Dense, Linear, RMSNorm


class RSSM(nn.Module):
    def __init__(self, config, token_size: int, action_size: int):
        super().__init__()
        self.deter, self.hidden, self.blocks = config.deter, config.hidden, config.blocks
        self.stoch, self.classes, self.unimix = config.stoch, config.classes, config.unimix
        assert self.deter % self.blocks == 0, (self.deter, self.blocks)
        latent = self.stoch * self.classes
        # Block GRU inputs (rssm.py:135-159).
        self.deter_in = Dense(self.deter, self.hidden)
        self.stoch_in = Dense(latent, self.hidden)
        self.action_in = Dense(action_size, self.hidden)
        self.core_layers = nn.ModuleList()
        self.core_norms = nn.ModuleList()
        inputs = self.deter + self.blocks * 3 * self.hidden  # every block sees its h-group and all of u
        for _ in range(config.dyn_layers):
            self.core_layers.append(BlockLinear(inputs, self.deter, self.blocks))
            self.core_norms.append(RMSNorm(self.deter))
            inputs = self.deter
        self.gates = BlockLinear(inputs, 3 * self.deter, self.blocks)
        self.posterior = nn.Sequential(
            MLP(self.deter + token_size, self.hidden, config.obs_layers), Linear(self.hidden, latent))
        self.prior = nn.Sequential(
            MLP(self.deter, self.hidden, config.img_layers), Linear(self.hidden, latent))

    def initial(self, batch: int, device) -> dict:
        return dict(deter=torch.zeros(batch, self.deter, device=device),
                    stoch=torch.zeros(batch, self.stoch, self.classes, device=device))

    def core(self, deter, stoch, action):
        """h_t = f(h_{t-1}, z_{t-1}, a_{t-1}): (B, D), (B, S, C), (B, A) -> (B, D)."""
        batch, g = deter.shape[0], self.blocks
        action = action / action.abs().clamp(min=1.0).detach()  # clip to [-1, 1], no gradient on the divisor
        u = torch.cat([self.deter_in(deter), self.stoch_in(stoch.flatten(1)), self.action_in(action)], -1)
        x = torch.cat([deter.to(u.dtype).reshape(batch, g, -1), u[:, None].expand(batch, g, u.shape[-1])], -1)
        for layer, norm in zip(self.core_layers, self.core_norms):
            x = F.silu(norm(layer(x).reshape(batch, -1))).reshape(batch, g, -1)
        reset, cand, update = self.gates(x).float().chunk(3, -1)  # each (B, g, D/g)
        reset, cand, update = (t.reshape(batch, self.deter) for t in (reset, cand, update))
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1 - update) * deter.float()

    def dist(self, logits) -> OneHotCategorical:  # logits (..., S*C)
        return OneHotCategorical(logits.reshape(*logits.shape[:-1], self.stoch, self.classes), self.unimix)

    def observe_step(self, state, action, token, is_first):
        """One posterior step. state: dict of (B, ...), action (B, A), token (B, E), is_first (B,)."""
        keep = (~is_first).float()[:, None]
        deter = state["deter"] * keep
        stoch = state["stoch"] * keep[..., None]
        deter = self.core(deter, stoch, action * keep)
        logits = self.posterior(torch.cat([deter.to(token.dtype), token], -1))
        stoch = self.dist(logits).sample()
        return dict(deter=deter, stoch=stoch, logits=logits)

    def observe(self, state, actions, tokens, is_first):
        """Posterior over a sequence. actions are the previous actions, aligned with tokens.

        state: dict of (B, ...); actions (B, T, A); tokens (B, T, E); is_first (B, T).
        Returns dict of (B, T, ...) with deter, stoch and posterior logits.
        """
        steps = []
        for t in range(tokens.shape[1]):
            state = self.observe_step(state, actions[:, t], tokens[:, t], is_first[:, t])
            steps.append(state)
        return {key: torch.stack([s[key] for s in steps], 1) for key in steps[0]}

    def imagine_step(self, state, action):
        deter = self.core(state["deter"], state["stoch"], action)
        stoch = self.dist(self.prior(deter)).sample()
        return dict(deter=deter, stoch=stoch)

    def prior_logits(self, deter):  # (..., D) -> (..., S*C)
        return self.prior(deter)

    def kl_losses(self, post_logits, prior_logits, free_nats: float):
        """dyn = max(free, KL[sg(q) || p]), rep = max(free, KL[q || sg(p)]), summed over latents first."""
        post, prior = self.dist(post_logits), self.dist(prior_logits)
        post_sg, prior_sg = self.dist(post_logits.detach()), self.dist(prior_logits.detach())
        dyn = post_sg.kl(prior).sum(-1)
        rep = post.kl(prior_sg).sum(-1)
        metrics = dict(dyn_ent=prior.entropy().sum(-1).mean(), rep_ent=post.entropy().sum(-1).mean(),
                       kl=dyn.mean())
        return dyn.clamp(min=free_nats), rep.clamp(min=free_nats), metrics
