"""The agent's train step and acting step on random batches (B=16, T=64+1, H=15)."""
import numpy as np
import pytest
import torch

from agent.agent import Agent
from agent.config import make_config
from agent.hardware import resolve_precision
from agent.tests.conftest import random_batch
from spaces import Space


def make_agent(spaces, obs, act, size="1m", **overrides):
    obs_space, act_space = spaces(obs, act)
    config = make_config(size, device="cpu", **overrides)
    return Agent(obs_space, act_space, config), obs_space, act_space


@pytest.mark.parametrize("obs", ["vector", "image"])
@pytest.mark.parametrize("act", ["discrete", "continuous"])
def test_train_step_reduces_world_model_loss_size1m(spaces, obs, act):
    torch.manual_seed(0)
    agent, obs_space, act_space = make_agent(spaces, obs, act, warmup=0, lr=1e-3)
    batch = random_batch(obs_space, act_space, agent.config)
    world_model = ("dyn", "rep", "rew", "con", obs)
    losses = []
    for _ in range(4):
        metrics, latents = agent.train(batch)
        assert all(np.isfinite(v) for v in metrics.values()), metrics
        losses.append(sum(metrics[f"loss/{k}"] for k in world_model))
    assert losses[-1] < losses[0] * 0.9, losses
    assert latents["dyn/deter"].shape == (16, 64, agent.config.deter)
    assert latents["dyn/stoch"].shape == (16, 64, agent.config.stoch)
    assert latents["dyn/stoch"].dtype == np.uint8


@pytest.mark.slow
@pytest.mark.parametrize("obs, act", [("vector", "continuous"), ("image", "discrete")])
def test_train_step_size12m(spaces, obs, act):
    torch.manual_seed(0)
    agent, obs_space, act_space = make_agent(spaces, obs, act, size="12m")
    metrics, _ = agent.train(random_batch(obs_space, act_space, agent.config))
    assert np.isfinite(metrics["loss/total"])
    assert agent.updates == 1


def test_first_update_has_lr_zero_and_slow_critic_ema(spaces):
    torch.manual_seed(0)
    agent, obs_space, act_space = make_agent(spaces, "vector", "discrete")
    batch = random_batch(obs_space, act_space, agent.config, batch=4, length=9)
    before = {k: v.clone() for k, v in agent.nets.state_dict().items()}
    agent.train(batch)
    for name in ("enc", "dyn", "dec", "pol", "val"):
        for key, value in agent.nets[name].state_dict().items():
            assert torch.equal(value, before[f"{name}.{key}"]), f"{name}.{key} moved with lr 0"
    # Second update: lr > 0; the slow critic follows θ_slow <- 0.02 θ + 0.98 θ_slow.
    slow_before = [p.clone() for p in agent.slow_critic.parameters()]
    agent.train(batch)
    for slow, old, online in zip(agent.slow_critic.parameters(), slow_before, agent.critic.parameters()):
        torch.testing.assert_close(slow, 0.98 * old + 0.02 * online)
    moved = [not torch.equal(v, before[f"dec.{k}"]) for k, v in agent.nets["dec"].state_dict().items()]
    assert any(moved)


def test_policy_step_shapes_and_reset(spaces):
    torch.manual_seed(0)
    agent, obs_space, act_space = make_agent(spaces, "image", "continuous")
    carry = agent.init_policy(3)
    obs = {"image": np.zeros((3, 64, 64, 3), np.uint8), "reward": np.zeros(3, np.float32),
           "is_first": np.ones(3, bool), "is_last": np.zeros(3, bool), "is_terminal": np.zeros(3, bool),
           "log/ignored": np.zeros(3)}
    carry, action, extras = agent.policy(carry, obs)
    assert action["action"].shape == (3, 6) and action["action"].dtype == np.float32
    assert extras["dyn/deter"].shape == (3, 512) and extras["dyn/deter"].dtype == np.float16
    assert extras["dyn/stoch"].shape == (3, 32) and extras["dyn/stoch"].max() < 4
    # is_first zeroes the carry: the same observation from any carry gives the same deter.
    _, _, again = agent.policy(carry, obs)
    np.testing.assert_allclose(again["dyn/deter"], extras["dyn/deter"], rtol=1e-6)


def test_discrete_actions_in_range_and_actor_unimix_switch(spaces):
    agent, *_ = make_agent(spaces, "vector", "discrete")
    assert agent.policy_net.unimix == 0.01
    agent_off, *_ = make_agent(spaces, "vector", "discrete", actor_unimix=False)
    assert agent_off.policy_net.unimix == 0.0
    carry = agent.init_policy(64)
    obs = {"vector": np.zeros((64, 24), np.float32), "is_first": np.ones(64, bool)}
    _, action, _ = agent.policy(carry, obs)
    assert action["action"].min() >= 0 and action["action"].max() < 6
    assert len(np.unique(action["action"])) > 1  # near-uniform initial policy


def test_state_dict_round_trip(spaces):
    torch.manual_seed(0)
    agent, obs_space, act_space = make_agent(spaces, "vector", "continuous")
    batch = random_batch(obs_space, act_space, agent.config, batch=4, length=9)
    agent.train(batch)
    agent.train(batch)
    other, *_ = make_agent(spaces, "vector", "continuous")
    other.load_state_dict(agent.state_dict())
    assert other.updates == 2
    assert other.retnorm.high.item() == agent.retnorm.high.item()
    torch.manual_seed(1)
    first, _ = agent.train(batch)
    torch.manual_seed(1)
    second, _ = other.train(batch)
    assert first["loss/total"] == second["loss/total"]


def test_bfloat16_autocast_runs(spaces):
    agent, obs_space, act_space = make_agent(spaces, "image", "discrete", precision="bfloat16")
    metrics, _ = agent.train(random_batch(obs_space, act_space, agent.config, batch=2, length=9))
    assert np.isfinite(metrics["loss/total"])
    assert all(p.dtype == torch.float32 for p in agent.nets.parameters())


def test_auto_precision_is_bfloat16_only_where_its_matmuls_are_faster(monkeypatch):
    import agent.hardware as module

    cpu = torch.device("cpu")
    monkeypatch.setattr(module, "cpu_has_bfloat16", lambda: True)
    seconds = {torch.float32: 2.0, torch.bfloat16: 1.0}
    monkeypatch.setattr(module, "best_linear_seconds", lambda dtype: seconds[dtype])
    assert module.cpu_bfloat16_pays_off.__wrapped__() is True
    seconds[torch.bfloat16] = 1.9  # AVX-512 BF16 but slower kernels (an Intel Xeon without AMX)
    assert module.cpu_bfloat16_pays_off.__wrapped__() is False
    monkeypatch.setattr(module, "cpu_has_bfloat16", lambda: False)
    monkeypatch.setattr(module, "best_linear_seconds", lambda dtype: pytest.fail("emulated bf16 is not timed"))
    assert module.cpu_bfloat16_pays_off.__wrapped__() is False
    for pays_off, dtype in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(module, "cpu_bfloat16_pays_off", lambda result=pays_off: result)
        assert resolve_precision("auto", cpu) is dtype
        assert resolve_precision("float32", cpu) is None


def test_auto_compile_only_where_measured_to_repay_it():
    from agent.hardware import COMPILE_PAYS_OFF_UPDATES, resolve_compile

    vector = {"vector": Space(np.float32, (5,))}
    image = {"image": Space(np.uint8, (64, 64, 3)), "vector": Space(np.float32, (5,))}
    long, short = COMPILE_PAYS_OFF_UPDATES, COMPILE_PAYS_OFF_UPDATES - 1
    assert resolve_compile("auto", "cpu", long, vector)[0] == "update"
    assert resolve_compile("auto", "cpu", short, vector) == ("off", "auto: 9,999 updates do not repay the compile "
                                                                    "(from 10,000)")
    assert resolve_compile("auto", "cpu", long, image)[0] == "off"  # not yet measured
    assert resolve_compile("auto", "cuda", long, vector)[0] == "off"  # CUDA graphs: not yet measured
    for mode in ("off", "steps", "update"):  # a mode that is set is kept
        assert resolve_compile(mode, "cuda", 0, image) == (mode, "set")


@pytest.mark.parametrize("obs_space, message", [
    ({"image": ("float32", (64, 64, 3))}, "must be uint8"),
    ({"volume": ("float32", (4, 4, 4, 4))}, "supported are images"),
    ({"image": ("uint8", (50, 50, 3))}, "multiple of 16"),
])
def test_unsupported_observations_are_refused(obs_space, message):
    spaces = {k: Space(np.dtype(dtype), shape) for k, (dtype, shape) in obs_space.items()}
    with pytest.raises(ValueError, match=message):
        Agent(spaces, {"action": Space(np.int32, (), 0, 3)}, make_config("1m", device="cpu"))


def test_bad_config_input():
    with pytest.raises(ValueError, match="unknown size preset"):
        make_config("3m")
    with pytest.raises(KeyError, match="unknown config key 'learning_rate'"):
        make_config("1m", learning_rate=1e-4)
    with pytest.raises(ValueError, match="precision"):
        Agent({"vector": Space(np.float32, (3,))}, {"action": Space(np.int32, (), 0, 3)},
              make_config("1m", device="cpu", precision="fp8"))
    with pytest.raises(ValueError, match="compile must be one of auto, off, steps, update"):
        Agent({"vector": Space(np.float32, (3,))}, {"action": Space(np.int32, (), 0, 3)},
              make_config("1m", device="cpu", compile="true"))


@pytest.mark.parametrize("act", ["discrete", "continuous"])
def test_every_trained_module_gets_a_gradient_and_the_slow_critic_none(spaces, act):
    # Spec 3.7: encoder/RSSM <- rec, rew, con, dyn, rep, repval; decoder <- rec; heads <- their losses;
    # policy <- the actor loss through log-probabilities of the sampled imagined actions.
    torch.manual_seed(0)
    agent, obs_space, act_space = make_agent(spaces, "vector", act)
    batch = random_batch(obs_space, act_space, agent.config, batch=4, length=17)
    loss, _, _ = agent.loss(agent.to_torch(batch), update_normalizer=True)
    loss.backward()
    for name, module in agent.trained_modules().items():
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), f"{name} has parameters without gradient"
        assert sum(g.abs().sum() for g in grads) > 0, f"{name} got a zero gradient"
    assert all(p.grad is None for p in agent.slow_critic.parameters())


def test_twohot_heads_keep_their_far_bins_mirror_equal_through_training(spaces):
    """The reward and critic heads' far bins (never a target) start mirror-equal and must stay so exactly,
    as in the official code: with a fifth of the probability there, one ulp of asymmetry moves the two-hot
    mean by about 0.06 per bin pair (agent/networks.py AddBias). With PyTorch's float32 bias-gradient
    sum the reward head's were unequal after 17 of these updates (AVX2 CPU)."""
    torch.manual_seed(0)
    agent, obs_space, act_space = make_agent(spaces, "vector", "discrete", warmup=0, lr=1e-3)
    batch = random_batch(obs_space, act_space, agent.config, batch=8, length=33)  # rewards within +-3.4
    for _ in range(24):
        agent.train(batch)
    for name in ("rew", "val", "slowval"):
        out = agent.nets[name].out
        for param in (out.weight, out.bias):  # (255, units), (255,): rows 0-99 mirror rows 254-155
            assert torch.equal(param[:100], param.flip(0)[:100]), name
    assert agent.nets["rew"].out.weight[:100].abs().max() > 0  # the far bins did train (pushed down)


def test_add_bias_gradient_is_the_bias_gradient():
    from agent.networks import AddBias

    y = torch.randn(4, 5, 7, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(AddBias.apply, (y, bias))
    low = torch.randn(6, 7, dtype=torch.bfloat16, requires_grad=True)  # autocast's dtype; the bias stays float32
    bias = torch.zeros(7, requires_grad=True)
    AddBias.apply(low, bias).float().sum().backward()
    assert bias.grad.dtype == torch.float32 and torch.equal(bias.grad, torch.full((7,), 6.0))
