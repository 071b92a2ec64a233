"""A fresh clone's first `make test` on each platform the README names: `pip install -r requirements-dev.txt`
finds a wheel for every pin it selects, the tests of a dev-only package it leaves out skip, saying why, and
a Python too old for the pins is refused in one line before anything is made."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYTHONS = ["3.11", "3.12", "3.13", "3.14"]
PLATFORMS = [("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64")]
# Pins that PyPI has wheels for on only some of those (`pip download --no-deps --only-binary=:all:
# --python-version X.Y --platform TAG PIN` for each), and whose sdists need more than a C compiler:
# awslambdaric autoconf, automake, libtool and cmake; atheris a Clang with libFuzzer. Every other pin
# has a wheel, or is pure Python, everywhere.
WHEELS_ONLY_WHERE = {
    "awslambdaric": lambda system, machine, python: system == "Linux",
    "atheris": lambda system, machine, python: system == "Linux" and machine == "x86_64" and python != "3.14",
}


def pins(path) -> list[Requirement]:
    """The requirements of a requirements file, following its `-r` includes."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += pins(path.parent / line[3:].strip())
        elif line:
            found.append(Requirement(line))
    return found


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("system, machine", PLATFORMS)
def test_requirements_dev_selects_a_pin_exactly_where_it_has_a_wheel(repo_root, system, machine, python):
    environment = {
        "platform_system": system,
        "platform_machine": machine,
        "sys_platform": system.lower(),
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    }
    for pin in pins(repo_root / "requirements-dev.txt"):
        selected = pin.marker is None or pin.marker.evaluate(environment)
        has_wheel = WHEELS_ONLY_WHERE.get(pin.name, lambda *_: True)(system, machine, python)
        # A pin selected without a wheel fails `pip install` and with it the whole first run; one left out
        # where it has a wheel (CI's Linux x86_64) would silently skip its tests there.
        assert selected == has_wheel, f"{pin} on {system} {machine}, Python {python}"


def run_without(modules: list[str], code: str, repo_root) -> subprocess.CompletedProcess:
    """``code`` run by this Python as if ``modules`` were not installed."""
    hide = "".join(f"sys.modules[{name!r}] = None; " for name in modules)
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {hide}{code}"], cwd=repo_root, capture_output=True, text=True, timeout=300
    )


def test_the_contract_and_fuzz_tests_skip_naming_the_missing_package(repo_root):
    # GIVEN a Mac's venv: no awslambdaric, no atheris
    run = run_without(
        ["awslambdaric", "atheris"],
        "import pytest; sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', "
        "'tests/contract/test_runtime_contract.py', 'tests/unit/test_fuzz_args.py']))",
        repo_root,
    )
    # THEN both modules skip rather than fail or error, and the summary says which package is missing and why
    assert run.stdout.splitlines()[-1].startswith("2 skipped in "), run.stdout[-3000:] + run.stderr[-3000:]
    assert "awslambdaric is missing: requirements-dev.txt installs it on Linux only" in run.stdout
    assert "atheris is missing: requirements-dev.txt installs it on Linux x86_64" in run.stdout


def test_make_fuzz_without_atheris_says_where_it_installs(repo_root):
    run = run_without(
        ["atheris"],
        "import runpy; sys.path.insert(0, 'scripts'); sys.argv = ['scripts/fuzz_decode.py', '--seconds', '1']; "
        "runpy.run_path('scripts/fuzz_decode.py', run_name='__main__')",
        repo_root,
    )
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "make fuzz needs atheris: pip installs it on Linux x86_64 with Python 3.11-3.13; "
        "elsewhere it builds only with a Clang that has libFuzzer"
    )


def python_older_than_3_11() -> str | None:
    """A real interpreter below 3.11 on this machine (on PATH, or one of pyenv's), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    candidates = [shutil.which(f"python3.{minor}") for minor in (10, 9, 8)]
    candidates += sorted(map(str, pyenv.glob("versions/3.*/bin/python")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info < (3, 11))"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def test_make_setup_with_a_python_below_3_11_stops_in_one_line_before_making_the_venv(repo_root, tmp_path):
    old_python = python_older_than_3_11()
    if old_python is None:
        pytest.skip("no Python below 3.11 on this machine (python3.10, python3.9, python3.8 or pyenv's)")
    # GIVEN the Makefile and its requirements in a fresh folder (not this checkout, whose .venv it would replace)
    clone = tmp_path / "my projects" / "bgremove"
    clone.mkdir(parents=True)
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(repo_root / name, clone / name)
    # WHEN `make setup` runs with that Python, as `make test` and `make demo` do first
    run = subprocess.run(["make", "setup", f"PYTHON={old_python}"], cwd=clone, capture_output=True, text=True, timeout=300)
    # THEN it stops at once, naming the version it needs, the one it found and what to run instead,
    # rather than making a venv and failing in pip on "No matching distribution found for onnxruntime"
    version = subprocess.run([old_python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.splitlines()[0] == (
        f"bgremove needs Python 3.11 or newer; {old_python} is {version.stdout.strip()}. "
        "Run make PYTHON=python3.12 (or another 3.11+)"
    )
    assert not (clone / ".venv").exists()
