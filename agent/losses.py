"""The loss of one update in its named parts (spec 3), the return computations and the return normaliser.

    world_model_loss   reconstruction, reward, continue and the two KL terms (spec 3.1)
    imagine            rollouts from every posterior state and their lambda-returns (spec 3.2, 3.3)
    actor_loss         REINFORCE with percentile-normalised advantages (spec 3.4)
    critic_loss        two-hot towards the returns and the slow critic (spec 3.5)
    replay_value_loss  the critic on the real sequence, bootstrapped from imagination (spec 3.6)

Each part takes the agent (its networks and action helpers, agent/agent.py) and returns per-step
losses; Agent.loss scales and sums them (spec 3.7).
"""
import torch
from torch import nn
from torch.nn import functional as F

from agent.distributions import symlog


def world_model_loss(agent, obs: dict, state: dict, prev_actions):
    """obs: (B, T, ...) tensors; state: the context step's latent; prev_actions: (B, T, A).
    Returns (losses: name -> (B, T), metrics, posterior states, features (B, T, F))."""
    cfg = agent.config
    batch, length = obs["is_first"].shape
    tokens = agent.encoder({k: obs[k] for k in agent.image_keys + agent.vector_keys})  # (B, T, E)
    post = agent.rssm.observe(state, prev_actions, tokens, obs["is_first"].bool())
    prior_logits = agent.rssm.prior(post["deter"])  # (B, T, S*C)
    losses = {}
    losses["dyn"], losses["rep"], metrics = agent.rssm.kl_losses(post["logits"], prior_logits, cfg.free_nats)
    feat = agent.features(post)  # (B, T, F)
    recon = agent.decoder(post["deter"], post["stoch"])
    for key in agent.image_keys:
        target = obs[key].float() / 255.0
        losses[key] = (recon[key].float() - target).square().sum((-3, -2, -1))
    for key in agent.vector_keys:
        space = agent.obs_space[key]
        if space.discrete:
            target = obs[key].long() - space.first
            ce = F.cross_entropy(recon[key].float().flatten(0, -2), target.flatten(), reduction="none")
            losses[key] = ce.reshape(batch, length, -1).sum(-1)
        else:
            error = recon[key].float() - symlog(obs[key].float())
            losses[key] = error.square().reshape(batch, length, -1).sum(-1)
    losses["rew"] = agent.twohot(agent.reward(feat)).loss(obs["reward"].float())
    cont_target = (1.0 - obs["is_terminal"].float()) * (1.0 - 1.0 / cfg.horizon)
    losses["con"] = F.binary_cross_entropy_with_logits(agent.cont(feat)[..., 0].float(), cont_target, reduction="none")
    return losses, metrics, post, feat


def imagine(agent, post: dict) -> dict:
    """Imagination from every posterior state, without gradient into the world model (spec 3.2).
    The policy runs with gradient during the rollout (its inputs are sg), so the actor loss reuses
    these outputs instead of running the policy again on the imagined states.
    Returns N = B*T rollouts: feat (N, H+1, F), reward, cont, slow_value, value (N, H+1), value_dist
    (with gradient into the critic), logp, entropy, weight w_t = c_0 ... c_t, returns (N, H)."""
    cfg = agent.config
    batch, length = post["deter"].shape[:2]
    start = {k: post[k].detach().reshape(batch * length, *post[k].shape[2:]) for k in ("deter", "stoch")}
    logps, entropies = [], []

    def act(state):
        with torch.enable_grad():
            dists = agent.policy_net(agent.features(state))
            action = agent.sample_actions(dists)
            logp, entropy = agent.log_prob_entropy(dists, action)
        logps.append(logp)
        entropies.append(entropy)
        return agent.action_vector(action)

    with torch.no_grad():
        states = agent.rssm.imagine(start, act, cfg.imag_length)
        imag = {k: torch.stack([s[k] for s in states], 1) for k in ("deter", "stoch")}
        feat = agent.features(imag)  # (N, H+1, F)
        reward = agent.twohot(agent.reward(feat)).mean()  # (N, H+1)
        cont = torch.sigmoid(agent.cont(feat)[..., 0].float())
        slow_value = agent.twohot(agent.slow_critic(feat)).mean()
    logp, entropy = torch.stack(logps, 1), torch.stack(entropies, 1)  # (N, H)
    value_dist = agent.twohot(agent.critic(feat))
    value = value_dist.mean().detach()  # (N, H+1)
    weight = torch.cumprod(cont, 1)[:, :-1]  # (N, H)
    returns = imagined_returns(reward, cont, value, cfg.return_lambda)  # (N, H)
    return dict(feat=feat, reward=reward, cont=cont, slow_value=slow_value, logp=logp, entropy=entropy,
                value_dist=value_dist, value=value, weight=weight, returns=returns)


def actor_loss(agent, imag: dict, update_normalizer: bool):
    """REINFORCE with percentile-normalised advantages and an entropy bonus: (N, H) and metrics."""
    cfg = agent.config
    returns, value, entropy = imag["returns"], imag["value"], imag["entropy"]
    if update_normalizer:
        agent.retnorm.update(returns)
    scale = agent.retnorm.scale()
    advantage = (returns - value[:, :-1]) / scale
    loss = -imag["weight"] * (imag["logp"] * advantage + cfg.actor_entropy * entropy)
    normalised = (returns - agent.retnorm.low) / scale  # the official metric's definition (offset P5)
    metrics = {
        "adv": advantage.mean(), "adv_std": advantage.std(), "adv_mag": advantage.abs().mean(),
        "ret": normalised.mean(), "ret_rate": (normalised.abs() >= 1).float().mean(), "retnorm/scale": scale,
        "ret_min": normalised.min(), "ret_max": normalised.max(),  # over all N x H returns, past episode ends too
        # Weighted as the losses weight them (cumulative continuation), so steps past an imagined episode
        # end, most of a short episode's rollout, hardly count; the official code gets them from
        # benchmarks/official_launcher.py.
        "adv_mag_live": live_mean(advantage.abs(), imag["weight"]),
        "policy_entropy_live": live_mean(entropy, imag["weight"]),
        **past_end_metrics(imag["reward"], imag["cont"], imag["weight"]),
    }
    return loss, metrics


def live_mean(values, weight):
    """Mean of (N, H) values weighted by the (N, H) continuation weight."""
    return (weight * values).sum() / weight.sum().clamp(min=1e-8)


def past_end_metrics(reward, cont, weight):
    """The imagined reward and continuation at steps s_t, t >= 1, whose predecessor lies past an imagined
    episode end (its weight, the cumulative continuation, below 0.5): states no training sequence
    covers, as a replayed episode end is followed by a reset. reward, cont: (N, H+1); weight: (N, H)."""
    past = (weight < 0.5).float()
    count = past.sum().clamp(min=1.0)
    magnitude = reward[:, 1:].abs()
    return {"past_end/frac": past.mean(), "past_end/reward_mag": (past * magnitude).sum() / count,
            "past_end/reward_max": (past * magnitude).max(), "past_end/cont": (past * cont[:, 1:]).sum() / count}


def critic_loss(agent, imag: dict):
    """Two-hot cross-entropy towards the returns and towards the slow critic's mean: (N, H)."""
    head = agent.twohot(imag["value_dist"].logits[:, :-1])
    return imag["weight"] * (head.loss(imag["returns"]) + agent.config.slow_reg * head.loss(imag["slow_value"][:, :-1]))


def replay_value_loss(agent, feat, obs: dict, imag: dict):
    """The critic on the real sequence (B, T), towards lambda-returns bootstrapped from the imagined
    return R_0 started at each step, and towards the slow critic: (B, T-1)."""
    cfg = agent.config
    batch, length = obs["is_first"].shape
    real_value = agent.twohot(agent.critic(feat))  # gradient reaches the world model (repval_grad)
    with torch.no_grad():
        real_slow = agent.twohot(agent.slow_critic(feat)).mean()
    bootstrap = imag["returns"][:, 0].reshape(batch, length)
    replay_return = replay_returns(obs["reward"].float(), obs["is_last"], obs["is_terminal"], bootstrap,
                                   gamma=1.0 - 1.0 / cfg.horizon, lam=cfg.repval_lambda)  # (B, T-1)
    head = agent.twohot(real_value.logits[:, :-1])
    live = 1.0 - obs["is_last"][:, :-1].float()
    return live * (head.loss(replay_return) + cfg.slow_reg * head.loss(real_slow[:, :-1]))


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
