"""Agent.loss against a plain re-implementation of the spec, term by term and gradient by gradient.

Pins down that the optimised loss path (split block-GRU matmuls, gathered two-hot losses, the
symmetric two-hot mean, policy outputs reused from the rollout, ...) computes exactly the
DreamerV3 loss of ../shared/docs/dreamerv3-spec.md section 3: the world-model terms (3.1), the
imagination rollout (3.2), λ-returns and weights (3.3), the actor loss with the percentile return
normaliser (3.4), the critic loss with the slow-critic regulariser (3.5), the replay value loss
(3.6) and the scaled total (3.7), including the normaliser's state update and the gradient of
every trained parameter.

`reference_loss` below uses the same modules (agent.nets) but writes every computation the
obvious way, with the spec's numbers written out (SPEC), so a changed config default is caught
too. Random draws line up with the agent's: both sample categoricals by inverse CDF from one
uniform per categorical (torch.rand) and normals from torch.randn, in the same order: the
posterior over the T real steps, then per imagined step the action and the prior latent.
"""
import math

import pytest
import torch
from torch.nn import functional as F

from agent.agent import Agent
from agent.config import make_config
from agent.tests.conftest import make_spaces, random_batch
from agent.tests.test_fast_paths import concatenated_core, dense_twohot

BATCH, LENGTH, HORIZON = 3, 6, 5  # B, T (data has T+1 steps with the context), H

# The spec's numbers (spec section in brackets), written out rather than read from the config.
SPEC = dict(
    unimix=0.01,  # latent categoricals (2.3)
    free_nats=1.0,  # (3.1)
    cont_target=1.0 - 1.0 / 333,  # soft continue target of live steps (3.1)
    lam=0.95,  # imagined returns (3.3)
    retnorm_rate=0.01, retnorm_perc=(5.0, 95.0), retnorm_limit=1.0,  # (3.4)
    actent=3e-4,  # (3.4)
    slowreg=1.0,  # (3.5)
    repval_gamma=1.0 - 1.0 / 333, repval_lam=0.95,  # (3.6)
    min_std=0.1, max_std=1.0,  # continuous policy (2.5)
    scales=dict(rec=1.0, rew=1.0, con=1.0, dyn=1.0, rep=0.1, policy=1.0, value=1.0, repval=0.3),  # (3.7)
)


# --- Plain building blocks ---

def plain_bins():
    """128 points in [-20, 0], symexp, mirrored around an exact 0 (spec 2.5): (255,)."""
    x = torch.linspace(-20.0, 0.0, 128)
    half = torch.sign(x) * torch.expm1(x.abs())
    return torch.cat([half, -half[:-1].flip(0)])


def symlog(x):
    return torch.sign(x) * torch.log1p(x.abs())


def twohot_ce(logits, target, bins):
    """Cross-entropy of logits (..., K) against the dense two-hot of the raw target (...,)."""
    weights = dense_twohot(target.detach().flatten().float(), bins).reshape(*target.shape, -1)
    return -(weights * logits.float().log_softmax(-1)).sum(-1)


def twohot_mean(logits, bins):
    """softmax · bins (...,). In float64: a float32 plain sum over bins up to 4.85e8 would lose
    more precision than the tolerances allow (the agent uses a symmetric sum instead)."""
    return (logits.double().softmax(-1) * bins.double()).sum(-1).float()


def unimix(logits, mix):
    """Probabilities (..., C) mixed with `mix` of the uniform distribution."""
    return (1 - mix) * logits.float().softmax(-1) + mix / logits.shape[-1]


def sample_onehot(probs):
    """One class per categorical (..., C) from one uniform each, by inverse CDF, as the agent draws
    them (the uniform is scaled by the CDF's total so rounding cannot give an index past C-1).
    Straight-through gradient: onehot + probs - sg(probs) (spec 2.3)."""
    cdf = probs.detach().cumsum(-1)
    uniform = torch.rand(*probs.shape[:-1], 1) * cdf[..., -1:]
    index = torch.searchsorted(cdf, uniform, right=True)[..., 0]  # first class whose CDF exceeds u
    onehot = F.one_hot(index, probs.shape[-1]).float()
    return onehot + probs - probs.detach()


def categorical_kl(p, q):
    """KL[p || q] of (..., S, C) probabilities, summed over classes and the S latents."""
    return (p * (p.log() - q.log())).sum((-2, -1))


def percentile(values, q):
    """Linear-interpolation percentile of all entries (numpy's default), in float64."""
    x = values.detach().flatten().double().sort().values
    position = q / 100 * (x.numel() - 1)
    lo = math.floor(position)
    hi = min(lo + 1, x.numel() - 1)
    return x[lo] + (position - lo) * (x[hi] - x[lo])


def action_vector(act_space, actions):
    """(..., A): sorted keys, discrete actions one-hot."""
    parts = []
    for key, space in sorted(act_space.items()):
        if space.discrete:
            parts.append(F.one_hot(actions[key].long() - int(space.low), space.classes).float())
        else:
            parts.append(actions[key].float())
    return torch.cat(parts, -1)


def policy_dists(agent, feat):
    """Per action key: ("discrete", probs (..., A)) or ("normal", torch Normal with (..., A))."""
    policy = agent.nets["pol"]
    hidden = policy.mlp(feat)
    dists = {}
    for key, layer in policy.logits.items():
        # Actor unimix is the project's documented choice (config.actor_unimix; spec 2.5 and 8.2).
        dists[key] = ("discrete", unimix(layer(hidden), 0.01 if agent.config.actor_unimix else 0.0))
    for key, layer in policy.mean.items():
        mean = torch.tanh(layer(hidden))
        std = (SPEC["max_std"] - SPEC["min_std"]) * torch.sigmoid(policy.std[key](hidden) + 2.0) + SPEC["min_std"]
        dists[key] = ("normal", torch.distributions.Normal(mean, std))
    return dists


def sample_policy(dists):
    """Actions per key: one-hot (N, A) for discrete, unsquashed normal samples (N, A) otherwise."""
    actions = {}
    for key, (kind, dist) in sorted(dists.items()):
        if kind == "discrete":
            actions[key] = sample_onehot(dist).detach()
        else:
            actions[key] = dist.mean + dist.stddev * torch.randn(dist.mean.shape)
    return actions


def features(deter, stoch):  # concat(h, flatten(z)): (..., D + S*C)
    return torch.cat([deter, stoch.flatten(-2)], -1)


# --- The loss, written out ---

def reference_loss(agent, data, retnorm_low, retnorm_high):
    """Total loss, per-term loss tensors (B, T) / (N, H) / (B, T-1), the updated normaliser state
    (low, high) and a few intermediate values for the checks that every term is exercised."""
    nets, rssm, cfg = agent.nets, agent.nets["dyn"], agent.config
    bins = plain_bins()
    batch, length = data["is_first"].shape[0], data["is_first"].shape[1] - 1
    stoch_shape = (cfg.stoch, cfg.classes)
    losses = {}

    # Replay context (spec 5.3): step 0's stored latent is the start state, steps 0..T-1 the previous actions.
    deter = data["dyn/deter"][:, 0].float()  # (B, D)
    stoch = F.one_hot(data["dyn/stoch"][:, 0].long(), cfg.classes).float()  # (B, S, C)
    prev_actions = action_vector(agent.act_space, {k: data[k][:, :-1] for k in agent.act_space})  # (B, T, A)
    obs = {k: v[:, 1:] for k, v in data.items()}  # (B, T, ...)
    tokens = nets["enc"]({k: obs[k] for k in agent.image_keys + agent.vector_keys})  # (B, T, E)

    # Posterior over the real steps; on is_first the carry and the previous action are zeroed (spec 2.3).
    deters, stochs, post_logits = [], [], []
    for t in range(length):
        keep = 1.0 - obs["is_first"][:, t].float()  # (B,)
        deter = concatenated_core(rssm, deter * keep[:, None], stoch * keep[:, None, None],
                                  prev_actions[:, t] * keep[:, None])  # (B, D)
        logits = rssm.posterior(torch.cat([deter, tokens[:, t]], -1)).reshape(batch, *stoch_shape)
        stoch = sample_onehot(unimix(logits, SPEC["unimix"]))  # (B, S, C)
        deters.append(deter)
        stochs.append(stoch)
        post_logits.append(logits)
    deter, stoch, post_logits = (torch.stack(x, 1) for x in (deters, stochs, post_logits))  # (B, T, ...)
    feat = features(deter, stoch)  # (B, T, F)

    # KL terms with free nats, clamped after summing over the latents (spec 3.1).
    post = unimix(post_logits, SPEC["unimix"])  # (B, T, S, C)
    prior = unimix(rssm.prior(deter).reshape(batch, length, *stoch_shape), SPEC["unimix"])
    kl_dyn = categorical_kl(post.detach(), prior)  # (B, T)
    kl_rep = categorical_kl(post, prior.detach())
    losses["dyn"] = kl_dyn.clamp(min=SPEC["free_nats"])
    losses["rep"] = kl_rep.clamp(min=SPEC["free_nats"])

    # Reconstruction: images sum of squared errors of x/255, float vectors in symlog space (spec 3.1).
    recon = nets["dec"](deter, stoch)
    for key in agent.image_keys:
        losses[key] = (recon[key] - obs[key].float() / 255.0).square().sum((-3, -2, -1))
    for key in agent.vector_keys:
        assert not agent.obs_space[key].discrete, "integer vector observations are not covered here"
        losses[key] = (recon[key] - symlog(obs[key].float())).square().sum(-1)

    # Reward: two-hot of the raw reward; continue: log loss against the soft target.
    losses["rew"] = twohot_ce(nets["rew"](feat), obs["reward"].float(), bins)
    cont_target = (1.0 - obs["is_terminal"].float()) * SPEC["cont_target"]
    cont_logit = nets["con"](feat)[..., 0]
    losses["con"] = -(cont_target * F.logsigmoid(cont_logit) + (1 - cont_target) * F.logsigmoid(-cont_logit))

    # Imagination from every posterior state, all states stop-gradiented (spec 3.2). N = B*T.
    with torch.no_grad():
        h = deter.detach().reshape(batch * length, -1)  # (N, D)
        z = stoch.detach().reshape(batch * length, *stoch_shape)  # (N, S, C)
        states, actions = [(h, z)], []
        for _ in range(HORIZON):
            action = sample_policy(policy_dists(agent, features(h, z)))
            h = concatenated_core(rssm, h, z, torch.cat([action[k] for k in sorted(action)], -1))
            z = sample_onehot(unimix(rssm.prior(h).reshape(-1, *stoch_shape), SPEC["unimix"]))
            states.append((h, z))
            actions.append(action)
        imag_feat = torch.stack([features(h, z) for h, z in states], 1)  # (N, H+1, F)
        imag_reward = twohot_mean(nets["rew"](imag_feat), bins)  # (N, H+1)
        imag_cont = torch.sigmoid(nets["con"](imag_feat)[..., 0])  # (N, H+1)
        slow_value = twohot_mean(nets["slowval"](imag_feat), bins)  # (N, H+1)
    value_logits = nets["val"](imag_feat)  # (N, H+1, K)
    value = twohot_mean(value_logits, bins).detach()  # (N, H+1)

    # Weights w_t = c_0 ... c_t and λ-returns R_t = r_{t+1} + c_{t+1} ((1-λ) v_{t+1} + λ R_{t+1}) (spec 3.3).
    lam = SPEC["lam"]
    weight = [imag_cont[:, 0]]
    for t in range(1, HORIZON):
        weight.append(weight[-1] * imag_cont[:, t])
    weight = torch.stack(weight, 1)  # (N, H)
    returns = [None] * HORIZON
    following = value[:, HORIZON]  # R_H = v_H
    for t in reversed(range(HORIZON)):
        returns[t] = imag_reward[:, t + 1] + imag_cont[:, t + 1] * ((1 - lam) * value[:, t + 1] + lam * following)
        following = returns[t]
    returns = torch.stack(returns, 1)  # (N, H)

    # Return normaliser: EMA of the 5th and 95th percentiles, updated before it is read (spec 3.4).
    rate, (perc_lo, perc_hi) = SPEC["retnorm_rate"], SPEC["retnorm_perc"]
    low = (1 - rate) * retnorm_low + rate * percentile(returns, perc_lo)
    high = (1 - rate) * retnorm_high + rate * percentile(returns, perc_hi)
    scale = max(SPEC["retnorm_limit"], (high - low).item())

    # Actor: REINFORCE; log-prob and entropy from running the policy again on the states s_0..s_{H-1}.
    dists = policy_dists(agent, imag_feat[:, :-1])
    logp, entropy = 0.0, 0.0
    for key, (kind, dist) in dists.items():
        taken = torch.stack([a[key] for a in actions], 1)  # (N, H, A)
        if kind == "discrete":
            logp = logp + (taken * dist.log()).sum(-1)
            entropy = entropy - (dist * dist.log()).sum(-1)
        else:
            logp = logp + dist.log_prob(taken).sum(-1)
            entropy = entropy + dist.entropy().sum(-1)
    advantage = ((returns - value[:, :-1]) / scale).detach()
    losses["policy"] = -weight.detach() * (logp * advantage + SPEC["actent"] * entropy)  # (N, H)

    # Critic: two-hot towards the returns plus towards the slow critic's mean (spec 3.5).
    value_logits = value_logits[:, :-1]  # (N, H, K)
    losses["value"] = weight.detach() * (twohot_ce(value_logits, returns, bins)
                                         + SPEC["slowreg"] * twohot_ce(value_logits, slow_value[:, :-1], bins))

    # Replay value loss on the real steps, bootstrapped from the imagined R_0 (spec 3.6).
    real_logits = nets["val"](feat)  # (B, T, K), gradient reaches the world model
    with torch.no_grad():
        real_slow = twohot_mean(nets["slowval"](feat), bins)  # (B, T)
    boot = returns[:, 0].reshape(batch, length)
    reward, last, term = obs["reward"].float(), obs["is_last"].float(), obs["is_terminal"].float()
    gamma, lam = SPEC["repval_gamma"], SPEC["repval_lam"]
    replay_return = [None] * (length - 1)
    following = boot[:, -1]  # G_{T-1} = B_{T-1}
    for t in reversed(range(length - 1)):
        k = lam * (1 - last[:, t + 1])
        replay_return[t] = reward[:, t + 1] + gamma * (1 - term[:, t + 1]) * (
            (1 - k) * boot[:, t + 1] + k * following)
        following = replay_return[t]
    replay_return = torch.stack(replay_return, 1)  # (B, T-1)
    real_logits = real_logits[:, :-1]  # the last step has no return
    losses["repval"] = (1 - last[:, :-1]) * (twohot_ce(real_logits, replay_return, bins)
                                              + SPEC["slowreg"] * twohot_ce(real_logits, real_slow[:, :-1], bins))

    # Total: scaled per-step means (spec 3.7); every observation key gets the `rec` scale.
    scales = dict(SPEC["scales"], **{k: SPEC["scales"]["rec"] for k in agent.image_keys + agent.vector_keys})
    total = sum(scales[k] * v.mean() for k, v in losses.items())
    stats = dict(kl_dyn=kl_dyn.detach(), kl_rep=kl_rep.detach(), scale=scale, advantage=advantage, weight=weight)
    return total, losses, (low.float(), high.float()), stats


# --- Test set-up ---

def perturb_(agent, generator, latent_logit_scale):
    """Move every parameter off its init so no term is trivially zero or constant.

    Weights get noise of about half their init std (zero- and small-init output layers become
    ordinary layers), biases and norm scales noise of std 0.1. The two-hot outputs (reward,
    critic, slow critic) get a peaked bias over the bins, as a trained head has: it keeps the
    mass away from the +-4.85e8 end bins, where a float32 mean would be dominated by rounding.
    The posterior and prior logit layers are scaled down so that their KL lies around the free
    nats (as in a trained world model), so some steps are clamped and some are not.
    """
    with torch.no_grad():
        for param in agent.nets.parameters():
            if param.dim() >= 2:
                fan_in = param[0].numel() if param.dim() != 3 else param.shape[0] * param.shape[1]
                param.add_(torch.randn(param.shape, generator=generator) * 0.5 / math.sqrt(fan_in))
            else:
                param.add_(torch.randn(param.shape, generator=generator) * 0.1)
        grid = symlog(plain_bins())  # (255,) evenly spaced in symlog space
        for name, centre in (("rew", 0.3), ("val", 1.5), ("slowval", 0.8)):
            agent.nets[name].out.bias.add_(-0.5 * (grid - centre).square())
        agent.nets["con"].out.bias.add_(3.0)  # continue probabilities near 0.95, as in live episodes
        agent.nets["dyn"].posterior[1].weight.mul_(latent_logit_scale)
        agent.nets["dyn"].prior[1].weight.mul_(latent_logit_scale)


def make_batch(obs_space, act_space, config):
    """(B, T+1) random batch with explicit episode events (index 0 is the context step)."""
    data = random_batch(obs_space, act_space, config, batch=BATCH, length=LENGTH + 1, seed=3)
    for key in ("is_first", "is_last", "is_terminal"):
        data[key][:] = False
    data["is_first"][:, 0] = True  # the replay marks the first step of every sequence
    data["is_terminal"][0, 3] = data["is_last"][0, 3] = True  # terminal ...
    data["is_first"][0, 4] = True  # ... then a reset step mid-sequence
    data["is_last"][1, 2] = True  # time-limit end (not terminal)
    data["is_first"][1, 3] = True
    data["is_first"][2, 1] = True  # first training step starts an episode: the context is dropped
    data["is_terminal"][2, 6] = data["is_last"][2, 6] = True  # terminal on the final step
    data["reward"][data["is_first"]] = 0.0
    data["reward"][:, 2] *= 30.0  # some rewards beyond the two-hot spacing near 0
    return data


CASES = [
    # obs, act, retnorm state (low, high) before the update (scale above the limit / at the limit),
    # latent logit scale that puts the KL of about half the steps below the free nats.
    ("vector", "discrete", (-2.0, 3.0), 0.27),
    ("vector", "continuous", (0.1, 0.4), 0.27),
    ("image", "discrete", (-1.0, 4.0), 0.235),
]


@pytest.mark.parametrize("obs, act, retnorm_state, latent_logit_scale", CASES)
def test_loss_and_gradients_match_plain_spec_implementation(obs, act, retnorm_state, latent_logit_scale):
    torch.manual_seed(0)
    obs_space, act_space = make_spaces(obs, act)
    config = make_config("1m", device="cpu", precision="float32", batch_size=BATCH, batch_length=LENGTH,
                         imag_length=HORIZON)
    agent = Agent(obs_space, act_space, config)
    perturb_(agent, torch.Generator().manual_seed(1), latent_logit_scale)
    agent.retnorm.low.fill_(retnorm_state[0])
    agent.retnorm.high.fill_(retnorm_state[1])
    data = agent.to_torch(make_batch(obs_space, act_space, config))
    params = agent.trained_parameters()
    names = [f"{module}.{n}" for module, net in agent.trained_modules().items() for n, _ in net.named_parameters()]

    low, high = agent.retnorm.low.clone(), agent.retnorm.high.clone()
    torch.manual_seed(123)
    total, metrics, _ = agent.loss(data, update_normalizer=True)
    grads = torch.autograd.grad(total, params, allow_unused=True)
    torch.manual_seed(123)
    ref_total, ref_losses, (ref_low, ref_high), stats = reference_loss(agent, data, low, high)
    ref_grads = torch.autograd.grad(ref_total, params, allow_unused=True)

    # Every term is exercised: not constant, free nats clamp some entries but not all, the
    # normaliser's limit is active exactly where intended, advantages and weights are not degenerate.
    assert set(ref_losses) == {k[len("loss/"):] for k in metrics if k.startswith("loss/") and k != "loss/total"}
    for key, term in ref_losses.items():
        assert term.isfinite().all() and term.std() > 1e-3, (key, term)
    for kl in (stats["kl_dyn"], stats["kl_rep"]):
        assert 0 < (kl < SPEC["free_nats"]).float().mean() < 1, kl
    assert (stats["scale"] > 1.0) == (retnorm_state[1] - retnorm_state[0] > 1.0), stats["scale"]
    assert stats["advantage"].abs().mean() > 1e-2 and 0.2 < stats["weight"].mean() < 0.99

    # Per-term means and the total. Both paths are float32; only summation orders differ (measured
    # relative differences <= 2e-7), so rtol 1e-5 leaves a wide margin and still sees any real change.
    for key, term in ref_losses.items():
        torch.testing.assert_close(metrics[f"loss/{key}"], term.mean().detach(), rtol=1e-5, atol=1e-6, msg=key)
    torch.testing.assert_close(total.detach(), ref_total.detach(), rtol=1e-5, atol=1e-6)
    # The normaliser state after the update.
    torch.testing.assert_close(agent.retnorm.low, ref_low, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(agent.retnorm.high, ref_high, rtol=1e-5, atol=1e-6)
    # The gradient of every trained parameter (none may be missing or zero). Gradients sum many
    # contributions that partly cancel, so near-zero entries carry a large relative error; the absolute
    # tolerance is relative to the tensor's largest entry (measured differences <= 2.4e-6 of it).
    for name, grad, ref in zip(names, grads, ref_grads):
        assert grad is not None and ref is not None and ref.abs().sum() > 0, name
        torch.testing.assert_close(grad, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item(), msg=name)
