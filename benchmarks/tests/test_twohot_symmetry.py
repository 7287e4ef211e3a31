"""benchmarks/twohot_symmetry.py: the far-bin asymmetry of a run's two-hot heads, from its checkpoint."""
import numpy as np
import torch

from agent.agent import Agent
from agent.config import make_config
from agent.tests.conftest import make_spaces
from benchmarks import twohot_symmetry
from training.checkpoint import Checkpoint


def test_far_asymmetry_counts_only_the_far_bins_and_their_mirrors():
    weight, bias = np.zeros((7, 3)), np.zeros(7)
    far = np.array([True, True, False, False, False, False, False])  # bins 0, 1 and mirrors 6, 5
    weight[3, 0] = 1.0  # the middle bin: not far
    weight[6, 2] = 2e-8  # bin 0's mirror
    bias[1] = -1e-3
    assert twohot_symmetry.far_asymmetry(weight, bias, far) == (1e-3, 2)
    assert twohot_symmetry.far_asymmetry(np.zeros((7, 3)), np.zeros(7), far) == (0.0, 0)


def test_reads_our_checkpoint_and_reports_each_head(tmp_path, capsys):
    torch.manual_seed(0)
    agent = Agent(*make_spaces("vector", "discrete"), make_config("1m", device="cpu"))
    with torch.no_grad():
        agent.nets["val"].out.bias[3] = 0.5  # bin 3 against its mirror, bin 251
    checkpoint = Checkpoint(tmp_path / "run" / "checkpoints")
    checkpoint.register("agent", agent.state_dict, agent.load_state_dict)  # as training/train.py does
    checkpoint.save(100)
    (tmp_path / "run.log").write_text("")  # what a shell pattern such as run* also matches: skipped
    twohot_symmetry.main([str(tmp_path / "run"), str(tmp_path / "run.log")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("bin pairs beyond 10") and len(lines) == 2
    assert lines[1].endswith("rew 0.00e+00 (0 of 112), val 5.00e-01 (1 of 112)")
