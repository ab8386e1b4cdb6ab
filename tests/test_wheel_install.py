"""The wheel lane: the package works where users install it, not only in the checkout.

It builds the wheel and the sdist, installs the wheel into a fresh virtual environment in a temporary
folder outside the checkout (the README's "From the built wheel" lines, which its CI recipe uses), and from
there runs what a user runs: ``conform42 --version``, ``conform42 requirements``, ``conform42 run
--reference-engine sim`` (CONFORMANT, reports written), ``pytest --pyargs suite.conformance --target URL``
against a ``conform42 serve --engine sim`` it started, and a short ``conform42 load``. Every module of the
three packages is imported in the installed environment, where ``tests`` (the repository's) does not exist.
The install takes about a minute (pip's cache or the registry).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from suite.catalogue import load_catalogue
from suite.identity import specs_sha256
from suite.process import ServerSupervisor

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DEMO_KEYS = {
    "CONFORM42_KEY_FREE": "sk-42ai-demo-free-0000000000000001",
    "CONFORM42_KEY_PRO": "sk-42ai-demo-pro-0000000000000001",
    "CONFORM42_KEY_INTERNAL": "sk-42ai-demo-internal-0000000000000001",
}
# Imports every module of one package (``__main__`` modules would run); locust's gevent patching wants
# to come first in its process, so each package is imported in a process of its own.
IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys
package = sys.argv[1]
failed, count = [], 0
for info in pkgutil.walk_packages(importlib.import_module(package).__path__, prefix=package + "."):
    if info.name.endswith("__main__"):
        continue
    count += 1
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
assert importlib.util.find_spec("tests") is None, "the repository's tests package is importable"
print(count)
sys.exit("\\n".join(failed) if failed else 0)
"""


class Installed:
    """The fresh environment: its folder (also the working directory of every command) and binaries."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.bin = home / "venv" / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        # Nothing of the checkout may leak in: no PYTHONPATH, no virtual environment of ours.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **extra}

    def run(self, args: Sequence[str], timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.home,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _check(result: subprocess.CompletedProcess[str], what: str, code: int = 0) -> str:
    assert result.returncode == code, (
        f"{what}: exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as the README builds it (``pip wheel --no-deps``), and the sdist (``python -m build``,
    without network isolation: the dev extra has hatchling)."""
    out = tmp_path_factory.mktemp("dist")
    for command, what in (
        ([sys.executable, "-m", "pip", "wheel", "--no-deps", str(ROOT), "-w", str(out)], "pip wheel"),
        (
            [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--outdir", str(out), str(ROOT)],
            "build",
        ),
    ):
        _check(subprocess.run(command, capture_output=True, text=True, timeout=300, check=False), what)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    home = tmp_path_factory.mktemp("user")
    assert not home.resolve().is_relative_to(ROOT)
    wheel = next(dist.glob("conform42-*.whl"))
    venv = [sys.executable, "-m", "venv", str(home / "venv")]
    _check(subprocess.run(venv, capture_output=True, text=True, timeout=120, check=False), "python -m venv")
    where = Installed(home)
    _check(
        where.run([str(where.bin / "python"), "-m", "pip", "install", "--quiet", str(wheel)], timeout=900),
        "pip install the wheel",
    )
    yield where


def test_the_sdist_carries_the_specs_and_no_local_state(dist: Path) -> None:
    sdist = next(dist.glob("conform42-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "specs/requirements.yaml", "suite/cli.py", "loadtests/locustfile.py"} <= names
    local = sorted(n for n in names if n.split("/")[0] in {".hypothesis", ".cache", ".venv", "reports"})
    assert not local, f"local state in the sdist: {local[:5]}"


@pytest.mark.parametrize("package", ["loadtests", "suite", "reference_server"])
def test_every_module_imports_from_the_installed_wheel(installed: Installed, package: str) -> None:
    result = installed.run(
        [str(installed.bin / "python"), "-W", "ignore", "-c", IMPORT_ALL, package], timeout=300
    )
    assert int(_check(result, f"import every module of {package}").strip()) > 10


def test_version_and_requirements_come_from_the_installed_specs(installed: Installed) -> None:
    version = _check(installed.run(["conform42", "--version"], timeout=60), "conform42 --version")
    assert f"specs: sha256 {specs_sha256()} " in version
    listing = _check(
        installed.run(["conform42", "requirements", "--format", "json"], timeout=60), "conform42 requirements"
    )
    assert json.loads(listing)["count"] == len(load_catalogue())


def test_run_against_the_bundled_sim_server_is_conformant(installed: Installed) -> None:
    reports = installed.home / "reports"
    result = installed.run(
        ["conform42", "run", "--reference-engine", "sim", "--report", str(reports)], timeout=900
    )
    out = _check(result, "conform42 run --reference-engine sim")
    assert "CONFORMANT" in out and "NON-CONFORMANT" not in out
    assert {p.name for p in reports.iterdir()} >= {"junit.xml", "results.json", "report.html"}
    recorded = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert recorded["verdict"] == "CONFORMANT"
    assert recorded["documents"]["specs_sha256"] == specs_sha256()


@pytest.fixture(scope="module")
def served(installed: Installed) -> Iterator[str]:
    """``conform42 serve --engine sim`` of the installed package, on a free port."""
    server = ServerSupervisor(
        lambda port_file: [
            str(installed.bin / "conform42"),
            "serve",
            "--engine",
            "sim",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        name="the installed reference server",
        env=installed.env(),
        cwd=installed.home,
        startup_timeout=120,
    )
    with server:
        yield server.base_url


def test_the_pytest_plugin_judges_a_target_from_the_installed_package(
    installed: Installed, served: str
) -> None:
    result = installed.run(
        [
            str(installed.bin / "python"),
            "-m",
            "pytest",
            "--pyargs",
            "suite.conformance",
            "--target",
            served,
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        timeout=900,
        **DEMO_KEYS,
    )
    out = _check(result, "pytest --pyargs suite.conformance")
    assert "CONFORMANT" in out and "NON-CONFORMANT" not in out


def test_a_short_load_run_from_the_installed_package(installed: Installed, served: str) -> None:
    summary = installed.home / "load.json"
    result = installed.run(
        ["conform42", "load", "--host", served, "-t", "8s", "--summary-json", str(summary)], timeout=300
    )
    _check(result, "conform42 load")
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["verdict"] == "pass"
    assert data["totals"]["requests"] > 0 and data["totals"]["failures"] == 0
