"""One LaProp + AGC step and the warm-up (spec 4.2) by hand."""
import pytest
import torch

from agent.optimizer import LaProp


def test_one_laprop_agc_step():
    theta = torch.nn.Parameter(torch.tensor([3.0, 4.0]))  # ||θ|| = 5
    opt = LaProp([theta], lr=0.01, warmup=0)
    theta.grad = torch.tensor([6.0, 8.0])  # ||g|| = 10 > 0.3 * 5: clipped to norm 1.5 -> [0.9, 1.2]
    opt.step()
    # ν̂ = g², so u = g / |g| = [1, 1]; μ̂ = u; θ <- θ - 0.01 * [1, 1].
    torch.testing.assert_close(theta.detach(), torch.tensor([2.99, 3.99]))
    state = opt.state[theta]
    torch.testing.assert_close(state["nu"], 0.001 * torch.tensor([0.81, 1.44]))
    torch.testing.assert_close(state["mu"], torch.tensor([0.1, 0.1]))


def test_agc_floor_lets_zero_tensors_move():
    theta = torch.nn.Parameter(torch.zeros(4))
    opt = LaProp([theta], lr=1.0, warmup=0)
    theta.grad = torch.full((4,), 10.0)  # clipped to norm 0.3 * 1e-3, but RMS scaling undoes the size
    opt.step()
    torch.testing.assert_close(theta.detach(), torch.full((4,), -1.0))


def test_warmup_first_update_has_lr_zero():
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = LaProp([theta], lr=4e-5, warmup=1000)
    theta.grad = torch.tensor([0.1, 0.1])
    opt.step()
    torch.testing.assert_close(theta.detach(), torch.tensor([1.0, -2.0]))  # k = 1: lr 0
    assert opt.current_lr(opt.param_groups[0], 2) == pytest.approx(4e-8)
    assert opt.current_lr(opt.param_groups[0], 1001) == pytest.approx(4e-5)
    assert opt.current_lr(opt.param_groups[0], 5000) == pytest.approx(4e-5)
    before = theta.detach().clone()
    opt.step()
    assert not torch.equal(theta.detach(), before)


def test_state_dict_keeps_the_update_count():
    theta = torch.nn.Parameter(torch.ones(2))
    opt = LaProp([theta])
    theta.grad = torch.ones(2)
    opt.step()
    opt.step()
    other = LaProp([torch.nn.Parameter(torch.ones(2))])
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["step"] == 2
