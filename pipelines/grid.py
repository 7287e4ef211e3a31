"""The run grid: one cell per (suite, task, seed, size, train_ratio), from the workflow config.

Each `grid` block names one suite; every list it leaves out falls back to that suite's
defaults in the config's `suites` section (the official budgets and ratios).
"""
import re


def task_slug(task: str) -> str:
    """Path-safe name of a task: bsuite ids such as `catch/0` contain a slash."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", task)


def run_name(cell: dict) -> str:
    """Run folder relative to runs_dir; the train rule's output pattern mirrors it."""
    return (f"{cell['suite']}/{task_slug(cell['task'])}/{cell['size']}-ratio{cell['train_ratio']:g}"
            f"/seed{cell['seed']}")


def grid_cells(config: dict) -> list[dict]:
    """All grid cells, deduplicated by run folder; a cell asked for twice must agree on its budget."""
    cells = {}
    for block in config["grid"]:
        suite = block["suite"]
        defaults = config["suites"][suite]
        for task in block.get("tasks", defaults["tasks"]):
            for size in block.get("sizes", [defaults["size"]]):
                for ratio in block.get("train_ratios", [defaults["train_ratio"]]):
                    for seed in block["seeds"]:
                        cell = {
                            "suite": suite, "task": task, "seed": seed, "size": size, "train_ratio": ratio,
                            "steps": int(block.get("steps", defaults["steps"])),
                            "envs": block.get("envs", defaults["envs"]),
                        }
                        name = run_name(cell)
                        if name in cells and cells[name] != cell:
                            raise ValueError(f"grid cell {name} is asked for twice with different budgets")
                        cells[name] = cell
    return list(cells.values())


def train_resources(config: dict, suite: str) -> dict:
    """What one train job of `suite` asks the scheduler for (runtime in minutes, mem_mb, gpu, cpus):
    the suite's own `resources`, else the grid's `train: resources`."""
    return {**config["train"]["resources"], **config["suites"][suite].get("resources", {})}
