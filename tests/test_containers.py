"""The Apptainer recipes in containers/ are pinned, and install the pin file CI installs.

Apptainer cannot be installed on the project's machines, so the recipes are read here, not built;
containers/build.sh builds them where Apptainer is (its calls are checked with a stand-in apptainer).
"""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
RECIPES = sorted(CONTAINERS.glob("*.def"))
PIN_FILE_IN_IMAGE = "/opt/dreamer/requirements.txt"
# Debian packages installed without `=version`. Their versions come from the Ubuntu archive frozen at
# the recipe's snapshot instant (test_apt_packages_come_from_one_archive_snapshot); a package joins this
# list on purpose, in review.
APT_UNPINNED_ALLOWED = {
    # every image: Python, TLS roots for pip, git for provenance, GL/EGL for MuJoCo rendering
    "ca-certificates", "git", "python3.11", "python3.11-venv", "libegl1", "libgl1", "libopengl0",
    # dmlab: DeepMind Lab's build and its software renderer
    "python3.11-dev", "build-essential", "curl", "unzip", "zip", "gettext", "pkg-config", "lua5.1",
    "liblua5.1-0-dev", "libffi-dev", "libjpeg-dev", "zlib1g-dev", "libsdl2-dev", "libosmesa6-dev",
    "libglu1-mesa-dev", "freeglut3-dev",
    # minecraft: Java 8 and an X server for Minecraft
    "openjdk-8-jdk", "xvfb", "xauth",
}  # fmt: skip
EXACT_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?==[A-Za-z0-9.+!_-]+$")
# Besides the pin file and name==version, a recipe may install a wheel it built (at a pinned commit) or
# one downloaded by file name, which carries the exact version: name-version-python-abi-platform.whl
WHEEL_FILE = re.compile(r"^[A-Za-z0-9_.]+-[0-9][A-Za-z0-9_.+!]*-.+\.whl$")


def sections(recipe):
    """The header (key: value lines before the first section) and each %section's lines, by name."""
    parts, name = {"header": []}, "header"
    for line in recipe.read_text().splitlines():
        if match := re.match(r"^%(\w+)", line):
            name = match.group(1)
            parts[name] = []
        else:
            parts[name].append(line)
    return parts


def post_commands(recipe):
    """The %post script as commands: continuation lines joined; comments and here-document bodies out."""
    commands, pending, heredoc_end = [], "", None
    for line in sections(recipe)["post"]:
        if heredoc_end:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command = pending + line
        pending = ""
        if match := re.search(r"<<-?\s*'?(\w+)'?", command):
            heredoc_end = match.group(1)
        commands.append(shlex.split(command))
    return commands


def arguments_after(words, *program):
    """The arguments of every `program...` in a command, e.g. ("pip", "install")."""
    size = len(program)
    return [words[i + size :] for i in range(len(words)) if tuple(words[i : i + size]) == program]


def pip_installs(recipe):
    return [args for words in post_commands(recipe) for args in arguments_after(words, "pip", "install")]


def apt_installs(recipe):
    return [args for words in post_commands(recipe) for args in arguments_after(words, "apt-get", "install")]


def ci_install_steps():
    """What CI installs: .ci/run runs `make test`, whose venv target installs torch, then a pin file."""
    makefile = (REPO / "Makefile").read_text()
    torch = re.search(r"pip install .*?(torch==\S+)", makefile).group(1)
    pin_file = re.search(r"pip install .*?-r (\S+)", makefile).group(1)
    return torch, pin_file


def test_there_are_the_three_recipes():
    assert [recipe.stem for recipe in RECIPES] == ["agent", "dmlab", "minecraft"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_base_image_is_pinned_by_digest(recipe):
    header = dict(line.split(":", 1) for line in sections(recipe)["header"] if re.match(r"^\w+:", line))
    assert header["Bootstrap"].strip() == "docker"
    # Digest only: Apptainer (containers/image) refuses a reference with both a tag and a digest.
    assert re.fullmatch(r"[a-z0-9./-]+@sha256:[0-9a-f]{64}", header["From"].strip()), header["From"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_every_pip_install_is_the_pin_file_or_exact(recipe):
    installs = pip_installs(recipe)
    assert installs
    for args in installs:
        words = iter(args)
        for word in words:
            if word in ("-r", "-c"):
                assert next(words) == PIN_FILE_IN_IMAGE, f"{recipe.name}: pip {word} other than the pin file"
            elif word.startswith("-"):
                assert word in ("--no-cache-dir", "--no-deps"), f"{recipe.name}: unreviewed pip option {word}"
            elif word.startswith("/"):
                assert word.endswith(".whl"), f"{recipe.name}: {word} is not a wheel the recipe built"
            elif word.startswith("https://"):
                assert WHEEL_FILE.match(word.rsplit("/", 1)[1]), f"{recipe.name}: {word} names no wheel version"
            else:
                assert EXACT_VERSION.match(word), f"{recipe.name}: {word} is not an exact version"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_every_apt_package_is_pinned_or_allowed(recipe):
    installs = apt_installs(recipe)
    assert installs
    for args in installs:
        packages = [word for word in args if not word.startswith("-")]
        unreviewed = [name for name in packages if "=" not in name and name not in APT_UNPINNED_ALLOWED]
        assert not unreviewed, f"{recipe.name}: pin these or add them to APT_UNPINNED_ALLOWED: {unreviewed}"


def test_apt_packages_come_from_one_archive_snapshot():
    snapshots = set()
    for recipe in RECIPES:
        post = "\n".join(sections(recipe)["post"])
        snapshots.update(re.findall(r"^\s*snapshot=(\d{8}T\d{6}Z)$", post, re.MULTILINE))
        # The sources point at the snapshot before anything is installed from them.
        rewrite = post.index("snapshot.ubuntu.com/ubuntu/$snapshot/")
        assert rewrite < post.index("apt-get update") < post.index("apt-get install"), recipe.name
    # One instant and one base image for all, so a refresh moves them together.
    assert len(snapshots) == 1, snapshots
    bases = {line for recipe in RECIPES for line in sections(recipe)["header"] if line.startswith("From:")}
    assert len(bases) == 1, bases


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_recipe_installs_the_pin_file_as_ci_does(recipe):
    torch, pin_file = ci_install_steps()
    assert torch in (REPO / pin_file).read_text().splitlines()
    copied = [line.split() for line in sections(recipe)["files"] if line.strip()]
    assert [pin_file, PIN_FILE_IN_IMAGE] in copied
    # torch alone first, then the pin file, as the Makefile does.
    steps = [args for args in pip_installs(recipe) if torch in args or PIN_FILE_IN_IMAGE in args]
    assert [step[-1] for step in steps[:2]] == [torch, PIN_FILE_IN_IMAGE], steps


def test_build_script_builds_each_named_recipe_into_its_image(tmp_path):
    # A copy of the layout, so that no image lands in the repository; a stand-in records the calls.
    (tmp_path / "containers").mkdir()
    for path in [CONTAINERS / "build.sh", *RECIPES]:
        (tmp_path / "containers" / path.name).write_bytes(path.read_bytes())
    (tmp_path / "containers" / "build.sh").chmod(0o755)
    (tmp_path / "bin").mkdir()
    stand_in = tmp_path / "bin" / "apptainer"
    stand_in.write_text(
        '#!/bin/sh\necho "$*" >> "$APPTAINER_CALLS"\nfor arg; do [ "${arg%.sif}" = "$arg" ] || touch "$arg"; done\n'
    )
    stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "APPTAINER_CALLS": str(tmp_path / "calls")}
    build = [str(tmp_path / "containers" / "build.sh")]

    result = subprocess.run(build, env=env, cwd="/", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    fakeroot = "" if os.geteuid() == 0 else " --fakeroot"
    expected = [
        f"build --force{fakeroot} containers/{name}.sif containers/{name}.def"
        for name in ("agent", "dmlab", "minecraft")
    ]
    assert (tmp_path / "calls").read_text().splitlines() == expected
    assert result.stdout.count("sha256:") == 3

    result = subprocess.run([*build, "nosuch"], env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "no recipe containers/nosuch.def" in result.stderr
