"""The package's layout: modules of a readable size, packages that use each other by public names only, and
a design document that lists every module."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "softmaxreg"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _top(path):
    """The top-level subpackage a module belongs to ("" for the package's own modules)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def _imports(path):
    """``(module, names)`` of each import of the package from ``path``, modules as dotted paths below it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = here[:-1]  # the package the module is in (its own, for an __init__)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "softmaxreg":
                module = node.module.split(".")[1:]
            else:
                continue
            yield module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "softmaxreg":
                    yield alias.name.split(".")[1:], []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_900_lines(path):
    assert len(path.read_text().splitlines()) <= 900


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_packages_use_each_other_by_public_names(path):
    own = _top(path)
    for module, names in _imports(path):
        if not module or module[0] == own:
            continue
        # Another subpackage: through its __init__ (itself may be private, as _native), by public names.
        assert len(module) == 1, f"{path.relative_to(PACKAGE)} imports {'.'.join(module)}, not its package's __init__"
        sub = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not sub, f"{path.relative_to(PACKAGE)} imports private names {sub} from {'.'.join(module)}"


def test_design_document_lists_every_module():
    design = (PACKAGE.parents[1] / "docs" / "design.md").read_text()
    missing = [str(p.relative_to(PACKAGE)) for p in MODULES
               if p.name not in ("__init__.py", "__main__.py")
               and not re.search(r"`([^`]*/)?" + re.escape(p.name) + "`", design)]
    assert not missing, f"docs/design.md does not list {missing}"
