"""Export rule: our runs in the official score-file format, one gzip JSON list of
{task, method, seed, xs, ys} records per suite and method, named `<suite>-<method>.json.gz`
(the baselines played by our code, e.g. the random policy, in their own files)."""
import argparse
import gzip
import json
from pathlib import Path

import yaml

from envs import SUITES
from pipelines.runs import load_run_folder


def export(workflow_config: dict, run_folders: list, out_dir: Path) -> list:
    problems = []
    runs = [load_run_folder(folder, workflow_config["method"], problems) for folder in run_folders]
    runs = [run for run in runs if run is not None]
    files = {}
    for run in runs:
        variants = {(other.size, other.train_ratio) for other in runs
                    if other.suite == run.suite and other.source == "ours"}
        # Several sizes or ratios in one suite (a scaling grid) need telling apart by name.
        method = run.method
        if run.source == "ours" and len(variants) > 1:
            method = f"{run.method}_{run.size}_ratio{run.train_ratio:g}"
        # One file per method, as the published ones (e.g. crafter_noreward-random.json): ours and baselines.
        files.setdefault(f"{SUITES[run.suite].score_files[0]}-{run.method}", []).append({
            "task": run.task, "method": method, "seed": run.seed,
            "xs": run.steps.tolist(), "ys": run.scores.tolist(),
        })
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, records in sorted(files.items()):
        with gzip.open(out_dir / f"{name}.json.gz", "wt") as stream:
            json.dump(records, stream)
    for line in problems:
        print(line)
    return sorted(files)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflow-config", required=True)
    parser.add_argument("--runs", nargs="*", default=[])
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args()
    workflow_config = yaml.safe_load(Path(args.workflow_config).read_text())
    for name in export(workflow_config, args.runs, Path(args.out_dir)):
        print(f"wrote {name}.json.gz")


if __name__ == "__main__":
    main()
