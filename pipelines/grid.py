"""The run grid: one cell per (suite, task, seed, size, train_ratio), from the workflow config.

Each `grid` block names one suite; every list it leaves out falls back to that suite's row in
the registry (envs/registry.py: the official tasks, budgets, ratios and sizes).
"""
import re

from envs import SUITES, check_env_args


def validate_config(config: dict, schema: str):
    """snakemake's schema validation (defaults filled in); a failure raises ValueError naming the key, the
    schema rule and the allowed values, instead of the whole schema."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, schema, set_default=True)
    except WorkflowError as error:
        cause = error.__context__
        if not hasattr(cause, "validator"):
            raise
        where = "config " + ".".join(str(part) for part in cause.absolute_path) if cause.absolute_path else "the config"
        if cause.validator == "additionalProperties":
            allowed = f"allowed keys: {', '.join(cause.schema.get('properties', {}))}"
        else:
            allowed = f"rule {cause.validator}: {str(cause.validator_value)[:200]}"
        raise ValueError(f"{where}: {cause.message} ({allowed}; see {schema})") from None


def check_overrides(config: dict, check):
    """train.overrides checked before any job is planned: by `check` (agent.config's parse_overrides +
    make_config, passed in so that pipelines/ does not import the agent; it returns the config as a dict),
    then their env_args against the adapter of each grid block's suite (no engine imported)."""
    try:
        env_args = check(config["train"]["overrides"])["env_args"]
        for index, block in enumerate(config["grid"]):
            try:
                check_env_args(block["suite"], env_args)
            except ValueError as error:
                raise ValueError(f"grid[{index}]: {error}") from None
    except (KeyError, ValueError) as error:
        raise ValueError(f"train.overrides: {error.args[0] if error.args else error}") from None


def check_names(config: dict, sizes):
    """Suite and size names the schema cannot know: they come from the registry and the size presets
    (`sizes`: agent.config.SIZES, passed in so that pipelines/ does not import the agent)."""
    blocks = [(f"grid[{index}]", block) for index, block in enumerate(config["grid"])]
    for where, block in blocks + [(f"suites.{name}", {"suite": name}) for name in config["suites"]]:
        if block["suite"] not in SUITES:
            raise ValueError(f"{where}: unknown suite {block['suite']!r}; valid: {', '.join(SUITES)}")
        for size in block.get("sizes", []):
            if size not in sizes:
                raise ValueError(f"{where}: unknown size {size!r}; valid: {', '.join(sizes)}")


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
        defaults = SUITES[suite]
        for task in block.get("tasks", defaults.default_tasks()):
            for size in block.get("sizes", [defaults.size]):
                for ratio in block.get("train_ratios", [defaults.train_ratio]):
                    for seed in block["seeds"]:
                        cell = {
                            "suite": suite, "task": task, "seed": seed, "size": size, "train_ratio": ratio,
                            "steps": int(block.get("steps", defaults.steps)),
                            "envs": block.get("envs", defaults.envs),
                        }
                        name = run_name(cell)
                        if name in cells and cells[name] != cell:
                            raise ValueError(f"grid cell {name} is asked for twice with different budgets")
                        cells[name] = cell
    return list(cells.values())


def random_run_name(cell: dict) -> str:
    """Folder of a random-policy run relative to runs_dir: `random` where a training run has its size and
    ratio; the random_policy rule's output pattern mirrors it."""
    return f"{cell['suite']}/{task_slug(cell['task'])}/random/seed{cell['seed']}"


def random_cells(config: dict) -> list[dict]:
    """With `random_policy` on: one random-policy run per (suite, task, seed) of the grid, as long as the
    task's longest cell (and with its envs), so that its curve spans every run of the task."""
    if not config.get("random_policy"):
        return []
    longest, seeds = {}, {}
    for cell in grid_cells(config):
        task = (cell["suite"], cell["task"])
        if task not in longest or cell["steps"] > longest[task]["steps"]:
            longest[task] = cell
        seeds.setdefault(task, []).append(cell["seed"])
    return [{"suite": suite, "task": task, "seed": seed, "steps": cell["steps"], "envs": cell["envs"]}
            for (suite, task), cell in longest.items() for seed in sorted(set(seeds[suite, task]))]


def train_resources(config: dict, suite: str) -> dict:
    """What one train job of `suite` asks the scheduler for (runtime in minutes, mem_mb, gpu, cpus):
    the suite's own `resources`, else the grid's `train: resources`."""
    return {**config["train"]["resources"], **config["suites"].get(suite, {}).get("resources", {})}
