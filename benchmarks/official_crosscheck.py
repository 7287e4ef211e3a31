"""Our networks against the official ones (danijar/dreamerv3 at e3f0224): the same parameters, the same inputs.

Takes the parameters of an official run's checkpoint, loads them into our agent (built with the config of
one of our runs of the same task and size), and evaluates both codes' networks on steps of real sequences
from our run's replay: the encoder, one posterior step of the RSSM (block GRU and posterior logits), the
prior, the reward, continue, value, slow value and policy heads and the decoder (the policy without our
default 1 % unimix, which e3f0224 does not apply: config actor_unimix). Vector observations only (the
image encoder and decoder are not mapped). The official side runs in
its own venv (benchmarks/official_functions.py). Nothing random enters: the posterior step's inputs (the
previous state and action) come from our posterior over the sequence, and logits are compared, not samples.

    .venv/bin/python -m benchmarks.official_crosscheck --official-run benchmarks/out/parity/X/official-3 \
        --ours-run benchmarks/out/parity/X/ours-3      # official checkout and venv from the environment

Then, on one training batch, both codes' training loss (its metrics and per-module gradient norms over
--loss-seeds sampling seeds a side, each code with its own random streams: only the distributions can
agree), the direction of its gradient, and a few optimizer steps from a fresh state with the official
run's settings.

Prints, per output, the largest absolute difference and the largest absolute official value; exits 1
when a difference exceeds --tolerance times (1 + that value), or an optimizer update differs by more
than 0.1 %. The loss and gradient tables are for reading. The official run needs a checkpoint after
some training: benchmarks/parity.py starts official runs with one every 60 s (--run.save_every 60); the
newest is used.

With `--initial-seeds N` it compares instead the two codes' freshly initialised parameters (seeds
0..N-1 a side, per tensor RMS and mean; exits 1 when a shape differs or an RMS ratio leaves [0.8, 1.25]);
no checkpoint is needed, only the two runs' configs.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import envs
from agent.agent import Agent
from agent.optimizer import LaProp
from benchmarks.parity import METRICS
from training.eval import load_agent, load_run_config
from training.replay import Replay
from training.train import agent_spaces

# Our parameter name (a regex over Agent.nets' state_dict) -> the official name; {0} etc. are the groups.
NAMES = [
    (r"enc\.mlp\.(\d+)\.linear\.(weight|bias)", "enc/mlp{0}/{1}"),
    (r"enc\.mlp\.(\d+)\.norm\.scale", "enc/mlp{0}norm/scale"),
    (r"dyn\.deter_in\.linear\.(weight|bias)", "dyn/dynin0/{0}"),
    (r"dyn\.deter_in\.norm\.scale", "dyn/dynin0norm/scale"),
    (r"dyn\.stoch_in\.linear\.(weight|bias)", "dyn/dynin1/{0}"),
    (r"dyn\.stoch_in\.norm\.scale", "dyn/dynin1norm/scale"),
    (r"dyn\.action_in\.linear\.(weight|bias)", "dyn/dynin2/{0}"),
    (r"dyn\.action_in\.norm\.scale", "dyn/dynin2norm/scale"),
    (r"dyn\.core_layers\.(\d+)\.(weight|bias)", "dyn/dynhid{0}/{1}"),
    (r"dyn\.core_norms\.(\d+)\.scale", "dyn/dynhid{0}norm/scale"),
    (r"dyn\.gates\.(weight|bias)", "dyn/dyngru/{0}"),
    (r"dyn\.posterior\.0\.(\d+)\.linear\.(weight|bias)", "dyn/obs{0}/{1}"),
    (r"dyn\.posterior\.0\.(\d+)\.norm\.scale", "dyn/obs{0}norm/scale"),
    (r"dyn\.posterior\.1\.(weight|bias)", "dyn/obslogit/{0}"),
    (r"dyn\.prior\.0\.(\d+)\.linear\.(weight|bias)", "dyn/prior{0}/{1}"),
    (r"dyn\.prior\.0\.(\d+)\.norm\.scale", "dyn/prior{0}norm/scale"),
    (r"dyn\.prior\.1\.(weight|bias)", "dyn/priorlogit/{0}"),
    (r"dec\.mlp\.(\d+)\.linear\.(weight|bias)", "dec/mlp/linear{0}/{1}"),
    (r"dec\.mlp\.(\d+)\.norm\.scale", "dec/mlp/norm{0}/scale"),
    (r"dec\.vector_heads\.(\w+)\.(weight|bias)", "dec/vec/{0}/pred/{1}"),
    (r"(rew|con|val|slowval|pol)\.mlp\.(\d+)\.linear\.(weight|bias)", "{0}/mlp/linear{1}/{2}"),
    (r"(rew|con|val|slowval|pol)\.mlp\.(\d+)\.norm\.scale", "{0}/mlp/norm{1}/scale"),
    (r"(rew|val|slowval)\.out\.(weight|bias)", "{0}/head/logits/{1}"),
    (r"con\.out\.(weight|bias)", "con/head/logit/{0}"),
    (r"pol\.logits\.(\w+)\.(weight|bias)", "pol/head/{0}/logits/{1}"),
    (r"pol\.mean\.(\w+)\.(weight|bias)", "pol/head/{0}/mean/{1}"),
    (r"pol\.std\.(\w+)\.(weight|bias)", "pol/head/{0}/stddev/{1}"),
    (r"retnorm\.low", "retnorm/lo/value"),  # the return normaliser's EMAs of P5 and P95
    (r"retnorm\.high", "retnorm/hi/value"),
]


def official_name(ours: str, obs_keys: dict) -> str | None:
    """Our parameter name -> the official one (weight -> kernel), obs keys renamed by obs_keys."""
    for pattern, template in NAMES:
        match = re.fullmatch(pattern, ours)
        if match:
            parts = [obs_keys.get(part, part) for part in match.groups()]
            return template.format(*parts).replace("/weight", "/kernel")
    return None


def to_official_layout(name: str, tensor: torch.Tensor, obs_keys: dict) -> tuple[str, np.ndarray]:
    """One of our parameters (or its gradient) -> (official name, array in the official layout): Linear
    kernels (in, out) where ours are (out, in), BlockLinear biases flat (O,) where ours are (g, O/g)."""
    official = official_name(name, obs_keys)
    value = tensor.detach()
    value = value.t() if name.endswith("weight") and value.dim() == 2 else value
    return official, (value.reshape(-1) if official.endswith("bias") else value).numpy()


def load_official(agent, params: dict, obs_keys: dict):
    """Copies official parameters {name: array} into agent.nets; every network parameter must have one."""
    state, missing = agent.nets.state_dict(), []
    for ours, tensor in state.items():
        name = official_name(ours, obs_keys)
        if name not in params:
            missing.append(f"{ours} ({name})")
            continue
        value = torch.as_tensor(params[name])
        if name.endswith("/kernel") and value.dim() == 2:  # official Linear: (in, out); ours (out, in)
            value = value.t()
        tensor.copy_(value.reshape(tensor.shape))  # BlockLinear biases: official flat (O,), ours (g, O/g)
    if missing:
        raise SystemExit("no official parameter for: " + ", ".join(missing))
    unused = set(params) - {official_name(k, obs_keys) for k in state}
    unused = sorted(k for k in unused if not k.startswith(("opt/", "valnorm/", "advnorm/", "slowval_count/")))
    if unused:
        raise SystemExit("official parameters that no parameter of ours takes: " + ", ".join(unused))


def our_functions(agent, inputs: dict, obs_keys: dict) -> dict:
    """The outputs of official_functions.py, from our networks, on the same (N, ...) inputs."""
    t = {k: torch.as_tensor(v) for k, v in inputs.items()}
    ours_obs = {ours: t[f"obs:{official}"] for ours, official in obs_keys.items()}
    feat = agent.features(dict(deter=t["deter"], stoch=t["stoch"]))
    out = {"tokens": agent.encoder(ours_obs)}
    prev_action = agent.action_vector({k: t[f"prev_action:{k}"] for k in agent.act_space})
    post = agent.rssm.observe_step(dict(deter=t["prev_deter"], stoch=t["prev_stoch"]), prev_action, out["tokens"],
                                   t["is_first"].bool())
    shape = t["stoch"].shape
    out["post_deter"], out["post_logit"] = post["deter"], post["logits"].reshape(shape)
    out["prior_logit"] = agent.rssm.prior(t["deter"]).reshape(shape)
    for name, head in (("rew", agent.reward), ("val", agent.critic), ("slowval", agent.slow_critic)):
        logits = head(feat)
        out[f"{name}_logits"], out[name] = logits, agent.twohot(logits).mean()
    out["con_logit"] = agent.cont(feat)[..., 0]
    for key, dist in agent.policy_net(feat).items():
        if agent.act_space[key].discrete:
            out[f"pol_logits:{key}"] = dist.logits
        else:
            out[f"pol_mean:{key}"], out[f"pol_std:{key}"] = dist.mean, dist.std
    for key, value in agent.decoder(t["deter"], t["stoch"]).items():
        out[f"dec:{obs_keys[key]}"] = value
    return {k: v.detach().float().numpy() for k, v in out.items()}


def make_inputs(agent, batch: dict, obs_keys: dict) -> dict:
    """One replay batch (B, T+1) -> the flat (N = B*T) inputs of official_functions.py: each step with the
    state and action before it, and its posterior state, from our posterior over the sequence."""
    start, prev_actions, obs = agent.split_context(agent.to_torch(batch))
    post = agent.rssm.observe(start, prev_actions, agent.encoder(obs), obs["is_first"].bool())
    prev = {k: torch.cat([start[k][:, None], post[k][:, :-1]], 1) for k in ("deter", "stoch")}
    flat = lambda x: x.flatten(0, 1).float().numpy()  # noqa: E731
    inputs = {f"obs:{official}": flat(obs[ours]) for ours, official in obs_keys.items()}
    inputs.update({f"prev_action:{k}": batch[k][:, :-1].reshape(-1, *batch[k].shape[2:]) for k in agent.act_space})
    inputs.update(is_first=obs["is_first"].flatten(0, 1).bool().numpy(), prev_deter=flat(prev["deter"]),
                  prev_stoch=flat(prev["stoch"]), deter=flat(post["deter"]), stoch=flat(post["stoch"]))
    return inputs


def official_batch(agent, batch: dict, obs_keys: dict) -> dict:
    """A replay batch (B, T+1) in the official training keys: renamed observations, one-hot stored latents,
    consec 0 (each row its own sequence, so the replay context applies, as with the official consec_train 1)."""
    data = {obs_keys.get(k, k): batch[k] for k in [*agent.obs_space, *agent.act_space]}
    data.update({k: data[k].astype(np.int32) for k, space in agent.act_space.items() if space.discrete})
    batch_size, length = batch["is_first"].shape
    data.update(consec=np.zeros((batch_size, length), np.int32), stepid=np.zeros((batch_size, length, 20), np.uint8),
                **{"dyn/deter": batch["dyn/deter"].astype(np.float32),
                   "dyn/stoch": np.eye(agent.config.classes, dtype=np.float32)[batch["dyn/stoch"]]})
    return data


def our_loss_metrics(agent, batch: dict, seeds: int, obs_keys: dict) -> tuple[dict, dict]:
    """Agent.loss's metrics on one batch, once per seed (the normaliser's update undone each time): name ->
    (seeds,); and its gradient in the official layout, averaged over the even and the odd seeds, as
    official_functions.py writes them: '<half>:<official name, ':' for '/'>' -> array."""
    saved = {k: v.clone() for k, v in agent.retnorm.state_dict().items()}
    rows, halves = [], [{}, {}]
    params = {name: p for name, p in agent.nets.named_parameters() if p.requires_grad}
    for seed in range(seeds):
        torch.manual_seed(seed)
        agent.nets.zero_grad(set_to_none=True)
        with torch.enable_grad():
            total, metrics, _ = agent.loss(agent.to_torch(batch), update_normalizer=True)
            total.backward()
        agent.retnorm.load_state_dict(saved)
        row = {k: float(v) for k, v in metrics.items()}
        for module in sorted({name.split(".")[0] for name in params}):  # per-seed gradient norm of each module
            row[f"grad_norm/{module}"] = float(torch.cat([p.grad.double().ravel() for name, p in params.items()
                                                          if name.startswith(module + ".")]).norm())
        rows.append(row)
        half = halves[seed % 2]
        for name, param in params.items():
            official, grad = to_official_layout(name, param.grad.double(), obs_keys)
            half[official] = half.get(official, 0) + grad / ((seeds + 1 - seed % 2) // 2)
    agent.nets.zero_grad(set_to_none=True)
    gradients = {f"{index}:{name.replace('/', ':')}": value for index, half in enumerate(halves)
                 for name, value in half.items()}  # fmt: skip
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}, gradients


def compare_gradients(ours: dict, official: dict, seeds: int):
    """Prints, per module, the norm ratio and the cosine of the two codes' mean gradients over all seeds, and,
    as the noise floor, the cosine between each code's even-seed and odd-seed means."""
    weights = ((seeds + 1) // 2 / seeds, seeds // 2 / seeds)

    def flat(gradients, module, half=None):
        names = sorted(k[2:] for k in gradients if k.startswith("0:") and k[2:].split(":")[0] == module)
        if half is not None:
            return np.concatenate([gradients[f"{half}:{n}"].ravel() for n in names])
        return sum(w * np.concatenate([gradients[f"{h}:{n}"].ravel() for n in names]) for h, w in enumerate(weights))

    cosine = lambda a, b: float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))  # noqa: E731
    print("module | |ours| / |official| | cos(ours, official) | cos(even, odd seeds): ours | official")
    for module in sorted({k.split(":")[1] for k in official}):
        a, b = flat(ours, module), flat(official, module)
        print(f"{module} | {np.linalg.norm(a) / np.linalg.norm(b):.3f} | {cosine(a, b):.4f} | "
              f"{cosine(flat(ours, module, 0), flat(ours, module, 1)):.4f} | "
              f"{cosine(flat(official, module, 0), flat(official, module, 1)):.4f}")


OPT_SCALES = (1.0, 100.0, 0.01, 1.0, 1e4)  # gradient scales of the optimizer steps: large ones reach the AGC clip


def optimizer_inputs(agent, gradients: dict, obs_keys: dict) -> dict:
    """The optimizer comparison's inputs in the official layout: the current parameters and, per step, a
    gradient (the even-seed mean gradient of the loss, times OPT_SCALES[step])."""
    inputs = {}
    for name, param in agent.nets.named_parameters():
        if param.requires_grad:
            official, value = to_official_layout(name, param, obs_keys)
            official = official.replace("/", ":")
            inputs[f"param:{official}"] = value
            for step, scale in enumerate(OPT_SCALES):
                inputs[f"grad:{step}:{official}"] = (scale * gradients[f"0:{official}"]).astype(np.float32)
    return inputs


def compare_optimizer(agent, inputs: dict, official: dict, obs_keys: dict) -> bool:
    """Our LaProp with the official run's settings, from a fresh state, on the same parameters and gradients
    (in float64, so that its steps carry no rounding of the parameters); prints the largest difference of
    each step's update from the official one (float32). Within 0.1 % of the largest update passes."""
    setting = {k[8:]: v.item() for k, v in official.items() if k.startswith("setting:")}
    if setting["schedule"] != "const" or setting["wd"] or not setting["momentum"] or setting.get("nesterov"):
        print(f"not compared: the official run's optimizer settings {setting} are beyond what LaProp implements")
        return True
    params = {}
    for name, param in agent.nets.named_parameters():
        if param.requires_grad:
            key = official_name(name, obs_keys).replace("/", ":")
            params[key] = torch.nn.Parameter(torch.as_tensor(inputs[f"param:{key}"], dtype=torch.float64))
    optimizer = LaProp(params.values(), lr=setting["lr"], warmup=setting["warmup"], agc=setting["agc"],
                       beta1=setting["beta1"], beta2=setting["beta2"], eps=setting["eps"])
    print(f"the optimizer with the official run's settings (lr {setting['lr']:g}, warm-up {setting['warmup']}, "
          f"AGC {setting['agc']}), fresh state, {len(OPT_SCALES)} steps with the loss's gradient scaled")
    print("step | gradient scale | max |ours - official| | max |official update| | within tolerance")
    passed = True
    for step, scale in enumerate(OPT_SCALES):
        before = {k: p.detach().clone() for k, p in params.items()}
        for name, param in params.items():
            param.grad = torch.as_tensor(inputs[f"grad:{step}:{name}"], dtype=torch.float64)
        optimizer.step()
        updates = {k: (p.detach() - before[k]).numpy() for k, p in params.items()}
        difference = max(float(np.abs(updates[k] - official[f"update:{step}:{k}"]).max()) for k in params)
        largest = max(float(np.abs(official[f"update:{step}:{k}"]).max()) for k in params)
        ok = difference <= 1e-3 * largest
        passed &= ok
        print(f"{step} | {scale:g} | {difference:.2e} | {largest:.2e} | {'yes' if ok else 'NO'}")
    return passed


def compare_functions(ours: dict, official: dict, tolerance: float) -> bool:
    """Prints the table of the function outputs; True when all are within the tolerance."""
    print("output | shape | max |ours - official| | max |official| | within tolerance")
    passed = True
    for key in sorted(official):
        difference, scale = np.abs(ours[key] - official[key]).max(), np.abs(official[key]).max()
        ok = difference <= tolerance * (1 + scale)
        passed &= bool(ok)
        print(f"{key} | {official[key].shape} | {difference:.2e} | {scale:.3g} | {'yes' if ok else 'NO'}")
    return passed


def compare_initial(ours: list[dict], official: list[dict], low: float = 0.8, high: float = 1.25) -> bool:
    """Prints, per parameter tensor that both codes hold (official names and layout), its RMS and mean
    averaged over freshly initialised agents of several seeds; True when every shape matches and every RMS
    ratio ours/official lies in [low, high] (zero on both sides counts as equal). The bounds leave room for
    the sampling noise of the smallest tensors (64 values: about 9 % per seed)."""
    print("parameter | shape | RMS ours | RMS official | mean ours | mean official | agrees")
    passed = True
    for name in sorted(set(official[0]) & set(ours[0])):
        a, b = [seed[name].astype(np.float64) for seed in ours], [seed[name].astype(np.float64) for seed in official]
        rms_a, rms_b = (np.mean([np.sqrt(np.mean(x**2)) for x in xs]) for xs in (a, b))
        ok = a[0].shape == b[0].shape and (rms_a == rms_b == 0 or rms_b > 0 and low <= rms_a / rms_b <= high)
        passed &= bool(ok)
        print(f"{name} | {b[0].shape} | {rms_a:.4g} | {rms_b:.4g} | {np.mean(a):+.2g} | {np.mean(b):+.2g} | "
              f"{'yes' if ok else 'NO'}")
    return passed


def compare_loss_metrics(ours: dict, official: dict):
    """Prints, per metric of benchmarks/parity.py METRICS that both logged, mean and standard error over the
    seeds and the difference in standard errors (z). Both draw their own samples: only the distributions
    can agree."""
    print("metric | ours: mean ± se | official: mean ± se | z")
    norms = {key: key for key in ours if key.startswith("grad_norm/")}
    for key, official_key in {**METRICS, **norms}.items():
        official_key = official_key.removeprefix("train/")
        if key in ours and official_key in official:
            a, b = ours[key], official[official_key]
            se_a, se_b = a.std(ddof=1) / np.sqrt(len(a)), b.std(ddof=1) / np.sqrt(len(b))
            z = (a.mean() - b.mean()) / max(np.hypot(se_a, se_b), 1e-12)
            print(f"{key} | {a.mean():.4g} ± {se_a:.2g} | {b.mean():.4g} ± {se_b:.2g} | {z:+.1f}")


def refuse_images(agent, run: Path):
    """This cross-check maps the vector encoder and decoder only."""
    if agent.image_keys:
        raise SystemExit(f"{run} observes images ({agent.image_keys}); this cross-check maps the vector "
                         "encoder and decoder only")


def observation_keys(agent, params: dict) -> dict:
    """Our vector observation keys -> the official ones, read from the official decoder's parameter names
    (catch: vector -> observation; gym: vector -> image); refuses keys that do not pair up."""
    official_keys = sorted({k.split("/")[2] for k in params if k.startswith("dec/vec/")})
    if len(official_keys) != len(agent.vector_keys) or len(agent.vector_keys) > 1 and official_keys != sorted(
            agent.vector_keys):
        raise SystemExit(f"observation keys differ: official {official_keys}, ours {agent.vector_keys}")
    return dict(zip(agent.vector_keys, official_keys))


def initial_parameters(args, config) -> bool:
    """Both codes' parameters as initialised for seeds 0..N-1 (official: its make_agent on the official run's
    config.yaml; ours: Agent on our run's config), compared by compare_initial."""
    spaces = agent_spaces(envs.make(config.suite, config.task, args.seed))
    worker = Path(__file__).with_name("official_functions.py")
    ours, official = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.initial_seeds):
            torch.manual_seed(seed)
            agent = Agent(*spaces, config)
            refuse_images(agent, args.ours_run)
            path = Path(tmp) / f"initial-{seed}.npz"
            subprocess.run([args.official_python, str(worker), "--official", str(args.official), "--run",
                            str(args.official_run.resolve()), "--params", str(path), "--initial-seed", str(seed)],
                           check=True, stdout=subprocess.DEVNULL)
            official.append({k.replace(":", "/"): v for k, v in np.load(path).items()})
            obs_keys = observation_keys(agent, official[-1])
            state = agent.nets.state_dict()
            ours.append(dict(to_official_layout(name, tensor, obs_keys) for name, tensor in state.items()))
    print(f"initial parameters of {args.initial_seeds} seeds a side ({config.suite} {config.task}, size {config.size})")
    return compare_initial(ours, official)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-run", type=Path, required=True, help="an official run folder with a checkpoint")
    parser.add_argument("--ours-run", type=Path, required=True, help="our run of the task and size: config, replay")
    parser.add_argument("--official", type=Path, default=os.environ.get("DREAMERV3_OFFICIAL"))
    parser.add_argument("--official-python", default=os.environ.get("DREAMERV3_OFFICIAL_PYTHON"))
    parser.add_argument("--batch-size", type=int, default=4, help="replay sequences for the functions")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--loss-seeds", type=int, default=10, help="seeds of the training-loss comparison (0: none)")
    parser.add_argument("--official-twohot-mean", choices=("mirrored", "official"), default="mirrored",
                        help="the official two-hot mean in our exact order (default) or its own, whose float32 "
                             "rounding under jit moves every reward and value prediction (README, paired runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--initial-seeds", type=int, default=0,
                        help="instead of the checks above: both codes' initial parameters, built fresh with seeds "
                             "0..N-1 from the runs' configs (no checkpoint used), compared tensor by tensor")
    args = parser.parse_args(argv)
    if not (args.official and args.official_python):
        parser.error("needs --official and --official-python (or $DREAMERV3_OFFICIAL, $DREAMERV3_OFFICIAL_PYTHON)")
    torch.manual_seed(args.seed)
    config = load_run_config(args.ours_run, device="cpu")
    if args.initial_seeds:
        sys.exit(0 if initial_parameters(args, config) else 1)
    agent, state = load_agent(args.ours_run, config, *agent_spaces(envs.make(config.suite, config.task, args.seed)))
    refuse_images(agent, args.ours_run)
    replay = Replay(10**9, config.batch_length + config.replay_context, config.replay_chunksize, online=False,
                    seed=args.seed)  # fmt: skip
    replay.load(args.ours_run / "replay", state["replay"]["chunks"])
    worker = Path(__file__).with_name("official_functions.py")
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        tmp = Path(tmp)
        command = [args.official_python, str(worker), "--official", str(args.official), "--run",
                   str(args.official_run.resolve()), "--params", str(tmp / "params.npz"),
                   "--twohot-mean", args.official_twohot_mean]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        params = {k.replace(":", "/"): v for k, v in np.load(tmp / "params.npz").items()}
        obs_keys = observation_keys(agent, params)
        load_official(agent, params, obs_keys)
        if agent.policy_net.unimix:
            print(f"{args.ours_run} mixes {agent.policy_net.unimix:.0%} uniform into its discrete policy "
                  "(actor_unimix, our default); e3f0224 does not: compared without it")
            agent.policy_net.unimix = 0.0
        inputs = make_inputs(agent, replay.sample(args.batch_size), obs_keys)
        np.savez(tmp / "inputs.npz", **inputs)
        command += ["--inputs", str(tmp / "inputs.npz"), "--outputs", str(tmp / "outputs.npz")]
        if args.loss_seeds:
            batch = replay.sample(config.batch_size)
            np.savez(tmp / "batch.npz", **official_batch(agent, batch, obs_keys))
            metrics, gradients = our_loss_metrics(agent, batch, args.loss_seeds, obs_keys)
            np.savez(tmp / "opt.npz", **optimizer_inputs(agent, gradients, obs_keys))
            command += ["--batch", str(tmp / "batch.npz"), "--loss-seeds", str(args.loss_seeds),
                        "--loss-outputs", str(tmp / "loss.npz"), "--opt-inputs", str(tmp / "opt.npz"),
                        "--opt-outputs", str(tmp / "opt_out.npz")]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        official = dict(np.load(tmp / "outputs.npz"))
        ours = our_functions(agent, inputs, obs_keys)
        print(f"{len(inputs['is_first'])} steps of {args.ours_run} through the parameters of {args.official_run}; "
              f"official two-hot mean: {args.official_twohot_mean} order")
        passed = compare_functions(ours, official, args.tolerance)
        if args.loss_seeds:
            print(f"\nthe training loss on one batch of {config.batch_size} x {config.batch_length + 1} steps, "
                  f"{args.loss_seeds} seeds a side")
            compare_loss_metrics(metrics, dict(np.load(tmp / "loss.npz")))
            print("\nits gradient, as the optimizer takes it")
            compare_gradients(gradients, dict(np.load(tmp / "gradients.npz")), args.loss_seeds)
            print()
            passed &= compare_optimizer(agent, np.load(tmp / "opt.npz"), dict(np.load(tmp / "opt_out.npz")),
                                        obs_keys)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
