"""Aggregate rule: our run folders and the reference runs -> per-run scores and binned curves.

Both kinds of run go through the same functions (pipelines.scoring), so comparing our runs
with the paper and regenerating the paper's numbers from its files is one code path.
"""
import argparse
from pathlib import Path

import yaml

from pipelines import scoring
from pipelines.reference import load_baselines, load_reference
from pipelines.runs import load_run_folder


def load_all_runs(workflow_config: dict, run_folders: list, reference_files: list, problems: list) -> list:
    runs = [load_run_folder(folder, workflow_config["method"], problems) for folder in run_folders]
    runs = [run for run in runs if run is not None]
    for path in reference_files:
        runs += load_reference(path)
    scoring.fill_budgets(runs)
    return runs


def aggregate(workflow_config: dict, run_folders: list, reference_files: list, baselines_path, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems = []
    runs = load_all_runs(workflow_config, run_folders, reference_files, problems)
    settings = workflow_config["aggregation"]
    baselines = load_baselines(baselines_path)
    scoring.run_table(runs, baselines, settings["bins"], settings["window_fraction"]).to_csv(
        out_dir / "runs.csv", index=False)
    scoring.curve_table(runs, baselines, settings["bins"]).to_csv(out_dir / "curves.csv", index=False)
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
    args = parser.parse_args()
    workflow_config = yaml.safe_load(Path(args.workflow_config).read_text())
    aggregate(workflow_config, args.runs, args.reference, args.baselines, args.out_dir)


if __name__ == "__main__":
    main()
