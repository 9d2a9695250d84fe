"""Every program the portal and its tests run comes from a package we install.

CI runs on a fresh Debian 12 machine where none of the portal's Debian
packages are present: ``make test`` installs ``DEBIAN_PACKAGES`` (through
``deploy/install-debian-packages.sh``) and nothing else. A program that
this machine happens to have, but that no listed package brings, passes
here and fails there. So for each program below we ask dpkg which package
ships it on this machine, and require that package to be listed, to be
pulled in by a listed package's dependencies, or to be part of every Debian
system (Priority: required).

Adding a program to ``portal.host.allowlist.ALLOWED_EXECUTABLES``, or
running a new one from a test, without its package, fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from portal.config import REPO_DIR
from portal.host.allowlist import ALLOWED_EXECUTABLES, SYSTEM_PATH

# Programs run outside the host layer's allow-list, and where. A program is
# looked up in the system folders, as the allow-list does.
OTHER_PROGRAMS: Mapping[str, str] = {
    # The web stack runnode starts (portal/management/commands/runnode.py),
    # also started by portal/tests/test_run_configs.py and test_run_node.py.
    "nginx": "runnode starts it; test_run_configs checks the rendered config",
    "redis-server": "runnode; portal/tests/redis_fixture.py",
    "useradd": "runnode.ensure_web_user creates the web process's user",
    # Tests and their namespaces.
    "chromium": "portal/tests/test_pages_browser.py, through Playwright",
    "msgfmt": "make compilemessages; portal/tests/test_translations.py",
    "openssl": "portal/tests/test_setup_init.py, test_run_configs.py",
    "ping": "portal/tests/test_lab.py pings across the lab",
    "pgrep": "portal/tests/test_host_runner.py looks for leftover children",
    "sleep": "portal/tests/test_host_runner.py (timeouts)",
    "cat": "portal/tests/test_host_runner.py, test_lab.py",
    "printf": "portal/tests/test_host_runner.py",
    "env": "portal/tests/test_host_runner.py",
    "sh": "portal/tests/test_host_runner.py, test_lab.py",
    "true": "portal/tests/test_lab.py",
    "wrk": "bench/web.py; bench/tests/test_bench.py runs it for real",
    # The web chat's browser client: `make deps` runs npm ci (Makefile).
    "npm": "Makefile: vendor/webchat (Converse.js for services/catalogue/webchat)",
    # The Makefile's `$(SYSTEM_PYTHON) -m venv` (make itself must be there
    # before anything can be installed: docs/operating.md says so).
    "python3": "Makefile SYSTEM_PYTHON (/usr/bin/python3) makes the venv",
}

# Files that are not programs but that the suite needs all the same.
OTHER_FILES: Mapping[str, str] = {
    # Debian's python3 -m venv needs ensurepip and the pip wheel.
    "/usr/lib/python3.11/ensurepip/__init__.py": "Makefile: python3 -m venv",
    # Headless Chromium renders text only with a font installed.
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf": "test_pages_browser.py",
}


@dataclass(frozen=True)
class Installed:
    """What dpkg knows about the packages installed on this machine."""

    priority: Mapping[str, str]
    depends: Mapping[str, tuple[str, ...]]


def _package_name(spec: str) -> str:
    """``libc6:amd64 (>= 2.36)`` -> ``libc6``."""
    return spec.strip().split(" ", 1)[0].split(":", 1)[0]


def parse_depends(field: str) -> tuple[str, ...]:
    """Package names of a Depends field; of ``a | b`` only ``a``.

    On a fresh machine apt satisfies an alternative with its first member,
    so that is the only one we may count on.
    """
    names = []
    for clause in field.split(","):
        if clause.strip():
            names.append(_package_name(clause.split("|", 1)[0]))
    return tuple(names)


@cache
def installed() -> Installed:
    output = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f=${db:Status-Status}\t${Package}\t${Priority}\t"
            "${Pre-Depends}\t${Depends}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    priority: dict[str, str] = {}
    depends: dict[str, tuple[str, ...]] = {}
    for line in output.splitlines():
        status, package, prio, pre, deps = line.split("\t")
        if status != "installed":
            continue
        priority[package] = prio
        depends[package] = parse_depends(pre) + parse_depends(deps)
    return Installed(priority, depends)


def parse_debian_packages(makefile_text: str) -> set[str]:
    """The words of ``DEBIAN_PACKAGES :=`` (and ``+=``) in a Makefile."""
    joined = makefile_text.replace("\\\n", " ")
    packages: set[str] = set()
    for match in re.finditer(
        r"^DEBIAN_PACKAGES\s*(?::=|\+=|=)(.*)$", joined, flags=re.MULTILINE
    ):
        packages.update(match.group(1).split())
    return packages


def make_debian_packages() -> set[str]:
    """DEBIAN_PACKAGES as make itself expands it."""
    value = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "-C",
            str(REPO_DIR),
            "--eval=print-debian-packages: ; @echo $(DEBIAN_PACKAGES)",
            "print-debian-packages",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(value.split())


def with_dependencies(packages: Iterable[str], known: Installed) -> set[str]:
    """``packages`` and everything their Depends pull in, transitively."""
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        todo.extend(known.depends.get(package, ()))
    return seen


def _dpkg_owner(path: str) -> str | None:
    result = subprocess.run(
        ["dpkg-query", "-S", path], capture_output=True, text=True, check=False
    )
    for line in result.stdout.splitlines():
        if line.startswith(("diversion by", "local diversion")):
            continue
        owners, _, _ = line.partition(": ")
        return _package_name(owners.split(",", 1)[0])
    return None


def owning_package(path: str) -> str | None:
    """The package that ships ``path``, seen through merged-/usr and links.

    Debian 12 merges /bin into /usr/bin, but dpkg still records many files
    under their old names (/sbin/ip), and some programs are links into
    another package's file (redis-server -> redis-check-rdb): the link's
    own package comes first.
    """
    real = os.path.realpath(path)
    candidates = [path, real]
    for candidate in (path, real):
        if candidate.startswith("/usr/"):
            candidates.append(candidate.removeprefix("/usr"))
        else:
            candidates.append("/usr" + candidate)
    for candidate in dict.fromkeys(candidates):
        owner = _dpkg_owner(candidate)
        if owner is not None:
            return owner
    return None


def program_path(program: str) -> str | None:
    return shutil.which(program, path=SYSTEM_PATH)


def uncovered(
    paths: Mapping[str, str | None], packages: Iterable[str], known: Installed
) -> dict[str, str]:
    """What in ``paths`` (name -> file) no listed or required package brings.

    Returns name -> reason, empty when everything is covered.
    """
    covered = with_dependencies(packages, known)
    problems: dict[str, str] = {}
    for name, path in paths.items():
        if path is None or not os.path.exists(path):
            problems[name] = "not on this machine: list its package and run make deps"
            continue
        owner = owning_package(path)
        if owner is None:
            problems[name] = f"{path} belongs to no Debian package"
        elif owner not in covered and known.priority.get(owner) != "required":
            problems[name] = f"{path} comes from {owner}: add it to DEBIAN_PACKAGES"
    return problems


def needed_paths() -> dict[str, str | None]:
    paths: dict[str, str | None] = {
        program: program_path(program)
        for program in sorted(ALLOWED_EXECUTABLES | set(OTHER_PROGRAMS))
    }
    paths.update({path: path for path in OTHER_FILES})
    return paths


@pytest.fixture(scope="module")
def listed() -> set[str]:
    return make_debian_packages()


def test_makefile_lists_a_package_for_every_program_the_portal_runs(listed):
    problems = uncovered(needed_paths(), listed, installed())
    assert not problems, "\n".join(f"{k}: {v}" for k, v in sorted(problems.items()))


def test_a_program_whose_package_is_not_listed_is_reported(listed):
    path = program_path("babeld")
    assert path is not None
    assert uncovered({"babeld": path}, listed, installed()) == {}
    assert "babeld" in uncovered({"babeld": path}, listed - {"babeld"}, installed())


def test_a_package_pulled_in_by_a_listed_one_counts():
    # /usr/bin/python3 is python3-minimal's, which python3-venv brings.
    path = program_path("python3")
    assert path is not None and owning_package(path) == "python3-minimal"
    assert uncovered({"python3": path}, {"python3-venv"}, installed()) == {}
    assert "python3" in uncovered({"python3": path}, set(), installed())


def test_a_required_package_needs_no_listing():
    # dash is Priority: required, present on every Debian system.
    assert uncovered({"sh": program_path("sh")}, set(), installed()) == {}


def test_missing_program_is_reported():
    problems = uncovered({"no-such-program": None}, {"babeld"}, installed())
    assert "not on this machine" in problems["no-such-program"]


def test_owner_found_through_merged_usr_and_links():
    # dpkg records ip as /bin/ip or /sbin/ip; we look it up as /usr/sbin/ip.
    assert owning_package("/usr/sbin/ip") == "iproute2"
    # /usr/bin/redis-server is redis-server's link to redis-tools' binary.
    assert owning_package("/usr/bin/redis-server") == "redis-server"


def test_parse_reads_continuation_lines_and_additions():
    text = "DEBIAN_PACKAGES := a b \\\n\tc \\\n\td\nOTHER := x\nDEBIAN_PACKAGES += e\n"
    assert parse_debian_packages(text) == {"a", "b", "c", "d", "e"}


def test_make_expands_the_same_list_the_makefile_spells(listed):
    text = (REPO_DIR / "Makefile").read_text()
    assert listed == parse_debian_packages(text)


def test_make_test_installs_the_list_before_running_pytest(listed):
    """``make test`` (what .ci/run runs) starts with the installer."""
    plan = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO_DIR), "test"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    installer = next(i for i, line in enumerate(plan) if "install-debian" in line)
    pytest_line = next(i for i, line in enumerate(plan) if "bin/pytest" in line)
    assert installer < pytest_line
    assert set(plan[installer].split()[1:]) == listed


def test_ci_runs_make_test():
    script = Path(REPO_DIR / ".ci" / "run").read_text()
    assert re.search(r"^\s*(exec\s+)?make test\s*$", script, flags=re.MULTILINE)
