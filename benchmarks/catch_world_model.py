"""What the world model of a trained BSuite catch run knows about the ball.

Catch draws the ball and the paddle as two 1s on a 10x5 board. The ball falls one row per step
in a column drawn at reset; when it reaches the paddle's row (the bottom one) the episode ends
with reward +1 if both share a column, and the last board then holds a single 1 in its bottom
row, or -1 if not. The last observation alone thus tells the outcome, and the ball's column is
all a policy needs. This replays sequences from a run's replay (as training samples them: one
context step, then batch_length steps) through its newest checkpoint's world model and reports

- the reward head's prediction (two-hot mean) at terminal steps, split by the real reward: a
  world model that predicts the same for catches and misses cannot guide the policy;
- how often the decoder's brightest cell lies in the right column, in the ball's row and in the
  paddle's row, before the ball reaches the paddle's row (chance: 1 in 5).

    .venv/bin/python -m benchmarks.catch_world_model benchmarks/out/parity/catch_ratio32/ours-0
"""
import argparse
from pathlib import Path

import numpy as np
import torch

import envs
from agent.distributions import symexp
from agent.losses import world_model_loss
from training.eval import load_agent, load_run_config
from training.replay import Replay
from training.train import agent_spaces

ROWS, COLUMNS = 10, 5  # catch/0 (bsuite.environments.catch defaults)


def column_hits(decoded: np.ndarray, boards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """decoded, boards: (N, ROWS, COLUMNS). Whether the decoder's brightest cell in the ball's row and in the
    paddle's row is in the true column: two (M,) arrays over the M boards whose ball is above the paddle's row
    (at the last step of an episode the ball is in the paddle's row and the paddle's column is ambiguous)."""
    rows = boards[:, :-1].sum(-1)  # (N, ROWS-1): 1 in the row that holds the ball, if it is above the paddle
    has_ball = rows.max(-1) > 0
    index, ball_row = np.arange(len(boards)), rows.argmax(-1)
    ball = decoded[index, ball_row].argmax(-1) == boards[index, ball_row].argmax(-1)
    paddle = decoded[:, -1].argmax(-1) == boards[:, -1].argmax(-1)
    return ball[has_ball], paddle[has_ball]


def probe(logdir: Path, batches: int, seed: int) -> dict:
    config = load_run_config(logdir, device="cpu")
    if (config.suite, config.task) != ("bsuite", "catch/0"):
        raise SystemExit(f"{logdir} is a {config.suite} {config.task} run; this probe reads catch/0 boards.")
    agent, state = load_agent(logdir, config, *agent_spaces(envs.make(config.suite, config.task, seed)))
    replay = Replay(10**9, config.batch_length + config.replay_context, config.replay_chunksize, online=False,
                    seed=seed)  # fmt: skip
    replay.load(logdir / "replay", state["replay"]["chunks"])
    torch.manual_seed(seed)  # the posterior samples its latents: the same seed gives the same numbers
    predicted, rewards, ball, paddle, reward_loss = [], [], [], [], []
    with torch.no_grad():
        for _ in range(batches):
            start, prev_actions, obs = agent.split_context(agent.to_torch(replay.sample(config.batch_size)))
            losses, _, post, feat = world_model_loss(agent, obs, start, prev_actions)
            terminal = obs["is_terminal"].bool()
            predicted.append(agent.twohot(agent.reward(feat)).mean()[terminal])
            rewards.append(obs["reward"][terminal])
            reward_loss.append(losses["rew"].mean())
            decoded = symexp(agent.decoder(post["deter"], post["stoch"])["vector"]).reshape(-1, ROWS, COLUMNS)
            hits = column_hits(decoded.numpy(), obs["vector"].reshape(-1, ROWS, COLUMNS).numpy())
            ball.append(hits[0])
            paddle.append(hits[1])
    predicted, rewards = torch.cat(predicted).numpy(), torch.cat(rewards).numpy()
    result = {"step": state["counters"]["step"], "reward_loss": float(torch.stack(reward_loss).mean()),
              "ball_column": float(np.concatenate(ball).mean()), "paddle_column": float(np.concatenate(paddle).mean())}
    for name, sign in (("catch", 1.0), ("miss", -1.0)):
        chosen = predicted[rewards == sign]
        result[name] = {"steps": len(chosen), "predicted_mean": float(chosen.mean()) if len(chosen) else None,
                        "predicted_std": float(chosen.std()) if len(chosen) else None}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logdir", type=Path, nargs="+", help="run folders of training.train on bsuite catch/0")
    parser.add_argument("--batches", type=int, default=20, help="replay batches to read (of the run's batch size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("run | step | reward loss | predicted reward at a catch | at a miss | decoder column right: ball | paddle")
    for logdir in args.logdir:
        r = probe(logdir, args.batches, args.seed)
        outcomes = [f"{o['predicted_mean']:+.2f} ± {o['predicted_std']:.2f} ({o['steps']})" if o["steps"] else "– (0)"
                    for o in (r["catch"], r["miss"])]
        print(f"{logdir} | {r['step']} | {r['reward_loss']:.3f} | {' | '.join(outcomes)} | "
              f"{r['ball_column']:.2f} | {r['paddle_column']:.2f}")


if __name__ == "__main__":
    main()
