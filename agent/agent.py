"""The DreamerV3 agent: world model, actor, critic, one loss, one optimizer (spec 0-4).

    agent = Agent(obs_space, act_space, config)
    carry = agent.init_policy(num_envs)
    carry, action, extras = agent.policy(carry, obs)    # numpy in, numpy out
    metrics, latents = agent.train(batch)                # batch (B, T+1, ...) with context step
    outputs = agent.start_train(batch)                   # the same, fetched later: outputs.fetch()

Everything the algorithm knows lives here; nothing about any benchmark.
"""
import contextlib
import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agent.config import Config
from agent.distributions import BoundedNormal, OneHotCategorical, TwoHot, twohot_bins
from agent.hardware import resolve_device, resolve_precision
from agent.losses import ReturnNormalizer, actor_loss, critic_loss, imagine, replay_value_loss, world_model_loss
from agent.networks import MLP, Decoder, Encoder, Head, Linear, split_keys
from agent.optimizer import LaProp
from agent.rssm import RSSM
from spaces import STEP_KEYS, Space

# The latent stored in replay for the replay context (spec 0): h as float16 (|h| <= 1, so about
# 3 decimal digits, error <= 2.4e-4; the official replay keeps the bfloat16 compute dtype) and z as
# uint8 class indices. At 200m, h is 16 KiB per step instead of 32 KiB, more than a 64x64 image.
DETER_DTYPE = torch.float16


class Policy(nn.Module):
    """Shared MLP, then per action key a categorical or a bounded normal (spec 2.5)."""

    def __init__(self, inputs: int, act_space: dict[str, Space], config: Config):
        super().__init__()
        self.act_space = act_space
        self.unimix = 0.01 if config.actor_unimix else 0.0
        self.min_std, self.max_std = config.min_std, config.max_std
        self.mlp = MLP(inputs, config.units, config.pol_layers)
        self.logits, self.mean, self.std = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        for key, space in act_space.items():
            if space.discrete:
                self.logits[key] = Linear(config.units, space.classes, outscale=0.01)
            else:
                size = int(np.prod(space.shape))
                self.mean[key] = Linear(config.units, size, outscale=0.01)
                self.std[key] = Linear(config.units, size, outscale=0.01)

    def forward(self, feat) -> dict:
        hidden = self.mlp(feat)
        dists = {key: OneHotCategorical(layer(hidden), self.unimix) for key, layer in self.logits.items()}
        for key, layer in self.mean.items():
            dists[key] = BoundedNormal(layer(hidden), self.std[key](hidden), self.min_std, self.max_std)
        return dists


class Agent:
    def __init__(self, obs_space: dict[str, Space], act_space: dict[str, Space], config: Config):
        self.config = config
        self.obs_space = dict(obs_space)
        self.act_space = {k: v for k, v in sorted(act_space.items()) if k != "reset"}
        for key, space in self.act_space.items():
            if space.discrete and space.shape != ():
                raise ValueError(f"discrete action {key!r} must be a scalar, got shape {space.shape}")
        self.image_keys, self.vector_keys = split_keys(self.obs_space)
        if not self.image_keys + self.vector_keys:
            raise ValueError(f"no observation key to learn from in {sorted(self.obs_space)}")
        self.device = torch.device(resolve_device(config.device))
        self.autocast_dtype = resolve_precision(config.precision, self.device)

        self.nets = make_networks(self.obs_space, self.act_space, config)
        self.nets.to(self.device)
        self.encoder, self.rssm, self.decoder = self.nets["enc"], self.nets["dyn"], self.nets["dec"]
        self.reward, self.cont, self.policy_net = self.nets["rew"], self.nets["con"], self.nets["pol"]
        self.critic, self.slow_critic, self.retnorm = self.nets["val"], self.nets["slowval"], self.nets["retnorm"]
        self.bins = twohot_bins(config.bins).to(self.device)
        self.cuda_graphs = False  # set by compile_update on CUDA
        if config.compile == "steps":  # "auto" is resolved by the training loop (agent.hardware.resolve_compile)
            self.compile_steps()
        elif config.compile == "update":
            self.compile_update()
        self.optimizer = LaProp(self.trained_parameters(), lr=config.lr, warmup=config.warmup,
                                agc=config.agc, pmin=config.agc_pmin, beta1=config.beta1,
                                beta2=config.beta2, eps=config.eps)

    def compile_steps(self):
        """compile=steps: torch.compile the per-step pieces (block-GRU step, head and policy MLPs), not
        the 64-step unrolled loss. Fuses the elementwise ops around the matmuls; about 30 s compiling."""
        self.rssm.core = torch.compile(self.rssm.core, dynamic=False)
        for module in (self.reward, self.cont, self.critic, self.slow_critic, self.policy_net.mlp):
            module.compile(dynamic=False)

    def compile_update(self):
        """compile=update: torch.compile the whole loss (its backward comes compiled from AOTAutograd)
        and the acting step. Tracing the 64 + 15 unrolled steps takes minutes before the first update.
        On CUDA with mode reduce-overhead both replay as CUDA graphs: the update's shapes (B, T+1) and
        the acting step's (envs) never change, so each is captured once and then launched as one graph."""
        self.cuda_graphs = self.device.type == "cuda"
        mode = "reduce-overhead" if self.cuda_graphs else None
        self.loss = torch.compile(self.loss, mode=mode, dynamic=False)  # instance attributes shadow the methods
        self.act = torch.compile(self.act, mode=mode, dynamic=False)

    # --- Modules and parameters ---

    def trained_modules(self) -> dict[str, nn.Module]:
        """The seven modules the optimizer trains (agent.py:74-78)."""
        return {name: self.nets[name] for name in TRAINED}

    def trained_parameters(self):
        return [p for module in self.trained_modules().values() for p in module.parameters()]

    def state_dict(self) -> dict:
        """Parameters, slow critic, return normaliser and optimizer state (with its update count)."""
        return dict(nets=self.nets.state_dict(), optimizer=self.optimizer.state_dict())

    def load_state_dict(self, state: dict):
        self.nets.load_state_dict(state["nets"])
        self.optimizer.load_state_dict(state["optimizer"])

    @property
    def updates(self) -> int:
        return self.optimizer.param_groups[0]["step"]

    # --- Helpers ---

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def to_torch(self, data: dict) -> dict:
        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in data.items() if not k.startswith("log/")}
        if self.device.type != "cuda":
            return tensors
        # Pinned host memory lets the copies run asynchronously, queued ahead of the first kernel.
        return {k: v.pin_memory().to(self.device, non_blocking=True) for k, v in tensors.items()}

    def action_vector(self, actions: dict):
        """Action dict -> (..., A): sorted keys, discrete one-hot (spec 2.3)."""
        parts = []
        for key, space in self.act_space.items():
            value = actions[key]
            if space.discrete:
                parts.append(F.one_hot(value.long() - space.first, space.classes).float())
            else:
                parts.append(value.float().reshape(*value.shape[:value.dim() - len(space.shape)], -1))
        return torch.cat(parts, -1)

    def sample_actions(self, dists: dict) -> dict:
        """Sampled actions in the env's format: class indices or unsquashed continuous values."""
        actions = {}
        for key, dist in dists.items():
            space = self.act_space[key]
            if space.discrete:
                actions[key] = dist.sample().argmax(-1) + space.first
            else:
                actions[key] = dist.sample().reshape(*dist.mean.shape[:-1], *space.shape)
        return actions

    def log_prob_entropy(self, dists: dict, actions: dict):
        logp, entropy = 0.0, 0.0
        for key, dist in dists.items():
            space = self.act_space[key]
            if space.discrete:
                value = F.one_hot(actions[key].long() - space.first, space.classes).float()
            else:
                value = actions[key].float().reshape(*dist.mean.shape)
            logp = logp + dist.log_prob(value)
            entropy = entropy + dist.entropy()
        return logp, entropy

    @staticmethod
    def features(state) -> torch.Tensor:  # concat(h, flatten(z)): (..., D + S*C)
        return torch.cat([state["deter"], state["stoch"].flatten(-2).to(state["deter"].dtype)], -1)

    def twohot(self, logits) -> TwoHot:
        return TwoHot(logits, self.bins, self.config.twohot_mean)

    # --- Acting ---

    def init_policy(self, batch_size: int):
        state = self.rssm.initial(batch_size, self.device)
        action = torch.zeros(batch_size, self.rssm.action_in.linear.in_features, device=self.device)
        return state, action

    @torch.no_grad()
    def policy(self, carry, obs: dict):
        """One batched acting step: posterior from the observation, then a sampled action."""
        obs = self.to_torch({k: v for k, v in obs.items() if k in self.obs_space or k in STEP_KEYS})
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        state, action, actions = self.act(*carry, obs)
        if self.cuda_graphs:  # the next replay overwrites the graph's outputs; the carry must outlive it
            state, action = {k: v.clone() for k, v in state.items()}, action.clone()
        extras = {"dyn/deter": state["deter"].to(DETER_DTYPE).cpu().numpy(),
                  "dyn/stoch": state["stoch"].argmax(-1).to(torch.uint8).cpu().numpy()}
        return (state, action), {k: v.cpu().numpy() for k, v in actions.items()}, extras

    def act(self, state, prev_action, obs):
        """Tensors only, so compile=update can compile it: (posterior state, action vector, actions)."""
        with self.autocast():
            token = self.encoder(obs)
            state = self.rssm.observe_step(state, prev_action, token, obs["is_first"].bool())
            actions = self.sample_actions(self.policy_net(self.features(state)))
        state = dict(deter=state["deter"].float(), stoch=state["stoch"].float())
        return state, self.action_vector(actions), actions

    # --- Training ---

    def train(self, batch: dict):
        """One update on a (B, T+1) batch whose step 0 is the replay context (spec 0); waits for it.
        Returns (metrics: name -> float, latents: 'dyn/deter' (B, T, D) float16, 'dyn/stoch' (B, T, S) uint8)."""
        return self.start_train(batch).fetch()

    def start_train(self, batch: dict) -> "UpdateOutputs":
        """Launches one update and the copies of its outputs to the host, without waiting for them. On
        a GPU this returns while the GPU still computes, so the training loop samples the next batch
        meanwhile (the official loop prefetches too, and writes latents back one update late)."""
        data = self.to_torch(batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with self.autocast():
            loss, metrics, latents = self.loss(data, update_normalizer=True)
        loss.backward()
        metrics.update({f"opt/{k}": v for k, v in self.optimizer.step().items()})
        with torch.no_grad():
            rate = self.config.slow_rate
            slow, online = list(self.slow_critic.parameters()), list(self.critic.parameters())
            torch._foreach_lerp_(slow, online, rate)
            latents = {"dyn/deter": latents["deter"].to(DETER_DTYPE),
                       "dyn/stoch": latents["stoch"].argmax(-1).to(torch.uint8)}
        return UpdateOutputs(metrics, latents)

    def split_context(self, data: dict):
        """A (B, T+1) batch whose step 0 is the replay context -> (the context step's stored latent,
        previous actions (B, T, A) = the actions of steps 0..T-1, observations (B, T, ...) of steps 1..T)."""
        state = dict(deter=data["dyn/deter"][:, 0].float(),
                     stoch=F.one_hot(data["dyn/stoch"][:, 0].long(), self.config.classes).float())
        prev_actions = self.action_vector({k: data[k][:, :-1] for k in self.act_space})
        obs = {k: data[k][:, 1:] for k in list(self.obs_space) + list(STEP_KEYS) if k in data}
        return state, prev_actions, obs

    def loss(self, data: dict, update_normalizer: bool = False):
        """The total loss of one batch (spec 3.7): the parts of agent/losses.py, scaled and summed.
        data: tensors (B, T+1, ...) whose step 0 is the replay context."""
        cfg = self.config
        state, prev_actions, obs = self.split_context(data)
        losses, metrics, post, feat = world_model_loss(self, obs, state, prev_actions)
        imag = imagine(self, post)
        losses["policy"], actor_metrics = actor_loss(self, imag, update_normalizer)
        losses["value"] = critic_loss(self, imag)
        losses["repval"] = replay_value_loss(self, feat, obs, imag)

        scales = dict(cfg.loss_scales)
        scales.update({key: cfg.loss_scales["rec"] for key in self.image_keys + self.vector_keys})
        total = sum(scales[k] * v.mean() for k, v in losses.items())
        metrics.update({f"loss/{k}": v.mean() for k, v in losses.items()})
        metrics.update({"loss/total": total, **actor_metrics, "value": imag["value"].mean(),
                        "policy_entropy": imag["entropy"].mean(), "reward_pred": imag["reward"].mean()})
        return total, {k: v.detach() for k, v in metrics.items()}, {k: post[k].detach() for k in ("deter", "stoch")}


class UpdateOutputs:
    """An update's metrics and latents on their way to the host. On CUDA the copies go into pinned
    memory behind the update's kernels and `fetch` waits for them; elsewhere they are already there."""

    def __init__(self, metrics: dict, latents: dict):
        # Plain numbers (the learning rate) stay on the host; the 0-d tensors travel as one vector.
        self.numbers = {k: v for k, v in metrics.items() if not isinstance(v, torch.Tensor)}
        self.names = [k for k, v in metrics.items() if isinstance(v, torch.Tensor)]
        values = torch.stack([metrics[k].detach().float() for k in self.names])  # (M,)
        self.values, self.latents = to_host(values), {k: to_host(v) for k, v in latents.items()}
        self.event = None
        if values.device.type == "cuda":
            self.event = torch.cuda.Event()
            self.event.record()

    def fetch(self) -> tuple[dict, dict]:
        """(metrics: name -> float, latents: name -> numpy array)."""
        if self.event is not None:
            self.event.synchronize()
        metrics = dict(zip(self.names, self.values.tolist()))
        metrics.update({k: float(v) for k, v in self.numbers.items()})
        return metrics, {k: v.numpy() for k, v in self.latents.items()}


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy that a CUDA tensor starts without waiting (into pinned memory); CPU tensors as they are."""
    if tensor.device.type != "cuda":
        return tensor
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    return host.copy_(tensor, non_blocking=True)


TRAINED = ("enc", "dyn", "dec", "rew", "con", "pol", "val")


def make_networks(obs_space: dict[str, Space], act_space: dict[str, Space], config: Config) -> nn.ModuleDict:
    """All networks under their official names (agent.py:51-78). act_space without `reset`."""
    feat = config.deter + config.stoch * config.classes
    action_size = sum(s.classes if s.discrete else int(np.prod(s.shape)) for s in act_space.values())
    nets = nn.ModuleDict(dict(enc=Encoder(obs_space, config)))
    nets["dyn"] = RSSM(config, nets["enc"].outputs, action_size)
    nets["dec"] = Decoder(obs_space, config)
    nets["rew"] = Head(feat, config.units, config.rew_layers, config.bins, outscale=0.0, twohot=True)
    nets["con"] = Head(feat, config.units, config.con_layers, 1, outscale=1.0)
    nets["pol"] = Policy(feat, act_space, config)
    nets["val"] = Head(feat, config.units, config.val_layers, config.bins, outscale=0.0, twohot=True)
    # Not trained by the optimizer: the slow critic (an EMA) and the return normaliser.
    nets["slowval"] = copy.deepcopy(nets["val"]).requires_grad_(False)
    nets["retnorm"] = ReturnNormalizer(config.retnorm_low, config.retnorm_high,
                                       config.retnorm_rate, config.retnorm_limit)
    return nets


def parameter_counts(nets: nn.ModuleDict) -> dict[str, int]:
    """Per-module parameter counts; `total` is what the optimizer sees (slow critic excluded)."""
    counts = {name: sum(p.numel() for p in nets[name].parameters()) for name in (*TRAINED, "slowval")}
    counts["total"] = sum(counts[name] for name in TRAINED)
    return counts
