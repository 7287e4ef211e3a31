"""A worker of benchmarks/official_crosscheck.py: the official networks (danijar/dreamerv3 at e3f0224) on
given inputs, with the parameters of an official run's checkpoint.

Runs in the official code's own virtual environment and imports nothing of our project (no torch there):

    OFFICIAL_PYTHON benchmarks/official_functions.py --official /path/to/dreamerv3 --run OFFICIAL_RUN \
        --params params.npz [--inputs inputs.npz --outputs outputs.npz] \
        [--batch batch.npz --loss-seeds 10 --loss-outputs metrics.npz] [--opt-inputs O.npz --opt-outputs P.npz]

The agent is built as the official `make_agent` builds it, from the run's own config.yaml, and each
function is one of its modules called as the official loss calls it, under `ninjax.pure` with the
checkpoint's parameters. Writes the parameters (`--params`, names with '/' as ':'; with `--initial-seed S`
those of a freshly built agent with seed S instead, and nothing else) and, given inputs
(flat batches of N steps, float32 unless said), the outputs:

    inputs:  obs:<key> (N, ...), is_first (N,) bool, prev_deter (N, D), prev_stoch (N, S, C),
             prev_action:<key> (N, ...) (the env's format), deter (N, D), stoch (N, S, C)
    outputs: tokens (N, E)                      the encoder on obs
             post_deter (N, D), post_logit (N, S, C)  one posterior step (RSSM._observe) from the prev_*
                                                state and action, reset where is_first; its logits
                                                are not sampled, so nothing random enters
             prior_logit (N, S, C)              RSSM._prior on deter
             rew_logits, val_logits, slowval_logits (N, K), rew, val, slowval (N,)  two-hot heads on
                                                (deter, stoch), logits and mean (TwoHot.pred)
             con_logit (N,), pol_logits:<key> (N, classes) (log-probabilities) for discrete actions, pol_mean:<key>,
                                                pol_std:<key> (N, ...) for continuous ones
             dec:<key> (N, ...)                 the decoder's vector predictions (symlog space)
and, given a training batch (`--batch`: the replay's (B, T+1) keys with the official names, the stored
latents as dyn/deter (B, T+1, D) and one-hot dyn/stoch (B, T+1, S, C)), the metrics of the official
training loss on it, once per seed (`--loss-outputs`: name -> (seeds,)), which draw their samples from
the official code's own random streams; and, given parameters and a sequence of gradients (`--opt-inputs`),
each step's update of the official optimizer from a fresh state, and its settings (`--opt-outputs`).
"""
import argparse
import pickle
import sys
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of danijar/dreamerv3")
    parser.add_argument("--run", type=Path, required=True, help="an official run folder with ckpt/ and config.yaml")
    parser.add_argument("--params", type=Path, required=True, help="write the checkpoint's parameters here (.npz)")
    parser.add_argument("--initial-seed", type=int,
                        help="write instead the initial parameters of an agent built with this seed (the run's "
                             "config.yaml otherwise), and stop; no checkpoint needed")
    parser.add_argument("--inputs", type=Path)
    parser.add_argument("--outputs", type=Path)
    parser.add_argument("--twohot-mean", choices=("official", "mirrored"), default="official",
                        help="mirrored: our order of operations in the two-hot mean (official_launcher.py)")
    parser.add_argument("--batch", type=Path, help="a (B, T+1) training batch, official keys (.npz)")
    parser.add_argument("--loss-seeds", type=int, default=10, help="evaluate the training loss with seeds 0..N-1")
    parser.add_argument("--loss-outputs", type=Path, help="its metrics: name -> (N,) (.npz)")
    parser.add_argument("--opt-inputs", type=Path, help="param:<name> and grad:<k>:<name> for k = 0..K-1 (.npz)")
    parser.add_argument("--opt-outputs", type=Path, help="update:<k>:<name> of each of the K steps, setting:<name>")
    args = parser.parse_args()
    checkpoints = sorted((args.run / "ckpt").glob("*/agent.pkl"))
    if not checkpoints and args.initial_seed is None:
        parser.error(f"{args.run} has no checkpoint (ckpt/*/agent.pkl); run it with --run.save_every SECONDS")
    sys.path[:0] = [str(args.official), str(args.official / "dreamerv3"), str(Path(__file__).parent)]
    import elements
    import jax
    import jax.numpy as jnp
    import ninjax as nj
    import numpy as np
    import official_launcher
    from dreamerv3 import main as official_main

    config = elements.Config.load(args.run / "config.yaml")
    if args.initial_seed is not None:
        config = config.update(seed=args.initial_seed)
    if config.task.startswith("gym_"):
        official_launcher.old_gym_api()
    official_launcher.add_missing_pieces()
    if args.twohot_mean == "mirrored":
        official_launcher.use_mirrored_twohot_mean()
    agent = official_main.make_agent(config)
    jax.config.update("jax_transfer_guard", "allow")  # the official setup disallows implicit host-device copies
    checkpoint = None if args.initial_seed is not None else pickle.loads(checkpoints[-1].read_bytes())
    params = agent.params if checkpoint is None else checkpoint["params"]  # initial: as built, before any update
    np.savez(args.params, **{name.replace("/", ":"): np.asarray(value) for name, value in params.items()})
    if checkpoint is None:
        return
    print(f"checkpoint {checkpoints[-1]}, updates {checkpoint['counters']}", file=sys.stderr)
    model = agent.model
    if args.batch:
        metrics, gradients = loss_metrics(model, params, dict(np.load(args.batch)), args.loss_seeds)
        np.savez(args.loss_outputs, **metrics)
        np.savez(args.loss_outputs.with_name("gradients.npz"), **gradients)
    if args.opt_inputs:
        np.savez(args.opt_outputs, **optimizer_steps(model, dict(np.load(args.opt_inputs))))
    if not args.inputs:
        return
    data = dict(np.load(args.inputs))
    group = lambda prefix: {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}  # noqa: E731

    def functions(obs, is_first, prev_deter, prev_stoch, prev_action, deter, stoch):
        out = {}
        _, _, tokens = model.enc({}, obs, is_first, training=False, single=True)
        out["tokens"] = tokens
        carry = dict(deter=prev_deter, stoch=prev_stoch)
        _, (_, feat) = model.dyn._observe(carry, tokens, prev_action, is_first, training=False)
        out["post_deter"], out["post_logit"] = feat["deter"], feat["logit"]
        out["prior_logit"] = model.dyn._prior(deter)
        x = model.feat2tensor(dict(deter=deter, stoch=stoch))
        for name, head in (("rew", model.rew), ("val", model.val), ("slowval", model.slowval)):
            dist = head(x, 1)
            out[f"{name}_logits"], out[name] = dist.logits, dist.pred()
        out["con_logit"] = model.con(x, 1).logit
        for key, dist in model.pol(x, 1).items():
            dist = getattr(dist, "output", dist)  # continuous actions come wrapped in outs.Agg
            if hasattr(dist, "logits"):
                out[f"pol_logits:{key}"] = jax.nn.log_softmax(dist.logits)  # Categorical keeps them unnormalised
            else:
                out[f"pol_mean:{key}"], out[f"pol_std:{key}"] = dist.mean, dist.stddev
        _, _, recons = model.dec({}, dict(deter=deter, stoch=stoch), is_first, training=False, single=True)
        for key, dist in recons.items():
            out[f"dec:{key}"] = dist.pred()
        return out

    inputs = (group("obs:"), jnp.asarray(data["is_first"]), data["prev_deter"], data["prev_stoch"],
              group("prev_action:"), data["deter"], data["stoch"])
    _, outputs = nj.pure(functions)(params, *inputs, seed=0, create=False, modify=False)
    np.savez(args.outputs, **{k: np.asarray(v, np.float32) for k, v in outputs.items()})


def optimizer_steps(model, data: dict) -> dict:
    """The official optimizer (Agent._make_opt with the run's opt config: AGC, RMS, momentum, learning-rate
    schedule, as optax applies them) from a fresh state, K steps with the given gradients (names with ':'):
    each step's update (update:<k>:<name>, before it is added to the parameters) and the settings
    (setting:<name>)."""
    import numpy as np
    import optax

    params = {k[6:]: np.asarray(v) for k, v in data.items() if k.startswith("param:")}
    steps = sorted({int(k.split(":")[1]) for k in data if k.startswith("grad:")})
    chain = model._make_opt(**model.config.opt)
    state, out = chain.init(params), {}
    for step in steps:
        grads = {name: data[f"grad:{step}:{name}"] for name in params}
        updates, state = chain.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        out.update({f"update:{step}:{name}": np.asarray(value) for name, value in updates.items()})
    out.update({f"setting:{key}": np.asarray(value) for key, value in model.config.opt.items()
                if isinstance(value, (int, float, bool, str))})
    return out


def loss_metrics(model, params: dict, batch: dict, seeds: int) -> tuple[dict, dict]:
    """The metrics of the official training loss (Agent.loss after the replay context, as Agent.train calls
    it, without the update) on one batch, once per seed: name -> (seeds,), with the metrics that
    official_launcher.py adds; and its gradient (as the optimizer takes it: nj.grad over Agent.modules),
    averaged over the even and over the odd seeds: '<half>:<parameter name, ':' for '/'>' -> array."""
    import jax
    import ninjax as nj
    import numpy as np
    import official_launcher

    official_launcher.add_live_metrics()
    size = len(batch["is_first"])

    def metrics_of(data):
        carry = model.init_train(size)
        carry, obs, prevact, _ = model._apply_replay_context(carry, data)
        lossfn = lambda *args: model.loss(*args, training=True)  # noqa: E731
        _, _, grads, (_, _, _, metrics) = nj.grad(lossfn, model.modules, has_aux=True)(carry, obs, prevact)
        return metrics, grads

    evaluate = jax.jit(nj.pure(metrics_of))
    rows, halves = [], [{}, {}]
    for seed in range(seeds):
        _, (metrics, grads) = evaluate(params, batch, seed=np.array([seed, 0], np.uint32))
        grads = jax.device_get(grads)
        for module in sorted({name.split("/")[0] for name in grads}):  # per-seed gradient norm of each module
            squares = [np.square(np.asarray(g, np.float64)).sum() for name, g in grads.items()
                       if name.startswith(module + "/")]
            metrics[f"grad_norm/{module}"] = np.sqrt(sum(squares))
        rows.append(jax.device_get(metrics))
        half = halves[seed % 2]
        for name, grad in grads.items():
            half[name] = half.get(name, 0) + np.asarray(grad, np.float64) / ((seeds + 1 - seed % 2) // 2)
    gradients = {f"{index}:{name.replace('/', ':')}": value for index, half in enumerate(halves)
                 for name, value in half.items()}  # fmt: skip
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}, gradients


if __name__ == "__main__":
    main()
