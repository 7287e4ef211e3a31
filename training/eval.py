"""Evaluate a run's newest checkpoint: `python -m training.eval --logdir RUN [--episodes N] [--video]`.

Builds the agent of RUN/config.yaml, loads the newest good checkpoint of RUN/checkpoints and
plays N episodes of the run's own task with the run's env settings, acting as the official
code does when it evaluates: actions sampled from the policy, posterior latents sampled
(spec 5.5). The envs get seeds of their own, so the episodes differ from the training ones.

Writes, in RUN:
  eval_scores.jsonl   one line per episode, in the schema of scores.jsonl; "step" is the checkpoint's
                      (agent steps x repeat), so evaluations of several checkpoints can share the file
  eval-<step>.mp4     with --video: the first --video-episodes episodes of the image observation,
                      4x enlarged (a GIF where imageio-ffmpeg does not import)

Exit codes: 0 done, 2 bad arguments, a folder without a checkpoint, or a checkpoint that does not
fit the folder's config.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

import envs
from agent.config import Config, check_keys, make_config
from agent.hardware import resolve_device
from envs.base import step_spaces
from envs.parallel import BatchEnv
from training.checkpoint import Checkpoints
from training.driver import Driver
from training.logger import to_json

VIDEO_SCALE = 4  # 64 x 64 observations are too small to watch
VIDEO_FPS = 30


class EvalError(Exception):
    """Bad input; the message says what to do."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.eval",
        description="Play episodes with a run's newest checkpoint; write their scores (and a video) into the run.")
    parser.add_argument("--logdir", required=True, type=Path, help="run folder written by python -m training.train")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to play (default 10)")
    parser.add_argument("--video", action="store_true", help="also write a video of the first episodes")
    parser.add_argument("--video-episodes", type=int, default=1, help="episodes in the video (default 1)")
    parser.add_argument("--device", help="auto, cpu, cuda, ... (default: the run's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation envs and actions (default 0)")
    return parser


def load_run_config(logdir: Path, device: str | None):
    path = logdir / "config.yaml"
    if not path.is_file():
        raise EvalError(f"{logdir} is not a run folder: it has no config.yaml. Pass the --logdir of a "
                        "python -m training.train run.")
    values = yaml.safe_load(path.read_text())
    check_keys(values)
    defaults = Config()
    for key, value in values.items():  # YAML gives lists where the config holds tuples
        if isinstance(value, list) and isinstance(getattr(defaults, key), tuple):
            values[key] = tuple(value)
    if device:
        values["device"] = device
    return make_config(**values)


def load_agent(logdir: Path, config, obs_space: dict, act_space: dict):
    """(agent with the newest checkpoint's weights, that checkpoint's whole state: counters, replay manifest, ...)."""
    from agent.agent import Agent

    state, path = Checkpoints(logdir / "checkpoints").load_latest()
    if state is None:
        raise EvalError(f"{logdir / 'checkpoints'} holds no complete checkpoint. A run writes one every save_every "
                        "seconds and at its end: train it (longer), or pass another --logdir.")
    agent = Agent(obs_space, act_space, config)
    try:
        agent.load_state_dict(state["agent"])
    except (RuntimeError, KeyError) as error:
        first_lines = " ".join(line.strip() for line in str(error).strip().splitlines()[:2])  # torch lists them all
        raise EvalError(f"{path} does not fit the config in {logdir / 'config.yaml'} (was it copied from a run "
                        f"with another size or task?): {first_lines}") from None
    return agent, state


def write_video(path: Path, frames: list) -> Path:
    """frames: (H, W, C) uint8 each; an MP4, or a GIF where imageio-ffmpeg does not import."""
    import imageio.v2 as imageio

    frames = [np.repeat(np.repeat(frame, VIDEO_SCALE, 0), VIDEO_SCALE, 1) for frame in frames]
    frames = [np.repeat(frame, 3, -1) if frame.shape[-1] == 1 else frame for frame in frames]  # gray -> RGB
    try:
        import imageio_ffmpeg  # noqa: F401 (the MP4 writer of imageio)
    except ImportError:
        path = path.with_suffix(".gif")
        imageio.mimwrite(path, frames, duration=1000 / VIDEO_FPS, loop=0)
        return path
    imageio.mimwrite(path, frames, fps=VIDEO_FPS, macro_block_size=1)
    return path


def evaluate(logdir: Path, episodes: int, video_episodes: int, device: str | None, seed: int) -> dict:
    from tqdm import tqdm

    config = load_run_config(logdir, device)
    resolve_device(config.device)
    env_seed = int(np.random.SeedSequence([config.seed, seed, 0, 1]).generate_state(1)[0])  # not a training seed
    batch_env = BatchEnv([lambda: envs.make(config.suite, config.task, env_seed, config.repeat, **config.env_args)],
                         parallel=False)
    try:
        obs_space = {key: space for key, space in batch_env.obs_space.items() if not key.startswith("log/")}
        act_space = {key: space for key, space in batch_env.act_space.items() if key != "reset"}
        if video_episodes and "image" not in obs_space:
            raise EvalError(f"--video needs an image observation; {config.suite} {config.task} observes "
                            f"{', '.join(key for key in obs_space if key not in step_spaces())}.")
        agent, state = load_agent(logdir, config, obs_space, act_space)
        step = state["counters"]["step"]
        torch.manual_seed(seed)
        driver = Driver(batch_env, agent)
        results, frames = [], []

        def keep_frame(transition, index):
            if index == 0 and len(results) < video_episodes:
                frames.append(transition["image"])

        def keep_episode(episode, index):
            results.append({key: to_json(value) for key, value in episode.items()
                            if key.startswith(("episode/", "log/"))})
            progress.update()
            progress.set_postfix(score=f"{np.mean([r['episode/score'] for r in results]):.1f}")

        if video_episodes:
            driver.on_step(keep_frame)
        driver.on_episode(keep_episode)
        with tqdm(total=episodes, unit="episode", desc=f"evaluating {logdir}", file=sys.stderr) as progress:
            while len(results) < episodes:
                driver.step()
    finally:
        batch_env.close()
    logged_step = step * config.repeat  # the run's own action repeat, as in scores.jsonl
    with open(logdir / "eval_scores.jsonl", "a") as file:
        for values in results[:episodes]:
            file.write(json.dumps({"step": logged_step, **values}) + "\n")
    video = write_video(logdir / f"eval-{logged_step:012d}.mp4", frames) if video_episodes else None
    scores = [values["episode/score"] for values in results[:episodes]]
    return dict(step=logged_step, episodes=len(scores), mean_score=float(np.mean(scores)), video=video)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.video_episodes < 1:
        parser.error("--episodes and --video-episodes must be at least 1")
    try:
        result = evaluate(args.logdir, args.episodes, min(args.video_episodes, args.episodes) if args.video else 0,
                          args.device, args.seed)
    except (EvalError, KeyError, ValueError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    except ImportError as error:  # the suite's engine is not installed (DMLab, Minecraft outside their containers)
        print(f"error: this run's suite cannot run here: {error}", file=sys.stderr)
        return 3
    video = f"; video {result['video']}" if result["video"] else ""
    print(f"{result['episodes']} episodes at step {result['step']:,}: mean score {result['mean_score']:.2f}; "
          f"scores appended to {args.logdir / 'eval_scores.jsonl'}{video}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
