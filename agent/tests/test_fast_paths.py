"""Each fast path against the straightforward computation on the same inputs."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from agent.agent import Agent
from agent.config import make_config
from agent.distributions import OneHotCategorical, TwoHot, softmax, twohot_bins
from agent.rssm import RSSM
from agent.tests.conftest import random_batch


def dense_twohot(target, bins):
    """Two-hot weights (N, K) by comparing against every bin, as a reference."""
    count = bins.shape[0]
    below = ((bins <= target[:, None]).sum(-1) - 1).clamp(0, count - 1)
    above = (count - (bins > target[:, None]).sum(-1)).clamp(0, count - 1)
    weights = torch.zeros(target.shape[0], count, dtype=torch.float64)
    for i, (lo, hi, y) in enumerate(zip(below.tolist(), above.tolist(), target.tolist())):
        if lo == hi:
            weights[i, lo] = 1.0
        else:
            weights[i, lo] = (bins[hi] - y) / (bins[hi] - bins[lo])
            weights[i, hi] = (y - bins[lo]) / (bins[hi] - bins[lo])
    return weights.float()


def test_gathered_twohot_loss_equals_dense_cross_entropy():
    torch.manual_seed(0)
    bins = twohot_bins(255)
    targets = torch.cat([torch.randn(40) * 10, bins[[0, 100, 127, 200, 254]], torch.tensor([0.0, 1e10, -1e10])])
    logits = torch.randn(targets.shape[0], 255, requires_grad=True)
    fast = TwoHot(logits, bins).loss(targets)
    reference = -(dense_twohot(targets, bins) * logits.log_softmax(-1)).sum(-1)
    torch.testing.assert_close(fast, reference)
    grad, = torch.autograd.grad(fast.sum(), logits)
    grad_ref, = torch.autograd.grad(reference.sum(), logits)
    torch.testing.assert_close(grad, grad_ref)


def test_twohot_mean_equals_weighted_sum():
    torch.manual_seed(0)
    bins = twohot_bins(255)
    logits = torch.randn(6, 16, 255) * 3
    expected = (logits.softmax(-1).double() * bins.double()).sum(-1)
    torch.testing.assert_close(TwoHot(logits, bins).mean().double(), expected, rtol=1e-5, atol=1e-4)


def test_inverse_cdf_sample_follows_the_probabilities():
    torch.manual_seed(0)
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0]).log_softmax(-1)
    samples = OneHotCategorical(logits.expand(200_000, 4), unimix=0.01).sample()
    assert set(samples.sum(-1).tolist()) == {1.0}
    expected = 0.99 * logits.softmax(-1) + 0.01 / 4
    torch.testing.assert_close(samples.mean(0), expected, atol=4e-3, rtol=0)


def test_softmax_over_a_short_last_axis_equals_torch_softmax():
    torch.manual_seed(0)
    for shape in [(64, 32, 4), (64, 6), (64, 32, 16)]:  # transposed path for <= 8 classes, else torch's
        x = torch.randn(shape, requires_grad=True)
        for log in (False, True):
            fast, plain = softmax(x, log), (x.log_softmax(-1) if log else x.softmax(-1))
            torch.testing.assert_close(fast, plain)
            weights = torch.randn(shape)
            grad, = torch.autograd.grad((fast * weights).sum(), x)
            grad_plain, = torch.autograd.grad((plain * weights).sum(), x)
            torch.testing.assert_close(grad, grad_plain)


def make_rssm(seed=0):
    torch.manual_seed(seed)
    config = make_config("1m")
    return RSSM(config, token_size=24, action_size=6), config


def concatenated_core(rssm, deter, stoch, action):
    """The block GRU as written in spec 2.3: u copied next to every h-group, one BlockLinear."""
    batch, g = deter.shape[0], rssm.blocks
    action = action / action.abs().clamp(min=1.0).detach()
    u = torch.cat([rssm.deter_in(deter), rssm.stoch_in(stoch.flatten(1)), rssm.action_in(action)], -1)
    x = torch.cat([deter.reshape(batch, g, -1), u[:, None].expand(batch, g, u.shape[-1])], -1)
    for layer, norm in zip(rssm.core_layers, rssm.core_norms):
        x = F.silu(norm(layer(x).reshape(batch, -1))).reshape(batch, g, -1)
    reset, cand, update = rssm.gates(x).chunk(3, -1)
    reset, cand, update = (t.reshape(batch, -1) for t in (reset, cand, update))
    reset = torch.sigmoid(reset)
    cand = torch.tanh(reset * cand)
    update = torch.sigmoid(update - 1.0)
    return update * cand + (1 - update) * deter


def test_split_block_gru_equals_concatenated_form():
    rssm, config = make_rssm()
    deter = torch.randn(5, config.deter)
    stoch = F.one_hot(torch.randint(0, config.classes, (5, config.stoch)), config.classes).float()
    action = torch.randn(5, 6) * 2  # partly outside [-1, 1]: exercises the clipping
    weights = rssm.core_weights()
    fast = rssm.core(deter, stoch, rssm.action_inputs(action, weights), weights)
    reference = concatenated_core(rssm, deter, stoch, action)
    torch.testing.assert_close(fast, reference)
    grads = torch.autograd.grad(fast.square().sum(), list(rssm.parameters()), allow_unused=True)
    grads_ref = torch.autograd.grad(reference.square().sum(), list(rssm.parameters()), allow_unused=True)
    for grad, grad_ref in zip(grads, grads_ref):
        if grad_ref is not None:
            torch.testing.assert_close(grad, grad_ref)


def test_split_posterior_equals_cat_then_linear():
    rssm, config = make_rssm()
    deter, token = torch.randn(7, config.deter), torch.randn(7, 24)
    fast = rssm.posterior_logits(deter, rssm.token_inputs(token))
    torch.testing.assert_close(fast, rssm.posterior(torch.cat([deter, token], -1)))


def test_observe_equals_straightforward_loop():
    rssm, config = make_rssm()
    batch, length = 3, 6
    state = dict(deter=torch.randn(batch, config.deter),
                 stoch=F.one_hot(torch.randint(0, config.classes, (batch, config.stoch)), config.classes).float())
    actions, tokens = torch.randn(batch, length, 6), torch.randn(batch, length, 24)
    is_first = torch.zeros(batch, length, dtype=torch.bool)
    is_first[0, 2] = is_first[1, 0] = True
    torch.manual_seed(1)
    fast = rssm.observe(state, actions, tokens, is_first)
    torch.manual_seed(1)
    deter, stoch = state["deter"], state["stoch"]
    for t in range(length):
        keep = (~is_first[:, t]).float()[:, None]
        deter = concatenated_core(rssm, deter * keep, stoch * keep[..., None], actions[:, t] * keep)
        logits = rssm.posterior(torch.cat([deter, tokens[:, t]], -1))
        stoch = rssm.dist(logits).sample()
        torch.testing.assert_close(fast["deter"][:, t], deter)
        torch.testing.assert_close(fast["logits"][:, t], logits)
        torch.testing.assert_close(fast["stoch"][:, t], stoch)


def test_actor_terms_from_the_rollout_equal_a_second_policy_pass(spaces):
    """The loss reuses the policy outputs of the rollout; the plain way runs the policy again on the states."""
    torch.manual_seed(0)
    obs_space, act_space = spaces("vector", "discrete")
    agent = Agent(obs_space, act_space, make_config("1m", device="cpu", precision="float32"))
    rollout, terms = {}, []
    imagine, log_prob_entropy = agent.rssm.imagine, agent.log_prob_entropy

    def recording_imagine(state, policy, horizon):
        actions = []

        def recording_policy(s):
            actions.append(policy(s))
            return actions[-1]

        rollout["states"] = imagine(state, recording_policy, horizon)
        rollout["actions"] = torch.stack(actions, 1)  # (N, H, A) one-hot
        return rollout["states"]

    def recording_log_prob_entropy(dists, actions):
        terms.append(log_prob_entropy(dists, actions))
        return terms[-1]

    agent.rssm.imagine, agent.log_prob_entropy = recording_imagine, recording_log_prob_entropy
    data = agent.to_torch(random_batch(obs_space, act_space, agent.config, batch=2, length=5))
    agent.loss(data)
    logp = torch.stack([t[0] for t in terms], 1)
    entropy = torch.stack([t[1] for t in terms], 1)
    states = {k: torch.stack([s[k] for s in rollout["states"][:-1]], 1) for k in ("deter", "stoch")}
    dist = agent.policy_net(agent.features(states))["action"]
    torch.testing.assert_close(logp, dist.log_prob(rollout["actions"]))
    torch.testing.assert_close(entropy, dist.entropy())


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["steps", "update"])
def test_compiled_update_and_acting_equal_eager(spaces, mode, device):
    """compile=steps/update on a short batch (T=4, H=3 keep the tracing short): the same losses,
    gradients' effect (the next update's losses) and actions as eager. fallback_random makes the
    compiled code draw from torch's RNG like eager code does. On CUDA, update runs as CUDA graphs."""
    obs_space, act_space = spaces("vector", "discrete")
    agents = []
    for compile_mode in ("off", mode):
        torch.manual_seed(0)
        config = make_config("1m", device=device, precision="float32", compile=compile_mode, imag_length=3,
                             warmup=0, lr=1e-3)
        agents.append(Agent(obs_space, act_space, config))
    eager, compiled = agents
    batch = random_batch(obs_space, act_space, eager.config, batch=2, length=5)
    obs = {k: v[:, 1] for k, v in batch.items() if k in obs_space}
    results = []
    with torch._inductor.config.patch(fallback_random=True):
        for agent in agents:
            torch.manual_seed(1)
            metrics = [agent.train(batch)[0] for _ in range(2)]
            carry, actions, extras = agent.policy(agent.init_policy(2), obs)
            results.append((metrics, actions, extras))
    (metrics, actions, extras), (metrics_c, actions_c, extras_c) = results
    rel = 1e-4 if device == "cpu" else 1e-3  # GPU kernels of fused and unfused code sum in other orders
    for step, step_c in zip(metrics, metrics_c):
        for key in ("loss/total", "loss/dyn", "loss/vector", "loss/policy", "loss/value", "loss/repval"):
            assert step_c[key] == pytest.approx(step[key], rel=rel, abs=1e-6), key
    np.testing.assert_array_equal(actions_c["action"], actions["action"])
    np.testing.assert_allclose(extras_c["dyn/deter"], extras["dyn/deter"], atol=1e-3)
    assert metrics_c[1]["loss/total"] != metrics_c[0]["loss/total"]  # the second update saw new weights


@needs_cuda
def test_update_is_launched_without_waiting_for_the_gpu(spaces):
    """start_train queues the whole update and its output copies; any host-GPU synchronisation in it
    (an .item(), a copy from pageable memory) would make sampling the next batch wait."""
    obs_space, act_space = spaces("image", "discrete")
    agent = Agent(obs_space, act_space, make_config("1m", device="cuda"))
    batch = random_batch(obs_space, act_space, agent.config)
    agent.train(batch)  # the first update's lazy CUDA set-up may synchronise
    torch.cuda.set_sync_debug_mode("error")
    try:
        outputs = agent.start_train(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    metrics, latents = outputs.fetch()
    assert np.isfinite(list(metrics.values())).all() and agent.updates == 2
    assert latents["dyn/deter"].shape == (16, 64, agent.config.deter) and latents["dyn/deter"].dtype == np.float16
    assert latents["dyn/stoch"].shape == (16, 64, agent.config.stoch) and latents["dyn/stoch"].dtype == np.uint8
