"""The Apptainer recipes in containers/: pinned, consistent with each other and with CI's install, and
built here from the recipe itself. Apptainer is not installable on the project's machines, so
containers/rootfs.py does what `apptainer build` does for a debootstrap recipe, step by step;
containers/build.sh builds the SIF images where Apptainer is (its calls are checked with a stand-in).

    make container-test     the `container` tests: build the agent image's root filesystem from
                            containers/agent.def, run its %test and the project's smoke tests inside it

They need root, debootstrap and the package registries, and take about 15 minutes on 2 cores (README,
"Containers"), so they are deselected by default (pyproject.toml). With CONTAINER_BUILD_DIR set, the
root filesystem is built there and kept.
"""

import importlib.util
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from training import provenance

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
RECIPES = sorted(CONTAINERS.glob("*.def"))
PIN_FILE_IN_IMAGE = str(provenance.IMAGE_PIN_FILE)
REFERENCE = (REPO / ".." / "shared" / "reference").resolve()
spec = importlib.util.spec_from_file_location("rootfs", CONTAINERS / "rootfs.py")
rootfs = sys.modules["rootfs"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rootfs)
# The CPU flavour of the torch install: what the container tests build.
CPU_FLAVOUR = {"torch_flavour": "cpu"}
# Debian packages installed without `=version`. Their versions come from the Debian archive frozen at
# the recipe's snapshot instant (test_every_recipe_bootstraps_from_one_debian_snapshot); a package
# joins this list on purpose, in review.
APT_UNPINNED_ALLOWED = {
    # every image: Python, TLS roots for pip, git for provenance, GL/EGL for MuJoCo rendering (NVIDIA's
    # driver or Mesa's)
    "ca-certificates", "git", "python3.11", "python3.11-venv", "libegl1", "libgl1", "libopengl0",
    "libegl-mesa0", "libgl1-mesa-dri",
    # dmlab: DeepMind Lab's build and its software renderer
    "python3.11-dev", "build-essential", "curl", "unzip", "zip", "gettext", "pkg-config", "lua5.1",
    "liblua5.1-0-dev", "libffi-dev", "libjpeg-dev", "zlib1g-dev", "libsdl2-dev", "libosmesa6-dev",
    "libglu1-mesa-dev", "freeglut3-dev",
    # minecraft: gnupg for Adoptium's signing key (curl, as above), and an X server for Minecraft
    "gnupg", "xvfb", "xauth",
}  # fmt: skip
EXACT_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?==[A-Za-z0-9.+!_-]+$")
# Besides the pin file and name==version, a recipe may install a wheel it built (at a pinned commit) or
# one downloaded by file name, which carries the exact version: name-version-python-abi-platform.whl
WHEEL_FILE = re.compile(r"^[A-Za-z0-9_.]+-[0-9][A-Za-z0-9_.+!]*-.+\.whl$")


def recipe(path, **build_args):
    return rootfs.read_recipe(path, build_args)


def post_commands(recipe):
    """The %post script as commands: continuation lines joined; comments, here-document bodies and the
    shell's `case` syntax out, so every branch counts."""
    commands, pending, heredoc_end = [], "", None
    for line in recipe.sections["post"].script.splitlines():
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
        words = [word for word in shlex.split(command) if word != ";;"]
        commands.append(words[1:] if words and re.fullmatch(r"[\w*|]+\)", words[0]) else words)
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


def test_every_recipe_bootstraps_from_one_debian_snapshot():
    headers = {path.name: recipe(path).header for path in RECIPES}
    for name, header in headers.items():
        assert header["bootstrap"] == "debootstrap", name
        assert header["osversion"] == "bookworm", name  # Debian 12: Python 3.11
        # The archive at one instant, in the form provenance.json reads back from inside the image.
        assert provenance.DEBIAN_SNAPSHOT.search(header["mirrorurl"]), header["mirrorurl"]
        assert rootfs.SNAPSHOT_INSTANT.search(header["mirrorurl"]), header["mirrorurl"]
    # One base for all, so a refresh moves them together.
    assert len({tuple(sorted(header.items())) for header in headers.values()}) == 1, headers
    for path in RECIPES:  # and nothing replaces the snapshot as the Debian source
        assert not re.search(r"/etc/apt/sources\.list(?!\.d/)", path.read_text()), path.name


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
@pytest.mark.parametrize("build_args", [{}, CPU_FLAVOUR], ids=["cuda", "cpu"])
def test_every_pip_install_is_the_pin_file_or_exact(path, build_args):
    installs = pip_installs(recipe(path, **build_args))
    assert installs
    for args in installs:
        words = iter(args)
        for word in words:
            if word in ("-r", "-c"):
                assert next(words) == PIN_FILE_IN_IMAGE, f"{path.name}: pip {word} other than the pin file"
            elif word == "--find-links":  # only where a wheel named with its exact version is found
                next(words)
            elif word.startswith("-"):
                assert word in ("--no-cache-dir", "--no-deps"), f"{path.name}: unreviewed pip option {word}"
            elif word.startswith("/"):
                assert word.endswith(".whl"), f"{path.name}: {word} is not a wheel the recipe built"
            elif word.startswith("https://"):
                assert WHEEL_FILE.match(word.rsplit("/", 1)[1]), f"{path.name}: {word} names no wheel version"
            else:
                assert EXACT_VERSION.match(word), f"{path.name}: {word} is not an exact version"


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
def test_every_apt_package_is_pinned_or_allowed(path):
    installs = apt_installs(recipe(path))
    assert installs
    for args in installs:
        packages = [word for word in args if not word.startswith("-")]
        unreviewed = [name for name in packages if "=" not in name and name not in APT_UNPINNED_ALLOWED]
        assert not unreviewed, f"{path.name}: pin these or add them to APT_UNPINNED_ALLOWED: {unreviewed}"


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
def test_recipe_installs_the_pin_file_as_ci_does(path):
    torch, pin_file = ci_install_steps()
    assert torch in (REPO / pin_file).read_text().splitlines()
    copied = [line.split() for line in recipe(path).sections["files"].script.splitlines() if line.strip()]
    assert [pin_file, PIN_FILE_IN_IMAGE] in copied
    # torch alone first (PyPI's CUDA wheel, or the CPU wheel of the same version), then the pin file, as
    # the Makefile does.
    installs = pip_installs(recipe(path))
    steps = [args[-1] for args in installs if args[-1].startswith("torch") or PIN_FILE_IN_IMAGE in args]
    assert steps[:3] == [torch, torch + "+cpu", PIN_FILE_IN_IMAGE], steps


def test_agent_recipe_installs_procgen_without_deps_as_ci_does():
    no_deps_pins = re.search(r"^NO_DEPS_PINS := (.+)$", (REPO / "Makefile").read_text(), re.M).group(1).split()
    installs = pip_installs(recipe(CONTAINERS / "agent.def"))
    assert [args[-len(no_deps_pins):] for args in installs if "--no-deps" in args] == [no_deps_pins]


def test_torch_flavour_is_a_build_argument_with_cuda_by_default():
    post = recipe(CONTAINERS / "agent.def").sections["post"].script
    assert 'case "cuda" in' in post
    assert 'case "cpu" in' in recipe(CONTAINERS / "agent.def", **CPU_FLAVOUR).sections["post"].script


def test_build_arguments_fill_the_recipe_as_apptainer_does(tmp_path):
    path = tmp_path / "recipe.def"
    path.write_text(
        "Bootstrap: debootstrap\nOSVersion: {{ suite }}\nMirrorURL: http://mirror/\n"
        "%arguments\n    # a comment\n    suite=bookworm\n    word=default\n"
        "%post\n    echo {{word}} {{ suite }}\n    # a comment keeps its {{ braces }}\n"
    )
    assert recipe(path).header["osversion"] == "bookworm"
    assert recipe(path).sections["post"].script == "    echo default bookworm\n    # a comment keeps its {{ braces }}\n"
    assert recipe(path, word="given").sections["post"].script.startswith("    echo given bookworm\n")
    with pytest.raises(rootfs.BuildError, match="uses no such"):
        recipe(path, wrod="given")
    path.write_text(path.read_text().replace("{{word}}", "{{ undefined }}"))
    with pytest.raises(rootfs.BuildError, match="undefined"):
        recipe(path)


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



@pytest.mark.parametrize(("release_date", "accepted"), [("Sat, 11 Jul 2026 10:16:37 UTC", True),
                                                        ("Sat, 14 Nov 2026 10:00:00 UTC", False)])  # fmt: skip
def test_a_substitute_mirror_stands_in_only_while_it_serves_the_snapshots_suite(tmp_path, release_date, accepted):
    (tmp_path / "dists" / "bookworm").mkdir(parents=True)
    (tmp_path / "dists" / "bookworm" / "Release").write_text(f"Origin: Debian\nDate: {release_date}\n")
    agent = recipe(CONTAINERS / "agent.def")  # its snapshot: 2026-11-01
    if accepted:
        rootfs.check_substitute_mirror(agent, tmp_path.as_uri())
    else:
        with pytest.raises(rootfs.BuildError, match="no longer serves the snapshot's packages"):
            rootfs.check_substitute_mirror(agent, tmp_path.as_uri())

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as apptainer build without --fakeroot")

# A recipe whose %post and %test report what they saw, and exit with the statuses given as build arguments.
PROBE_RECIPE = """Bootstrap: debootstrap
OSVersion: bookworm
MirrorURL: http://snapshot.debian.org/archive/debian/20261101T000000Z/
%arguments
    post_status=0
    test_status=0
%files
    data.txt /opt/data.txt
%environment
    export FROM_ENVIRONMENT=yes
%post -c /bin/bash
    set -euo pipefail
    echo "$(cat /opt/data.txt) ${HOST_ONLY:-unset} ${PASSED:-unset} $(ls /bound)" > /opt/post.txt
    exit {{ post_status }}
%test
    set -e
    test "$FROM_ENVIRONMENT" = yes
    exit {{ test_status }}
"""


@pytest.fixture
def host_rootfs(tmp_path):
    """A root filesystem made of the host's own /usr, bound in for each step (the host is merged-/usr)."""
    if not all(Path(name).is_symlink() for name in ("/bin", "/lib", "/sbin")):
        pytest.skip("the host's /bin, /lib and /sbin are not links into /usr")
    root = tmp_path / "rootfs"
    root.mkdir()
    for name in ("bin", "lib", "lib64", "sbin"):
        (root / name).symlink_to(f"usr/{name}")
    (root / "proc").mkdir()
    return root


@needs_root
@pytest.mark.parametrize(("post_status", "test_status", "error"), [
    (0, 0, None), (3, 0, "%post failed with exit status 3"), (0, 4, "%test failed with exit status 4")])  # fmt: skip
def test_post_and_test_run_in_the_root_filesystem_and_their_failures_fail_the_build(
    tmp_path, host_rootfs, monkeypatch, post_status, test_status, error
):
    (tmp_path / "data.txt").write_text("copied")
    (tmp_path / "bound").mkdir()
    (tmp_path / "bound" / "seen").touch()
    (tmp_path / "probe.def").write_text(PROBE_RECIPE)
    monkeypatch.chdir(tmp_path)  # %files sources are relative to where the build runs
    monkeypatch.setenv("HOST_ONLY", "leaked")  # a clean environment, as Apptainer's
    monkeypatch.setenv("APPTAINERENV_PASSED", "passed")  # except what the caller passes on purpose
    probe = recipe(tmp_path / "probe.def", post_status=str(post_status), test_status=str(test_status))
    binds = ["/usr", f"{tmp_path / 'bound'}:/bound"]

    def steps():
        rootfs.copy_files(probe, host_rootfs)
        rootfs.run_post(probe, host_rootfs, binds)
        rootfs.write_metadata(probe, host_rootfs)
        rootfs.run_test(probe, host_rootfs, binds)

    if error:
        with pytest.raises(rootfs.BuildError, match=error):
            steps()
    else:
        steps()
    assert (host_rootfs / "opt" / "post.txt").read_text() == "copied unset passed seen\n"
    # The bind targets it made and the %post script are gone; the %test script stays, as in an image.
    made = {"bin", "lib", "lib64", "opt", "proc", "sbin"} | ({".singularity.d"} if post_status == 0 else set())
    assert {path.name for path in host_rootfs.iterdir()} == made


# One short real run per suite that installs in the agent image: an update every 16 agent steps after 64.
SMOKE_RUNS = {"gym": "CartPole-v1", "atari100k": "pong", "atari200m": "pong", "dmc_proprio": "walker_walk",
              "dmc_vision": "walker_walk", "bsuite": "catch/0", "crafter": "reward"}  # fmt: skip
SMOKE_STEPS = 100
TINY = ["--size", "1m", "--steps", str(SMOKE_STEPS), "--envs", "1", "--train-ratio", "4", "--device", "cpu",
        "--set", "train_fill=64", "batch_size=4", "batch_length=16"]  # fmt: skip
# Where pip inside the build finds the CA bundle that this machine trusts (its network may re-sign TLS).
HOST_CA_IN_BUILD = "/run/host-ca-certificates.crt"


def host_debian_mirror(suite: str) -> str | None:
    """The mirror this machine's apt takes `suite`'s main component from (deb822 or one-line sources)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        text = path.read_text() if path.is_file() else ""
        for stanza in text.split("\n\n"):
            fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", stanza, re.MULTILINE))
            if suite in fields.get("Suites", "").split() and "main" in fields.get("Components", "").split():
                return fields["URIs"].split()[0]
        if match := re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{suite}\s.*\bmain\b", text, re.MULTILINE):
            return match.group(1)
    return None


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=30):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def agent_image(tmp_path_factory):
    """containers/agent.def built here with the CPU flavour of torch: debootstrap, %files, %post, %test.
    A failing %post or %test, or a pin that does not resolve, fails every test that uses it."""
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.skip("needs root and debootstrap (`make container-test` installs it)")
    path = CONTAINERS / "agent.def"
    header = recipe(path).header
    mirror = header["mirrorurl"]
    substitute = None
    if not reachable(f"{mirror}dists/{header['osversion']}/Release"):
        # rootfs.py builds from this machine's Debian mirror only while it serves the snapshot's packages.
        substitute = mirror = host_debian_mirror(header["osversion"])
        assert substitute, f"{header['mirrorurl']} cannot be reached and apt here has no {header['osversion']} mirror"
    binds = [f"{ssl.get_default_verify_paths().cafile}:{HOST_CA_IN_BUILD}"]
    build_args = dict(CPU_FLAVOUR)
    # The CPU wheel from where `make venv` takes it here (pip's find-links folders), else PyTorch's page.
    wheel_folders = [entry for entry in os.environ.get("PIP_FIND_LINKS", "").split() if Path(entry).is_dir()]
    if wheel_folders:
        build_args["torch_cpu_wheels"] = wheel_folders[0]
        binds.append(wheel_folders[0])
    build_dir = Path(os.environ.get("CONTAINER_BUILD_DIR") or tmp_path_factory.mktemp("image"))
    root = build_dir / "agent"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)  # as containers/build.sh, for the recipe's %files
        patch.setenv("APPTAINERENV_PIP_CERT", HOST_CA_IN_BUILD)
        rootfs.build(recipe(path, **build_args), root, binds, substitute)
    snapshot = rootfs.SNAPSHOT_INSTANT.search(mirror)
    yield {"path": root, "mirror": mirror, "snapshot": snapshot.group(1) if snapshot else None}
    if not os.environ.get("CONTAINER_BUILD_DIR"):
        shutil.rmtree(root)


@pytest.mark.container
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("suite", "task"), SMOKE_RUNS.items())
def test_training_runs_inside_the_image_and_names_it(agent_image, tmp_path, suite, task):
    logdir = tmp_path / "run"
    command = ["python", "-m", "training.train", "--suite", suite, "--task", task, "--logdir", str(logdir), *TINY]
    # The project runs from its folder, bound in as `apptainer exec` binds the working folder.
    status = rootfs.exec_inside(agent_image["path"], command, [str(REPO), str(tmp_path)], pwd=str(REPO))
    assert status == 0
    assert json.loads((logdir / "done.json").read_text())["agent_steps"] == SMOKE_STEPS
    recorded = json.loads((logdir / "provenance.json").read_text())["container"]
    assert recorded["image"] == str(agent_image["path"])
    assert recorded["pin_file_sha256"] == provenance.sha256(REPO / "requirements.txt")
    assert recorded["apt_sources"] == [f"deb {agent_image['mirror']} bookworm main"]
    assert recorded["debian_snapshot"] == agent_image["snapshot"]  # None when built from a stand-in mirror


@pytest.mark.container
@pytest.mark.timeout(3600)
def test_workflow_test_config_runs_inside_the_image(agent_image, tmp_path):
    if not REFERENCE.exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    settings = tmp_path / "local.yaml"
    settings.write_text(yaml.safe_dump({"reference": {"local_dir": str(REFERENCE)}, "runs_dir": str(tmp_path / "runs"),
                                        "results_dir": str(tmp_path / "results")}))  # fmt: skip
    command = ["python", "-m", "snakemake", "--cores", "2", "--configfile", "config/test.yaml", str(settings)]
    binds = [str(REPO), str(tmp_path), str(REFERENCE)]
    assert rootfs.exec_inside(agent_image["path"], command, binds, pwd=str(REPO)) == 0
    assert len(list((tmp_path / "runs").glob("**/done.json"))) == 2
    assert "bsuite score" in (tmp_path / "results" / "tables" / "paper.md").read_text()
    assert (tmp_path / "results" / "report.md").stat().st_size > 0
