"""The cross-check of our networks against the official ones: the parameter names, the loading, and one real
cross-check against the official code (deselected unless -m official)."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.agent import Agent
from agent.config import make_config
from agent.tests.conftest import make_spaces, random_batch
from benchmarks import parity
from benchmarks.official_crosscheck import (
    compare_initial,
    load_official,
    main,
    make_inputs,
    official_name,
    our_functions,
    to_official_layout,
)
from training.tests.test_train import TINY
from training.train import main as train

OBS_KEYS = {"vector": "observation"}


def make_agent(act: str, seed: int) -> Agent:
    torch.manual_seed(seed)
    obs_space, act_space = make_spaces("vector", act)
    return Agent(obs_space, act_space, make_config("1m", device="cpu"))


def as_official(agent: Agent) -> dict:
    """Our parameters in the official layout: Linear kernels (in, out), BlockLinear biases flat."""
    return dict(to_official_layout(name, tensor, OBS_KEYS) for name, tensor in agent.nets.state_dict().items())


@pytest.mark.parametrize("act", ["discrete", "continuous"])
def test_every_network_parameter_has_its_own_official_name(act):
    names = [official_name(name, OBS_KEYS) for name in make_agent(act, 0).nets.state_dict()]
    assert None not in names
    assert len(set(names)) == len(names)
    assert "dec/vec/observation/pred/kernel" in names and "dyn/dyngru/bias" in names


@pytest.mark.parametrize("act", ["discrete", "continuous"])
def test_loading_parameters_in_the_official_layout_reproduces_the_networks(act):
    source, target = make_agent(act, 0), make_agent(act, 1)
    batch = random_batch(*make_spaces("vector", act), source.config, batch=2, length=9)
    with torch.no_grad():
        inputs = make_inputs(source, batch, OBS_KEYS)
        expected = our_functions(source, inputs, OBS_KEYS)
        assert not np.allclose(our_functions(target, inputs, OBS_KEYS)["post_deter"], expected["post_deter"])
        load_official(target, as_official(source), OBS_KEYS)
        outputs = our_functions(target, inputs, OBS_KEYS)
    assert outputs.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(outputs[key], expected[key], err_msg=key)


def test_a_missing_official_parameter_is_named():
    source, target = make_agent("discrete", 0), make_agent("discrete", 1)
    params = as_official(source)
    del params["rew/head/logits/kernel"]
    with pytest.raises(SystemExit, match="rew.out.weight"):
        load_official(target, params, OBS_KEYS)


def test_initial_parameters_agree_across_seeds_and_a_rescaled_tensor_is_flagged(capsys):
    """Our agent against itself at other seeds stands in for the official side: same scheme, other draws."""
    ours = [as_official(make_agent("continuous", seed)) for seed in (0, 1)]
    other = [as_official(make_agent("continuous", seed)) for seed in (2, 3)]
    assert compare_initial(ours, other)
    other[0]["dyn/dyngru/kernel"] = 2 * other[0]["dyn/dyngru/kernel"]
    other[1]["dyn/dyngru/kernel"] = 2 * other[1]["dyn/dyngru/kernel"]
    assert not compare_initial(ours, other)
    assert "dyn/dyngru/kernel | (8, 64, 192) |" in capsys.readouterr().out.split("NO")[0].splitlines()[-1]
    other[0]["rew/head/logits/kernel"] = np.ones_like(other[0]["rew/head/logits/kernel"])  # zero on our side
    other[1]["rew/head/logits/kernel"] = np.ones_like(other[1]["rew/head/logits/kernel"])
    for seed in (0, 1):
        other[seed]["dyn/dyngru/kernel"] = ours[1 - seed]["dyn/dyngru/kernel"]  # equal again: only rew differs
    assert not compare_initial(ours, other)


OFFICIAL = os.environ.get("DREAMERV3_OFFICIAL")
OFFICIAL_PYTHON = os.environ.get("DREAMERV3_OFFICIAL_PYTHON")


@pytest.mark.official
@pytest.mark.skipif(not (OFFICIAL and OFFICIAL_PYTHON and Path(OFFICIAL_PYTHON).exists()),
                    reason="needs $DREAMERV3_OFFICIAL and $DREAMERV3_OFFICIAL_PYTHON (the official code's JAX venv)")
def test_our_networks_compute_what_the_official_ones_compute(tmp_path, capsys):
    """A short official catch run saves its parameters every few seconds; our short run gives the sequences."""
    settings = parity.Settings(suite="bsuite", task="catch/0", steps=600, train_ratio=32, batch_size=4,
                               batch_length=32, lr=1e-4, warmup=0)  # the official report needs 32
    command = parity.official_command(settings, 0, tmp_path / "official", "official", Path(OFFICIAL), OFFICIAL_PYTHON)
    command += ["--run.save_every", "5"]  # the later flag wins: checkpoints while it trains
    parity.run_jobs([(tmp_path / "official", command)], cores=[0])
    ours = tmp_path / "ours"
    assert train(["--suite", "bsuite", "--task", "catch/0", "--size", "1m", "--device", "cpu", *TINY,
                  "--steps", "200", "--logdir", str(ours)]) == 0
    with pytest.raises(SystemExit) as exit_status:
        main(["--official-run", str(tmp_path / "official"), "--ours-run", str(ours), "--batch-size", "2"])
    table = capsys.readouterr().out
    assert exit_status.value.code == 0, table
    assert "post_logit" in table and "rew_logits" in table and "NO" not in table
    with pytest.raises(SystemExit) as exit_status:
        main(["--official-run", str(tmp_path / "official"), "--ours-run", str(ours), "--initial-seeds", "2"])
    table = capsys.readouterr().out
    assert exit_status.value.code == 0, table
    assert "dyn/dyngru/kernel" in table and "NO" not in table
