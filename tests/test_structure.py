"""The layers' arrows point down, and every module is a room one person can hold.

Read from the source with ``ast`` (nothing is imported), so an import inside a function
counts as much as one at the top, and ``importlib.import_module("...")`` with a literal
name counts too. Arrows that must not exist:

- kiosk/services → the backend simulator (kiosk.backend_sim), except the runtime's demo
  wiring (``Runtime.from_config``) and ``health_cli.check_config`` (the embedded backend);
- kiosk/hardware → print_templates (drivers print bytes, templates render them);
- kiosk/services or kiosk/hardware → Kivy;
- kiosk/app.py → the demo (the demo drives the app, not the other way round);
- provisioning/init_config.py → provisioning/cli.py.

And every module under kiosk/, provisioning/ and print_templates/ opens with a docstring
and has at most 600 lines (the simulator's operation modules, item data as code, excepted).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiosk", "provisioning", "print_templates")
MAX_LINES = 600
LONG_ALLOWED = ("kiosk/backend_sim/operations/",)  # the simulator's operation modules

SIMULATOR = "kiosk.backend_sim"
DEMO = ("kiosk.demo", "kiosk.demo_residents")
# (file, enclosing function) where the services may start the embedded simulator
SIMULATOR_ALLOWED = {("kiosk/services/runtime.py", "Runtime.from_config"),
                     ("kiosk/services/health_cli.py", "check_config")}


@dataclass(frozen=True)
class Import:
    """One import in a file: the module it names, its line, and the function it sits in ('' at module level)."""

    file: str
    module: str
    line: int
    function: str

    def __str__(self) -> str:
        where = f" in {self.function}()" if self.function else ""
        return f"{self.file}:{self.line}{where} imports {self.module}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, level: int, module: str | None) -> str:
    """The absolute name of ``from <dots><module> import``."""
    if not level:
        return module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[:len(package) - level + 1]
    return ".".join(base + ([module] if module else []))


def imports_of(path: Path, source: str | None = None) -> list[Import]:
    """Every module ``path`` imports, wherever the import stands."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    rel = path.relative_to(ROOT).as_posix()
    found: list[Import] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, f"{function}.{child.name}" if function else child.name)
                continue
            if isinstance(child, ast.Import):
                found.extend(Import(rel, alias.name, child.lineno, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(path, child.level, child.module)
                found.append(Import(rel, base, child.lineno, function))
                # `from kiosk import demo` names the submodule
                found.extend(Import(rel, f"{base}.{alias.name}", child.lineno, function) for alias in child.names)
            elif (isinstance(child, ast.Call) and child.args and isinstance(child.args[0], ast.Constant)
                  and isinstance(child.args[0].value, str)
                  and ast.unparse(child.func) in ("importlib.import_module", "import_module", "__import__")):
                found.append(Import(rel, child.args[0].value, child.lineno, function))
            visit(child, function)

    visit(tree, "")
    return found


def _files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        target = ROOT / folder
        yield from sorted(target.rglob("*.py")) if target.is_dir() else [target]


def _names(imp: Import, *modules: str) -> bool:
    return any(imp.module == m or imp.module.startswith(m + ".") for m in modules)


def wrong_arrows(arrow: str) -> list[str]:
    """Every import line that runs the ``arrow`` the wrong way."""
    seen: dict[tuple[str, int], str] = {}
    for imp in _wrong_imports(arrow):
        seen.setdefault((imp.file, imp.line), str(imp))
    return list(seen.values())


def _wrong_imports(arrow: str) -> list[Import]:
    if arrow == "services -> backend simulator":
        return [i for p in _files("kiosk/services") for i in imports_of(p)
                if _names(i, SIMULATOR) and (i.file, i.function) not in SIMULATOR_ALLOWED]
    if arrow == "hardware -> print_templates":
        return [i for p in _files("kiosk/hardware") for i in imports_of(p) if _names(i, "print_templates")]
    if arrow == "services, hardware -> kivy":
        return [i for p in _files("kiosk/services", "kiosk/hardware") for i in imports_of(p)
                if _names(i, "kivy")]
    if arrow == "app -> demo":
        return [i for p in _files("kiosk/app.py") for i in imports_of(p) if _names(i, *DEMO)]
    if arrow == "provisioning init_config -> cli":
        return [i for p in _files("provisioning/init_config.py") for i in imports_of(p)
                if _names(i, "provisioning.cli")]
    raise AssertionError(arrow)


ARROWS = ("services -> backend simulator", "hardware -> print_templates", "services, hardware -> kivy",
          "app -> demo", "provisioning init_config -> cli")


@pytest.mark.parametrize("arrow", ARROWS)
def test_no_arrow_runs_the_wrong_way(arrow: str) -> None:
    assert wrong_arrows(arrow) == []


def test_the_reader_sees_imports_inside_functions_relative_and_by_name() -> None:
    # What the arrows rest on: the allowed simulator imports are found, inside their functions.
    allowed = {(i.file, i.function) for p in _files("kiosk/services") for i in imports_of(p) if _names(i, SIMULATOR)}
    assert allowed == SIMULATOR_ALLOWED
    fake = ROOT / "kiosk" / "hardware" / "simulators" / "fake.py"
    source = ("import kivy.app\n"
              "def f():\n    from ...demo import run_demo\n"
              "class C:\n    def g(self):\n        from .. import receipt\n"
              "        importlib.import_module('print_templates.receipts')\n")
    found = {(i.module, i.function) for i in imports_of(fake, source)}
    assert {("kivy.app", ""), ("kiosk.demo", "f"), ("kiosk.demo.run_demo", "f"), ("kiosk.hardware.receipt", "C.g"),
            ("print_templates.receipts", "C.g")} <= found


def _modules() -> list[Path]:
    return [p for p in _files(*PACKAGES) if "__pycache__" not in p.parts]


def test_every_module_opens_with_a_docstring() -> None:
    missing = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        first = tree.body[0] if tree.body else None
        docstring = ast.get_docstring(tree)
        if not (docstring and docstring.strip() and isinstance(first, ast.Expr)):
            missing.append(path.relative_to(ROOT).as_posix())
    assert missing == []


def test_no_module_is_over_600_lines() -> None:
    long = {}
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and not rel.startswith(LONG_ALLOWED):
            long[rel] = lines
    assert long == {}
