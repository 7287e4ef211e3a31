"""Aggregate rule: our run folders and the reference runs -> per-run scores and binned curves.

Both kinds of run go through the same functions (pipelines.scoring), so comparing our runs
with the paper and regenerating the paper's numbers from its files is one code path.
"""
import argparse
from pathlib import Path

import yaml

from pipelines import scoring
from pipelines.progress import progress
from pipelines.reference import load_baselines, load_reference
from pipelines.runs import load_run_folder


def load_all_runs(workflow_config: dict, run_folders: list, reference_files: list, problems: list,
                  cache_dir=None) -> list:
    runs = []
    for number, folder in enumerate(run_folders, 1):
        if number % 100 == 0 or number == len(run_folders):
            progress("aggregate", f"run folders {number}/{len(run_folders)}")
        runs.append(load_run_folder(folder, workflow_config["method"], problems))
    runs = [run for run in runs if run is not None]
    for number, path in enumerate(reference_files, 1):
        progress("aggregate", f"reference files {number}/{len(reference_files)}: {Path(path).name}")
        runs += load_reference(path, cache_dir)
    scoring.fill_budgets(runs)
    return runs


def aggregate(workflow_config: dict, run_folders: list, reference_files: list, baselines_path, out_dir,
              cache_dir=None):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems = []
    runs = load_all_runs(workflow_config, run_folders, reference_files, problems, cache_dir)
    settings = workflow_config["aggregation"]
    baselines = load_baselines(baselines_path)
    progress("aggregate", f"scores and binned curves of {len(runs)} runs")
    scoring.run_table(runs, baselines, settings["bins"], settings["window_fraction"]).to_csv(
        out_dir / "runs.csv", index=False)
    scoring.curve_table(runs, baselines, settings["bins"]).to_csv(out_dir / "curves.csv", index=False)
    progress("aggregate", "bsuite scores")
    scoring.bsuite_scores(runs, problems).to_csv(out_dir / "bsuite.csv", index=False)
    (out_dir / "problems.txt").write_text("".join(line + "\n" for line in problems))
    for line in problems:
        print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflow-config", required=True, help="resolved workflow config (YAML)")
    parser.add_argument("--runs", nargs="*", default=[], help="run folders (config.yaml + scores.jsonl)")
    parser.add_argument("--reference", nargs="*", default=[], help="reference score files")
    parser.add_argument("--baselines", required=True, help="baselines.yaml")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--reference-cache", help="folder for the parsed reference files (read afresh if absent)")
    args = parser.parse_args()
    workflow_config = yaml.safe_load(Path(args.workflow_config).read_text())
    aggregate(workflow_config, args.runs, args.reference, args.baselines, args.out_dir, args.reference_cache)


if __name__ == "__main__":
    main()
