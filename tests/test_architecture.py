"""The floors of ARCHITECTURE.md, held against the code: no app imports from an app above it.

Every import of every module of the product is read with `ast` (imports inside functions too, and
relative imports resolved), so a lazy `from tags.models import Tag` in a view counts like a top-level
one. A lower floor learns of a higher one by a signal or a registry, never by an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Ground floor first. Apps on one floor may import each other; none may import a higher floor.
FLOORS: list[tuple[str, ...]] = [
    ("core",),
    ("accounts",),
    ("mail",),
    ("events",),
    ("tags",),
    ("analysis",),
    ("rules",),
    ("newsletters", "digest"),
    ("legacy",),
    ("mailhelper",),
]
FLOOR_OF = {app: level for level, apps in enumerate(FLOORS) for app in apps}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, names: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; with `names`, `from pkg import x` adds pkg.x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if names:
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _product_files() -> list[Path]:
    return sorted(p for app in FLOOR_OF for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts)


def upward_imports() -> list[str]:
    problems = []
    for path in _product_files():
        app = path.relative_to(ROOT).parts[0]
        for line, module in _imported_modules(path):
            target = module.split(".")[0]
            if target in FLOOR_OF and FLOOR_OF[target] > FLOOR_OF[app]:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({app} is below {target})")
    return problems


def test_every_app_has_a_floor():
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")}
    assert apps == set(FLOOR_OF), "add the new app to FLOORS here and to ARCHITECTURE.md"


def test_no_import_runs_from_a_lower_floor_to_a_higher_one():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import():
    """The rule itself can fail: a lazy import of a higher floor inside a function is found."""
    fake = ROOT / "core" / "_architecture_probe.py"
    fake.write_text("def f():\n    from mail.models import Message\n    return Message\n")
    try:
        assert any("core/_architecture_probe.py:2 imports mail.models" in p for p in upward_imports())
    finally:
        fake.unlink()


@pytest.mark.parametrize("app", ["core"])
def test_the_ground_floor_imports_no_app(app):
    imported = {
        module.split(".")[0] for path in (ROOT / app).rglob("*.py") for _line, module in _imported_modules(path)
    }
    assert not imported & (set(FLOOR_OF) - {app})


def test_no_test_module_imports_another():
    """Shared test code lives in tests/plugins/ (real services) or an app's factories.py / conftest.py."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for line, module in _imported_modules(path):
            if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_"):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_legacy_is_imported_by_no_other_app():
    """legacy hooks in by signals and registries (legacy/receivers.py); removing it removes nothing else."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _product_files()
        if path.relative_to(ROOT).parts[0] != "legacy"
        for line, module in _imported_modules(path)
        if module.split(".")[0] == "legacy"
    ]
    assert offenders == []


#: Who may import a task module: tasks themselves, the signal receivers, post-analysis stages (they run in
#: the analysis task and hand big work on) and apps that connect them,
#: and the entry points (views, management commands). Services do not: they announce by a signal.
_MAY_IMPORT_TASKS = ("tasks.py", "receivers.py", "stages.py", "apps.py", "views.py", "views/", "management/")


def task_imports_in_services() -> list[str]:
    problems = []
    for path in _product_files():
        relative = path.relative_to(ROOT).as_posix()
        if any(relative.endswith(allowed) or f"/{allowed}" in relative for allowed in _MAY_IMPORT_TASKS):
            continue
        for line, name in _imported_modules(path, names=True):
            parts = name.split(".")
            if parts[0] in FLOOR_OF and "tasks" in parts[1:]:
                problems.append(f"{relative}:{line} imports {name}")
    return problems


def test_services_never_import_tasks():
    assert task_imports_in_services() == []


def test_the_check_sees_a_lazy_task_import_in_a_service():
    fake = ROOT / "mail" / "_architecture_probe.py"
    fake.write_text("def f():\n    from . import tasks\n    return tasks\n")
    try:
        assert "mail/_architecture_probe.py:2 imports mail.tasks" in task_imports_in_services()
    finally:
        fake.unlink()
