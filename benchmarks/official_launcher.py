"""Start the official JAX DreamerV3 (danijar/dreamerv3 at e3f0224) unchanged, for paired runs.

Runs in the official code's own virtual environment (JAX on CPU), never in ours:

    OFFICIAL_PYTHON benchmarks/official_launcher.py --official /path/to/dreamerv3 \
        [--twohot-mean mirrored] -- --configs bsuite size1m --task bsuite_catch/0 --logdir DIR ...

Arguments after `--` go to the official `dreamerv3/main.py` unchanged. The official files are
never edited. At that commit the BSuite adapter does not run as it stands, so three pieces are
supplied from outside, before its `main()` starts:
- `bsuite.from_checkpoint_id`: bsuite 0.3.6 names it `load_from_id` (same arguments);
- `embodied.wrappers.ForceDtypes`: renamed `UnifyDtypes` in that commit (same role);
- `embodied.wrappers.FlattenTwoDimObs`: commented out in that commit; written here: it flattens
  every 2-d observation (catch's 10x5 board) into a vector, as the adapter expects.
For the `gym_` tasks the official adapter (`embodied/envs/from_gym.py`) imports `gym` and uses its
old API (reset returns the observation; step returns 4 values), which no installable `gym` for
Python 3.11 provides. `old_gym_api()` supplies a module `gym` over Gymnasium with that API; as in
our adapter, `is_terminal` is Gymnasium's `terminated` (a time limit is not a terminal state).

`--blank-log-image` (used for the DMC proprio pairs): the official DMC adapter renders a 64x64
camera image at every step even when the agent does not see it (`log/image`, only written to the
episode videos), about 24 ms per step with software EGL on one core, 6 minutes per 16k steps.
This flag makes that log-only image black without rendering; what the agent observes and learns
from is unchanged.

Metrics only, always: the official `imag_loss` (dreamerv3/agent.py) is wrapped to log more metrics
beside its own: two weighted as its losses weight the imagined steps (cumulative continuation):
`adv_mag_live` (|advantage|) and `ent_live/<action key>` (policy entropy); its own `adv_mag` and
`ent/...` average over every imagined step, also those past an imagined episode end. The return scale
its advantages are divided by (`retnorm/scale`; from 2026-12-05). And four about
those steps (`past_end/...`: their share, the imagined reward's mean and largest magnitude there, the
mean continuation there). What it computes and trains is unchanged. Our agent logs the same
(agent/losses.py actor_loss).

The JAX profiler is off, always: the official agent traces updates 100 to 120 into the run folder
and, when a run resumes from a checkpoint taken between the two, stops a trace it never started and
exits (e3f0224 embodied/jax/agent.py:296-307). Its `jax.profiler` option is not in configs.yaml, so no
flag can set it; `no_profiler()` changes its default. The profiler computes nothing the run uses.

`--twohot-mean mirrored` replaces only the official two-hot mean (`TwoHot.pred` in
embodied/jax/outs.py) by the order of operations of our agent (mirrored probabilities
subtracted first, then one product with the bins); the default `official` leaves it as it is.
This file imports nothing of our project: the official venv has no torch.
"""
import argparse
import os
import sys
from pathlib import Path


def add_missing_pieces():
    import bsuite
    import elements
    import embodied
    import numpy as np

    if not hasattr(bsuite, "from_checkpoint_id"):
        bsuite.from_checkpoint_id = bsuite.load_from_id
    wrappers = embodied.wrappers
    if not hasattr(wrappers, "ForceDtypes"):
        wrappers.ForceDtypes = wrappers.UnifyDtypes
    if not hasattr(wrappers, "FlattenTwoDimObs"):

        class FlattenTwoDimObs(wrappers.Wrapper):
            """Every observation of rank 2 becomes a vector of the same values (row-major)."""

            def __init__(self, env):
                super().__init__(env)
                self.flattened = [key for key, space in env.obs_space.items() if len(space.shape) == 2]

            @property
            def obs_space(self):
                spaces = dict(self.env.obs_space)
                for key in self.flattened:
                    space = spaces[key]
                    spaces[key] = elements.Space(space.dtype, (int(np.prod(space.shape)),),
                                                 space.low.reshape(-1), space.high.reshape(-1))
                return spaces

            def step(self, action):
                obs = dict(self.env.step(action))
                for key in self.flattened:
                    obs[key] = obs[key].reshape(-1)
                return obs

        wrappers.FlattenTwoDimObs = FlattenTwoDimObs


def old_gym_api():
    """A module `gym` over Gymnasium with the 4-value step API that the official adapter expects."""
    import types

    import gymnasium

    class OldApi:
        def __init__(self, env):
            self.env = env
            self.observation_space, self.action_space = env.observation_space, env.action_space

        def reset(self):
            return self.env.reset()[0]

        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated or truncated, {**info, "is_terminal": terminated}

        def close(self):
            self.env.close()

    module = types.ModuleType("gym")
    module.make = lambda name, **kwargs: OldApi(gymnasium.make(name, **kwargs))
    module.spaces = gymnasium.spaces
    sys.modules["gym"] = module


def use_mirrored_twohot_mean():
    """Our order: sum_{i<m} (p_i - p_{K-1-i}) b_i, exact for mirror-symmetric probabilities."""
    from embodied.jax import outs

    def pred(self):
        count = self.logits.shape[-1]
        middle = (count - 1) // 2
        assert count % 2 == 1, count
        difference = self.probs[..., :middle] - self.probs[..., middle + 1:][..., ::-1]
        return self.unsquash(difference @ self.bins[:middle])

    outs.TwoHot.pred = pred


def add_live_metrics():
    """Wraps the official imag_loss: its losses and outputs as they are, seven metrics more (see above)."""
    import jax.numpy as jnp
    from dreamerv3 import agent as official_agent

    imag_loss = official_agent.imag_loss

    def with_live_metrics(act, rew, con, policy, value, slowvalue, retnorm, valnorm, advnorm, update, **kwargs):
        losses, outs, metrics = imag_loss(act, rew, con, policy, value, slowvalue, retnorm, valnorm, advnorm,
                                          update, **kwargs)
        disc = 1 if kwargs.get("contdisc", True) else 1 - 1 / kwargs.get("horizon", 333)
        weight = (jnp.cumprod(disc * con, 1) / disc)[:, :-1]  # (N, H), as imag_loss weighs its losses
        live_mean = lambda x: (weight * x).sum() / jnp.maximum(weight.sum(), 1e-8)  # noqa: E731
        voffset, vscale = valnorm.stats()
        tarval = (slowvalue if kwargs.get("slowtar", True) else value).pred() * vscale + voffset
        _, rscale = retnorm.stats()  # already updated by imag_loss with this batch's returns
        metrics["adv_mag_live"] = live_mean(jnp.abs(outs["ret"] - tarval[:, :-1]) / rscale)
        metrics["retnorm/scale"] = rscale  # the scale its advantages were divided by (max(1, P95 - P5) EMA)
        for key, dist in policy.items():
            metrics[f"ent_live/{key}"] = live_mean(dist.entropy()[:, :-1])
        # As agent/losses.py past_end_metrics: steps whose predecessor lies past an imagined episode end.
        past = (weight < 0.5).astype(jnp.float32)
        count = jnp.maximum(past.sum(), 1.0)
        magnitude = jnp.abs(rew[:, 1:])
        metrics.update({"past_end/frac": past.mean(), "past_end/reward_mag": (past * magnitude).sum() / count,
                        "past_end/reward_max": (past * magnitude).max(),
                        "past_end/cont": (past * con[:, 1:]).sum() / count})
        return losses, outs, metrics

    official_agent.imag_loss = with_live_metrics


def blank_log_image():
    """The DMC adapter's log-only camera image, when the agent is not given images, becomes black."""
    import numpy as np
    from embodied.envs import dmc

    build = dmc.DMC.__init__

    def __init__(self, *args, **kwargs):
        build(self, *args, **kwargs)
        if not self._image:  # the image goes to the key log/image, which the agent never sees
            black = np.zeros((*self._size, 3), np.uint8)
            self._dmenv.physics.render = lambda *args, **kwargs: black

    dmc.DMC.__init__ = __init__


def no_profiler():
    """The official agent's options with `profiler` False by default (see above)."""
    import dataclasses

    from embodied.jax import agent as jax_agent

    @dataclasses.dataclass
    class Options(jax_agent.Options):
        profiler: bool = False

    jax_agent.Options = Options  # looked up when the agent is built


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of danijar/dreamerv3")
    parser.add_argument("--twohot-mean", choices=("official", "mirrored"), default="official")
    parser.add_argument("--blank-log-image", action="store_true", help="DMC: no render for the log-only image")
    parser.add_argument("main_args", nargs=argparse.REMAINDER, help="arguments of dreamerv3/main.py, after --")
    args = parser.parse_args()
    main_args = args.main_args[1:] if args.main_args[:1] == ["--"] else args.main_args
    if not (args.official / "dreamerv3" / "main.py").exists():
        parser.error(f"{args.official} is not a danijar/dreamerv3 checkout (no dreamerv3/main.py)")
    os.chdir(args.official)
    sys.path[:0] = [str(args.official), str(args.official / "dreamerv3")]
    sys.argv = [str(args.official / "dreamerv3" / "main.py"), *main_args]
    if any(arg.startswith("gym_") for arg in main_args):
        old_gym_api()
    from dreamerv3 import main as official_main  # importing it sets up its own sys.path

    add_missing_pieces()
    add_live_metrics()
    no_profiler()
    if args.twohot_mean == "mirrored":
        use_mirrored_twohot_mean()
    if args.blank_log_image:
        blank_log_image()
    official_main.main(main_args)


if __name__ == "__main__":
    main()
