"""Imports point down only (../shared/docs/architecture.md, "Layers"):

    pipelines/  -> envs (the suite table), never the agent or the training layer (figures without torch)
    training/   -> agent, envs, spaces
    agent/      -> spaces only: the algorithm knows no benchmark and no run machinery
    envs/       -> spaces only
    spaces.py   -> nothing of the project

pipelines/plan.py (`make plan`) is the one command of pipelines/ on top of everything: it prices a grid
by resolving each run with the training CLI's own parse_args, and no rule imports it.

Every import statement counts, also those inside functions. Each package's tests follow its rule,
and may also use the helpers of benchmarks/ (which sit on top of everything).
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = {"agent", "envs", "training", "pipelines", "spaces", "benchmarks"}
ALLOWED = {
    "spaces.py": set(),
    "agent": {"spaces"},
    "envs": {"spaces"},
    "training": {"agent", "envs", "spaces"},
    "pipelines": {"envs"},
}
ON_TOP = {"pipelines/plan.py", "pipelines/tests/test_plan.py"}  # may import every layer (see above)


def project_imports(path: Path) -> set[str]:
    """Top-level project packages that one file imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & PROJECT


def files_of(layer: str) -> list[Path]:
    return [REPO / layer] if layer.endswith(".py") else sorted((REPO / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_down_only(layer):
    own = {layer.removesuffix(".py")}
    wrong = {}
    for path in files_of(layer):
        if str(path.relative_to(REPO)) in ON_TOP:
            continue
        tools = {"benchmarks"} if "tests" in path.relative_to(REPO).parts else set()
        extra = project_imports(path) - own - ALLOWED[layer] - tools
        if extra:
            wrong[str(path.relative_to(REPO))] = sorted(extra)
    assert not wrong, f"imports against the layering: {wrong}"


def test_the_check_sees_an_upward_import(tmp_path):
    path = tmp_path / "upward.py"
    path.write_text("def build():\n    from training.replay import Replay\n    import envs.registry\n")
    assert project_imports(path) == {"training", "envs"}
