"""LaProp with per-tensor adaptive gradient clipping and linear warm-up (spec 4).

Per parameter tensor θ with gradient g, step k = 1, 2, ...:
  1. AGC:      g <- g / max(1, ||g|| / (agc * max(pmin, ||θ||)))
  2. RMS:      ν <- β2 ν + (1 - β2) g²;  u = g / (sqrt(ν / (1 - β2^k)) + eps)
  3. Momentum: μ <- β1 μ + (1 - β1) u;   m = μ / (1 - β1^k)
  4. θ <- θ - lr_k m,  lr_k = lr * min(1, (k - 1) / warmup)  (the first update has lr 0)
"""
import torch


class LaProp(torch.optim.Optimizer):
    def __init__(self, params, lr=4e-5, warmup=1000, agc=0.3, pmin=1e-3, beta1=0.9, beta2=0.999, eps=1e-20):
        # The update counter k lives in the group, so it is saved with the optimizer state.
        super().__init__(params, dict(lr=lr, warmup=warmup, agc=agc, pmin=pmin,
                                      beta1=beta1, beta2=beta2, eps=eps, step=0))

    def current_lr(self, group, step: float) -> float:
        if group["warmup"] <= 0:
            return group["lr"]
        return group["lr"] * min(1.0, (step - 1) / group["warmup"])

    @torch.no_grad()
    def step(self, closure=None):
        stats = {}
        for group in self.param_groups:
            group["step"] += 1
            step = group["step"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                if "nu" not in self.state[p]:
                    self.state[p]["nu"] = torch.zeros_like(p)
                    self.state[p]["mu"] = torch.zeros_like(p)
            nus = [self.state[p]["nu"] for p in params]
            mus = [self.state[p]["mu"] for p in params]
            # 1. Adaptive gradient clipping per tensor.
            grad_norms = torch.stack(torch._foreach_norm(grads))
            param_norms = torch.stack(torch._foreach_norm(params))
            limits = group["agc"] * param_norms.clamp(min=group["pmin"])
            factors = 1.0 / torch.clamp(grad_norms / limits, min=1.0)
            # The gradients are scaled in place and then overwritten with the normalised update u, so
            # the only full-size temporary is the denominator (p.grad is not the raw gradient afterwards).
            torch._foreach_mul_(grads, list(factors.unbind()))
            # 2. RMS normalisation (bias-corrected second moment).
            beta1, beta2 = group["beta1"], group["beta2"]
            torch._foreach_mul_(nus, beta2)
            torch._foreach_addcmul_(nus, grads, grads, value=1 - beta2)
            denom = torch._foreach_div(nus, 1 - beta2 ** step)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_div_(grads, denom)  # grads now hold u
            del denom
            # 3. Momentum on the normalised gradient (bias-corrected).
            torch._foreach_mul_(mus, beta1)
            torch._foreach_add_(mus, grads, alpha=1 - beta1)
            lr = self.current_lr(group, step)
            torch._foreach_add_(params, mus, alpha=-lr / (1 - beta1 ** step))
            # A tensor, not .item(): reading it on the host would wait for the GPU to finish the update.
            stats = dict(grad_norm=grad_norms.norm(), lr=lr)
        return stats
