"""Recurrent state-space model with a block GRU (spec 2.3, official dreamerv3/rssm.py).

State: deter h (B, D) and stoch z (B, S, C) one-hot (straight-through). Both start at
zero; on is_first the incoming state and the previous action are zeroed.

Speed: the first block-GRU layer and the first posterior layer are split at use time into
the part that reads h and the parts that read inputs known for the whole sequence
(action, token), so those are one matmul over all T steps instead of one per step. The
parameters and their init are the official ones; only the order of the sums changes.
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
        assert config.dyn_layers >= 1, "the block GRU has at least one hidden layer (spec 2.3)"
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

    # --- Weights split at use time ---

    def core_weights(self):
        """The first block layer's kernel (g, D/g + 3Hd, O/g) split into its h-rows (g, D/g, O/g) and
        its u-rows as one dense (3Hd, O) matrix, so u is not copied into every block."""
        layer, g = self.core_layers[0], self.blocks
        w_h, w_u = layer.weight.split([self.deter // g, 3 * self.hidden], 1)
        w_u = w_u.permute(1, 0, 2).reshape(3 * self.hidden, -1)  # (3Hd, O), block-major columns
        return w_h, w_u.split(self.hidden, 0), layer.bias.flatten()  # bias (O,)

    def action_inputs(self, action, weights):
        """Action part of the first block layer, plus its bias: (..., A) -> (..., O). No recurrence."""
        _, (_, _, w_action), bias = weights
        action = action / action.abs().clamp(min=1.0).detach()  # clip to [-1, 1], no gradient on the divisor
        return torch.addmm(bias, self.action_in(action).flatten(0, -2), w_action).reshape(*action.shape[:-1], -1)

    def token_inputs(self, token):
        """Token part of the posterior's first Linear, plus its bias: (..., E) -> (..., Hd)."""
        linear = self.posterior[0][0].linear
        return F.linear(token, linear.weight[:, self.deter:], linear.bias)

    # --- Steps ---

    def core(self, deter, stoch, action_part, weights):
        """h_t = f(h_{t-1}, z_{t-1}, a_{t-1}): (B, D), (B, S, C), (B, O) from action_inputs -> (B, D)."""
        batch, g = deter.shape[0], self.blocks
        w_h, (w_deter, w_stoch, _), _ = weights
        x = torch.bmm(deter.to(w_h.dtype).reshape(batch, g, -1).transpose(0, 1), w_h)  # (g, B, O/g)
        x = x.transpose(0, 1).reshape(batch, -1) + action_part  # (B, O)
        x = torch.addmm(x, self.deter_in(deter), w_deter)
        x = torch.addmm(x, self.stoch_in(stoch.flatten(1)), w_stoch)
        x = F.silu(self.core_norms[0](x))
        for layer, norm in zip(self.core_layers[1:], self.core_norms[1:]):
            x = F.silu(norm(layer(x.reshape(batch, g, -1)).reshape(batch, -1)))
        gates = self.gates(x.reshape(batch, g, -1)).float()  # (B, g, 3D/g): per block reset, cand, update
        reset, cand, update = gates.chunk(3, -1)  # each (B, g, D/g)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        # u * cand + (1 - u) * h, in the block layout so the gates are never copied.
        return torch.lerp(deter.float().reshape(batch, g, -1), cand, update).reshape(batch, self.deter)

    def dist(self, logits) -> OneHotCategorical:  # logits (..., S*C)
        return OneHotCategorical(logits.reshape(*logits.shape[:-1], self.stoch, self.classes), self.unimix)

    def posterior_logits(self, deter, token_part):  # (B, D), (B, Hd) from token_inputs -> (B, S*C)
        mlp, out = self.posterior
        first = mlp[0]
        x = torch.addmm(token_part, deter.to(token_part.dtype), first.linear.weight[:, :self.deter].t())
        x = F.silu(first.norm(x))
        for layer in list(mlp)[1:]:
            x = layer(x)
        return out(x)

    def observe(self, state, actions, tokens, is_first):
        """Posterior over a sequence. actions are the previous actions, aligned with tokens.

        state: dict of (B, ...); actions (B, T, A); tokens (B, T, E); is_first (B, T).
        Returns dict of (B, T, ...) with deter, stoch and posterior logits.
        """
        weights = self.core_weights()
        keep = (~is_first).float()[..., None]  # (B, T, 1)
        action_parts = self.action_inputs(actions * keep, weights)  # (B, T, O)
        token_parts = self.token_inputs(tokens)  # (B, T, Hd)
        deter, stoch = state["deter"], state["stoch"]
        steps = []
        for t in range(tokens.shape[1]):
            deter = self.core(deter * keep[:, t], stoch * keep[:, t, None], action_parts[:, t], weights)
            logits = self.posterior_logits(deter, token_parts[:, t])
            stoch = self.dist(logits).sample()
            steps.append((deter, stoch, logits))
        return {key: torch.stack(values, 1) for key, values in zip(("deter", "stoch", "logits"), zip(*steps))}

    def observe_step(self, state, action, token, is_first):
        """One posterior step. state: dict of (B, ...), action (B, A), token (B, E), is_first (B,)."""
        post = self.observe(state, action[:, None], token[:, None], is_first[:, None])
        return {key: value[:, 0] for key, value in post.items()}

    def imagine(self, state, policy, horizon: int):
        """Roll the prior forward: policy(state) -> action vector (N, A); returns the H+1 states."""
        weights = self.core_weights()
        states = [state]
        for _ in range(horizon):
            action_part = self.action_inputs(policy(states[-1]), weights)
            deter = self.core(states[-1]["deter"], states[-1]["stoch"], action_part, weights)
            states.append(dict(deter=deter, stoch=self.dist(self.prior(deter)).sample()))
        return states

    def kl_losses(self, post_logits, prior_logits, free_nats: float):
        """dyn = max(free, KL[sg(q) || p]), rep = max(free, KL[q || sg(p)]), summed over latents first."""
        post, prior = self.dist(post_logits), self.dist(prior_logits)
        post_sg, prior_sg = post.detach(), prior.detach()
        dyn = post_sg.kl(prior).sum(-1)
        rep = post.kl(prior_sg).sum(-1)
        metrics = dict(dyn_ent=prior_sg.entropy().sum(-1).mean(), rep_ent=post_sg.entropy().sum(-1).mean(),
                       kl=dyn.detach().mean())
        return dyn.clamp(min=free_nats), rep.clamp(min=free_nats), metrics
