#!/usr/bin/env python3
"""Builds the root filesystem of a `Bootstrap: debootstrap` Apptainer recipe without Apptainer, step by
step as `apptainer build` does, so that a recipe can be built and tested where Apptainer is not
installed. Needs root, debootstrap and unshare (util-linux); standard library only.

    python3 containers/rootfs.py build containers/agent.def ROOTFS [--build-arg KEY=VALUE]...
        [--bind SRC[:DST]]... [--substitute-mirror URL]
    python3 containers/rootfs.py exec ROOTFS [--bind SRC[:DST]]... [--pwd DIR] -- COMMAND...

`build` follows Apptainer's source (internal/pkg/build, 2026-08): the %arguments templating, debootstrap with the
options Apptainer passes, %files, %post run as `/bin/sh -ex` (or the section's `-c` shell) with a clean
environment, the %environment and %test scripts written to /.singularity.d, then %test. Like
`apptainer build`, %post and %test see the host's /etc/resolv.conf and /etc/hosts and the --bind paths,
and APPTAINERENV_NAME=VALUE in this process's environment sets NAME inside. `exec` runs a command in
the result as `apptainer exec` does: the image's environment scripts sourced, APPTAINER_CONTAINER set.
What it does not do: make a SIF file, run Apptainer's own runtime, bind GPUs (--nv).

A recipe's MirrorURL is usually a dated snapshot of the Debian archive. --substitute-mirror builds from
another mirror instead, and only when that mirror still serves the suite the snapshot served: the
suite's Release file there must be dated before the snapshot's instant.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

# The sections this builder carries out; %help and %labels only describe the image.
SECTIONS = {"arguments", "files", "environment", "post", "test", "help", "labels"}
# Apptainer's runtime PATH inside a container started with --cleanenv, as in %post and %test.
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENVIRONMENT_SCRIPT = "/.singularity.d/env/90-environment.sh"
# %post may append exports here ($APPTAINER_ENVIRONMENT), read at run time after the recipe's own.
POST_ENVIRONMENT_SCRIPT = "/.singularity.d/env/91-environment.sh"
TEST_SCRIPT = "/.singularity.d/test"
SNAPSHOT_INSTANT = re.compile(r"snapshot\.debian\.org/archive/[\w-]+/(\d{8}T\d{6}Z)")


class BuildError(RuntimeError):
    """A step of the build failed; the message says which and why."""


@dataclass
class Section:
    args: str  # what follows %name on its line, e.g. "-c /bin/bash"
    script: str


@dataclass
class Recipe:
    header: dict[str, str]  # keys lower-case, as Apptainer reads them
    sections: dict[str, Section]
    folder: Path  # %files sources are relative to the folder the build runs from


def apply_build_args(text: str, build_args: dict[str, str]) -> str:
    """Apptainer's templating: each {{ name }} outside a comment becomes --build-arg name=value or the
    default from %arguments; a name with neither is an error, and so is a --build-arg that no {{ }} uses."""
    defaults = {}
    for line in split_sections(text)[1].get("arguments", Section("", "")).script.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            defaults[key.strip()] = value.strip()
    used = set()

    def value(match):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if re.search(r"#[^!]", text[line_start : match.start()]):  # a comment, left as it is
            return match.group(0)
        name = match.group(1)
        if name not in build_args and name not in defaults:
            raise BuildError(f"{{{{ {name} }}}} is neither a --build-arg nor in %arguments")
        used.add(name)
        return build_args.get(name, defaults.get(name))

    result = re.sub(r"{{\s*(\w+)\s*}}", value, text)
    if unused := set(build_args) - used:
        raise BuildError(f"--build-arg {', '.join(sorted(unused))}: the recipe uses no such {{{{ }}}}")
    return result


def split_sections(text: str) -> tuple[dict[str, str], dict[str, Section]]:
    """The header's `Key: value` lines and each %section (its argument string and script)."""
    header, sections, name = {}, {}, None
    for line in text.splitlines():
        if match := re.match(r"^%(\w+)\s*(.*)$", line):
            name = match.group(1).lower()
            sections[name] = Section(match.group(2).strip(), "")
        elif name:
            sections[name].script += line + "\n"
        elif (match := re.match(r"^(\w+):\s*(.*?)\s*$", line)) and not line.lstrip().startswith("#"):
            header[match.group(1).lower()] = match.group(2)
    return header, sections


def read_recipe(path: Path, build_args: dict[str, str] | None = None) -> Recipe:
    header, sections = split_sections(apply_build_args(path.read_text(), build_args or {}))
    if unsupported := set(sections) - SECTIONS:
        raise BuildError(f"{path}: this builder does not carry out %{', %'.join(sorted(unsupported))}")
    if header.get("bootstrap") != "debootstrap":
        raise BuildError(f"{path}: this builder takes `Bootstrap: debootstrap`, not {header.get('bootstrap')}")
    for key in ("osversion", "mirrorurl"):
        if key not in header:
            raise BuildError(f"{path}: a debootstrap recipe names its {key} in the header")
    return Recipe(header, sections, Path.cwd())


def check_substitute_mirror(recipe: Recipe, mirror: str) -> None:
    """The substitute serves the recipe's suite exactly as the snapshot did when that suite's Release
    file is older than the snapshot's instant (a suite changes only with a new Release file)."""
    instant = SNAPSHOT_INSTANT.search(recipe.header["mirrorurl"])
    if not instant:
        raise BuildError(f"--substitute-mirror stands in for a snapshot; {recipe.header['mirrorurl']} is none")
    snapshot = datetime.strptime(instant.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    release_url = f"{mirror.rstrip('/')}/dists/{recipe.header['osversion']}/Release"
    with urllib.request.urlopen(release_url, timeout=60) as response:
        release = response.read().decode()
    dated = re.search(r"^Date: (.+)$", release, re.MULTILINE)
    if not dated:
        raise BuildError(f"{release_url} has no Date field")
    release_date = parsedate_to_datetime(dated.group(1))
    if release_date > snapshot:
        raise BuildError(
            f"{release_url} is dated {release_date:%Y-%m-%d %H:%M}, after the recipe's snapshot "
            f"{instant.group(1)}: that mirror no longer serves the snapshot's packages. Build from the "
            "snapshot itself, or move the recipes' snapshot to an instant after that date."
        )
    print(f"rootfs: building from {mirror}, whose {recipe.header['osversion']} (Release of "
          f"{release_date:%Y-%m-%d}) is the one the snapshot {instant.group(1)} serves", flush=True)


def debootstrap(recipe: Recipe, rootfs: Path, mirror: str | None = None) -> None:
    """As Apptainer's debootstrap agent: minbase, without the packages it excludes, with apt and Include."""
    include = ",".join(["apt", *recipe.header.get("include", "").split()])
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout
    command = ["debootstrap", "--variant=minbase", "--exclude=openssl,udev,debconf-i18n,e2fsprogs",
               f"--include={include}", f"--arch={arch.strip()}", recipe.header["osversion"], str(rootfs),
               mirror or recipe.header["mirrorurl"]]  # fmt: skip
    print("rootfs:", " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        raise BuildError(f"debootstrap failed; its log: {rootfs}/debootstrap/debootstrap.log")


def copy_files(recipe: Recipe, rootfs: Path) -> None:
    for line in recipe.sections.get("files", Section("", "")).script.splitlines():
        words = line.split("#")[0].split()
        if not words:
            continue
        source = recipe.folder / words[0]
        target = rootfs / (words[-1] if len(words) > 1 else words[0]).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)


def write_metadata(recipe: Recipe, rootfs: Path) -> None:
    """%environment and %test where Apptainer puts them: /bin/sh scripts, %test's arguments on its shebang."""
    for path, name in ((ENVIRONMENT_SCRIPT, "environment"), (TEST_SCRIPT, "test")):
        if section := recipe.sections.get(name):
            shebang = f"#!/bin/sh {section.args}" if name == "test" and section.args else "#!/bin/sh"
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"{shebang}\n\n{section.script}\n")
            target.chmod(0o755)


def section_command(section: Section, script: str) -> list[str]:
    """How Apptainer runs a %post script: `/bin/sh -ex SCRIPT`, or `/bin/sh -ex -c "SHELL... SCRIPT"`."""
    params = section.args.split("#")[0].split()
    if "-c" in params:
        at = params.index("-c")
        return ["/bin/sh", "-ex", *params[: at + 1], " ".join([*params[at + 1 :], script])]
    return ["/bin/sh", "-ex", *params, script]


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Apptainer's --cleanenv: a default PATH, LANG and HOME, plus APPTAINERENV_* from the caller."""
    env = {"PATH": CLEAN_PATH, "LANG": "C", "HOME": "/root"}
    env.update({key.removeprefix("APPTAINERENV_"): value for key, value in os.environ.items()
                if key.startswith("APPTAINERENV_")})  # fmt: skip
    env.update(extra or {})
    return env


def parse_bind(spec: str) -> tuple[Path, str]:
    source, _, target = spec.partition(":")
    return Path(source).resolve(), target or str(Path(source).resolve())


def run_inside(rootfs: Path, argv: list[str], env: dict[str, str], binds: list[str] = (), pwd: str = "/") -> int:
    """argv in the root filesystem, in its own mount and PID namespaces (nothing mounted here outlives
    it), with a fresh /proc, the host's /dev and /sys, DNS settings and the binds. Bind targets that
    the root filesystem lacks are made for the run and removed after it."""
    mounts = [(Path("/dev"), "/dev"), (Path("/sys"), "/sys"), (Path("/etc/resolv.conf"), "/etc/resolv.conf"),
              (Path("/etc/hosts"), "/etc/hosts"), *(parse_bind(spec) for spec in binds)]  # fmt: skip
    made = []
    for source, target in mounts:
        if not source.exists():
            raise BuildError(f"bind source {source} does not exist")
        point = rootfs / target.lstrip("/")
        missing = [path for path in reversed((point, *point.parents)) if not os.path.lexists(path)]
        if source.is_dir():
            point.mkdir(parents=True, exist_ok=True)
        elif not point.exists():
            point.parent.mkdir(parents=True, exist_ok=True)
            point.touch()
        made += missing
    # The shell script runs on the host, in the new namespaces: bind, then enter the root filesystem.
    enter = 'root=$1; n=$2; shift 2; while [ "$n" -gt 0 ]; do mount --rbind "$1" "$root$2"; shift 2; ' \
            'n=$((n - 1)); done; exec chroot "$root" "$@"'  # fmt: skip
    pairs = [str(part) for source, target in mounts for part in (source, target)]
    variables = [f"{key}={value}" for key, value in env.items()]
    command = ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={rootfs}/proc",
               "/bin/sh", "-ec", enter, "enter", str(rootfs), str(len(mounts)), *pairs,
               "/usr/bin/env", "-i", "-C", pwd, *variables, *argv]  # fmt: skip
    try:
        return subprocess.run(command).returncode
    finally:
        for path in reversed(made):
            path.rmdir() if path.is_dir() else path.unlink()


def run_post(recipe: Recipe, rootfs: Path, binds: list[str]) -> None:
    section = recipe.sections.get("post")
    if section is None:
        return
    script = rootfs / ".post.script"
    script.write_text(section.script)
    script.chmod(0o755)
    env = clean_environment({"APPTAINER_ENVIRONMENT": POST_ENVIRONMENT_SCRIPT})
    try:
        status = run_inside(rootfs, section_command(section, "/.post.script"), env, binds)
    finally:
        script.unlink()
    if status != 0:
        raise BuildError(f"%post failed with exit status {status}")


def exec_inside(rootfs: Path, argv: list[str], binds: list[str] = (), pwd: str = "/",
                env: dict[str, str] | None = None) -> int:  # fmt: skip
    """As `apptainer exec --cleanenv`: the image's environment scripts, then argv."""
    source = 'for script in /.singularity.d/env/*.sh; do [ -f "$script" ] && . "$script"; done; exec "$@"'
    env = clean_environment({"APPTAINER_CONTAINER": str(rootfs), **(env or {})})
    return run_inside(rootfs, ["/bin/sh", "-c", source, "exec", *argv], env, binds, pwd)


def run_test(recipe: Recipe, rootfs: Path, binds: list[str]) -> None:
    if "test" in recipe.sections:
        status = exec_inside(rootfs, [TEST_SCRIPT], binds)
        if status != 0:
            raise BuildError(f"%test failed with exit status {status}")


def step(name: str) -> None:
    print(f"rootfs: {name} ({datetime.now(UTC):%H:%M:%S} UTC)", flush=True)


def build(recipe: Recipe, rootfs: Path, binds: list[str] = (), substitute_mirror: str | None = None) -> None:
    if rootfs.exists() and any(rootfs.iterdir()):
        raise BuildError(f"{rootfs} is not empty: remove it or name a new folder")
    if substitute_mirror:
        check_substitute_mirror(recipe, substitute_mirror)
    step("debootstrap")
    debootstrap(recipe, rootfs, substitute_mirror)
    step("%files")
    copy_files(recipe, rootfs)
    step("%post")
    run_post(recipe, rootfs, binds)
    write_metadata(recipe, rootfs)
    step("%test")
    run_test(recipe, rootfs, binds)
    print(f"rootfs: built {rootfs}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build ROOTFS from RECIPE, then run its %%test")
    build_parser.add_argument("recipe", type=Path)
    build_parser.add_argument("rootfs", type=Path)
    build_parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    build_parser.add_argument("--substitute-mirror", metavar="URL")
    exec_parser = commands.add_parser("exec", help="run a command in ROOTFS as `apptainer exec` does")
    exec_parser.add_argument("rootfs", type=Path)
    exec_parser.add_argument("--pwd", default="/")
    exec_parser.add_argument("argv", nargs="+", metavar="COMMAND")
    for sub in (build_parser, exec_parser):
        sub.add_argument("--bind", action="append", default=[], metavar="SRC[:DST]")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (debootstrap and chroot), as `apptainer build` does without --fakeroot")
    try:
        if args.command == "exec":
            return exec_inside(args.rootfs.resolve(), args.argv, args.bind, args.pwd)
        build_args = dict(arg.split("=", 1) for arg in args.build_arg)
        build(read_recipe(args.recipe, build_args), args.rootfs.resolve(), args.bind, args.substitute_mirror)
    except BuildError as error:
        print(f"rootfs: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
