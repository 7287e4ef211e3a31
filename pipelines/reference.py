"""The published reference runs: where to download them, and how to read them into `Run` records."""
import argparse
import gzip
import hashlib
import json
import math
import urllib.request
from pathlib import Path

import numpy as np
import yaml

from envs import SUITES
from pipelines.runs import Run

# Pinned commits of the public repositories, so a download always gives the same bytes.
DREAMERV3 = "https://raw.githubusercontent.com/danijar/dreamerv3"
SCORES_COMMIT = "2411f7d136832378c0291c587cdbf2fca6506873"
BASELINES_COMMIT = "f8817c4040cebada9bb9712554b0234c70c291d5"
CRAFTER = "https://raw.githubusercontent.com/danijar/crafter/d751a98bbca8fd4494e67ea4326dca562f0800d4"

# Score-file name prefix -> the suite's row in the registry.
FILE_SUITE = {prefix: suite for suite in SUITES.values() for prefix in suite.score_files}


def source_url(relative_path: str) -> str:
    """Public URL of a reference file named relative to the reference folder."""
    folder, name = relative_path.split("/", 1) if "/" in relative_path else ("", relative_path)
    if folder == "dreamerv3-scores":
        return f"{DREAMERV3}/{SCORES_COMMIT}/scores/{name}"
    if folder == "crafter":
        return f"{CRAFTER}/scores/{name}"
    if relative_path == "baselines.yaml":
        return f"{DREAMERV3}/{BASELINES_COMMIT}/baselines.yaml"
    raise ValueError(f"no public source known for reference file {relative_path}")


def download(relative_path: str, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    with urllib.request.urlopen(source_url(relative_path), timeout=120) as response:
        partial.write_bytes(response.read())
    partial.rename(destination)  # never leave a truncated file under the final name


def read_score_file(path: Path) -> dict:
    """An official `{task, method, seed, xs, ys}` json.gz file as flat arrays: task, method and seed
    per record, its number of points (`lengths`), and all records' xs and ys one after another
    (a null y is NaN)."""
    with gzip.open(path, "rt") as stream:
        records = json.load(stream)
    return {
        "task": np.array([record["task"] for record in records]),
        "method": np.array([record["method"] for record in records]),
        "seed": np.array([int(record["seed"]) for record in records]),
        "lengths": np.array([len(record["xs"]) for record in records]),
        "xs": np.array([x for record in records for x in record["xs"]], dtype=float),
        "ys": np.array([y for record in records for y in record["ys"]], dtype=float),  # None -> NaN
    }


def cached_score_file(path: Path, cache_dir: Path) -> dict:
    """read_score_file through a cache of .npz files named by the source's content hash, so a changed
    or replaced source is read afresh; parsing the JSON takes seconds, loading the arrays milliseconds."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"{path.name}.{digest}.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as arrays:
            return dict(arrays)
    arrays = read_score_file(path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(cached.stem + ".part.npz")
    np.savez(partial, **arrays)
    partial.rename(cached)  # a crash never leaves a truncated cache under the final name
    return arrays


def load_score_file(path: Path, cache_dir: Path | None = None) -> list[Run]:
    """Runs of one official score file (cached in `cache_dir` when given); null bins are dropped."""
    path = Path(path)
    suite = FILE_SUITE[path.name.split("-")[0]]
    # Where the protocol fixes a reported budget (spec 7.4: Atari100k at 400k frames, later episodes
    # discarded); elsewhere a run counts up to the largest x of its task.
    budget = suite.reference_budget or math.nan
    arrays = cached_score_file(path, Path(cache_dir)) if cache_dir else read_score_file(path)
    ends = np.cumsum(arrays["lengths"])
    runs = []
    for task, method, seed, steps, scores in zip(arrays["task"], arrays["method"], arrays["seed"],
                                                 np.split(arrays["xs"], ends[:-1]),
                                                 np.split(arrays["ys"], ends[:-1])):
        keep = np.isfinite(scores)
        runs.append(Run(
            suite=suite.name, task=str(task), method=str(method), seed=int(seed),
            steps=steps[keep], scores=scores[keep], budget=budget,
        ))
    return runs


def load_crafter_file(path: Path) -> list[Run]:
    """Crafter's published human/random runs: per-episode reward and achievement counts."""
    runs = []
    for record in json.loads(Path(path).read_text()):
        achievements = {key: np.array(values, dtype=float)
                        for key, values in record.items() if key.startswith("achievement_")}
        runs.append(Run(
            suite="crafter", task=record["task"].replace("-", "_"), method=record["method"],
            seed=int(record["seed"]), steps=np.array(record["xs"], dtype=float),
            scores=np.array(record["reward"], dtype=float), episode_logs=achievements,
        ))
    return runs


def load_reference(path: Path, cache_dir: Path | None = None) -> list[Run]:
    path = Path(path)
    return load_crafter_file(path) if path.suffix == ".json" else load_score_file(path, cache_dir)


def load_baselines(path: Path) -> dict:
    """baselines.yaml: table name -> task -> [low, high] for min-max normalisation."""
    return yaml.safe_load(Path(path).read_text())


def main():
    parser = argparse.ArgumentParser(description="Download one reference file from its public source.")
    parser.add_argument("relative_path", help="e.g. dreamerv3-scores/atari100k-dreamerv3.json.gz")
    parser.add_argument("destination")
    args = parser.parse_args()
    print(f"downloading {source_url(args.relative_path)}")
    download(args.relative_path, Path(args.destination))


if __name__ == "__main__":
    main()
