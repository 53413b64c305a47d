"""The package's layout: arrows run one way (no import circle), no module imports another inside
a function, and the runtime room imports nothing of the package."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hydramix_core"


def _package_imports(tree: ast.AST, *, nested: bool) -> list[tuple[str, int]]:
    """(module, line) of each import of a package module, at module level or (nested) inside a function."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and inside == nested:
                if child.level == 1:
                    names = [child.module] if child.module else [alias.name for alias in child.names]
                    found.extend((name, child.lineno) for name in names)
                elif (child.module or "").startswith("hydramix_core"):
                    found.append((child.module.removeprefix("hydramix_core").lstrip(".") or "__init__", child.lineno))
            elif isinstance(child, ast.Import) and inside == nested:
                found.extend((a.name.removeprefix("hydramix_core."), child.lineno) for a in child.names
                             if a.name.startswith("hydramix_core"))
            visit(child, inside)

    visit(tree, False)
    return found


def _modules() -> dict[str, ast.AST]:
    return {path.stem: ast.parse(path.read_text()) for path in PACKAGE.glob("*.py")}


def test_no_module_imports_another_inside_a_function():
    nested = {name: _package_imports(tree, nested=True) for name, tree in _modules().items()}
    assert {name: found for name, found in nested.items() if found} == {}


def test_the_imports_between_modules_form_no_circle():
    graph = {name: {module for nested in (False, True) for module, _ in _package_imports(tree, nested=nested)}
             - {"__init__"} for name, tree in _modules().items() if name != "__init__"}  # deferred imports count too
    done, path = set(), []

    def visit(name):
        assert name not in path, f"import circle: {' -> '.join(path[path.index(name):] + [name])}"
        if name in done:
            return
        path.append(name)
        for module in sorted(graph.get(name, ())):
            visit(module)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert graph["runtime"] == set()  # the machine's room stands on nothing of the package
    assert "train_generator" not in graph["augment"] | graph["generator_files"]  # loading needs no trainer


def test_the_package_exports_hide_no_module():
    """A name exported at the top level must not be a module's name: ``import hydramix_core.x as m``
    would then bind the exported object instead of the module."""
    import hydramix_core

    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules.isdisjoint(hydramix_core.__all__)
    assert all(hasattr(hydramix_core, name) for name in hydramix_core.__all__)
