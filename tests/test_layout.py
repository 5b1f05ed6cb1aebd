"""The three floors hold: kernels pure, the library free of tooling, no upward imports.

Read from the source (ast), nothing is run:
- kernels/: each kernel module imports only numpy, numba, math and its siblings
  (``runtime`` and ``__init__``, which set up the cache and the BLAS threads, excepted);
- nn/, data/, training/, analysis/, inference/: none of hydra, omegaconf, mlflow, dvc, and no stage module;
- no floor imports one above it; library modules only define names at import;
- files stay readable: none over 400 lines, the DVC stages about 60.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
LIBRARY = ("nn", "data", "training", "analysis", "inference")
TOOLING = ("hydra", "omegaconf", "mlflow", "dvc")
# Which project floors a floor may import (by the first part of the module path).
ALLOWED = {"kernels": {"kernels"}, "nn": {"kernels", "nn"}, "data": {"data"},
           "training": {"nn", "data", "training"},
           "analysis": {"nn", "data", "training", "analysis"},
           "inference": {"nn", "data", "training", "inference"}}
MAX_LINES = 400
STAGES = ("generate.py", "train.py", "evaluate.py")
STAGE_LINES = 75


def modules(folder):
    return sorted((PACKAGE / folder).rglob("*.py"))


def imports(path):
    """(absolute module name, level) of every import in the file; relative ones resolved."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                found.append(".".join(base + ((node.module,) if node.module else ())))
            else:
                found.append(node.module)
    return found


def project_floor(module):
    parts = module.split(".")
    return parts[1] if parts[0] == "pipeline" and len(parts) > 1 else None


@pytest.mark.parametrize("path", [p for p in modules("kernels")
                                  if p.stem not in ("__init__", "runtime")], ids=str)
def test_kernel_modules_import_only_numpy_numba_math(path):
    for module in imports(path):
        top = module.split(".")[0]
        assert top in ("numpy", "numba", "math") or module.startswith("pipeline.kernels"), \
            f"{path.name} imports {module}"


@pytest.mark.parametrize("folder", ["kernels", *LIBRARY])
def test_no_tooling_and_no_upward_imports(folder):
    for path in modules(folder):
        for module in imports(path):
            assert module.split(".")[0] not in TOOLING, f"{path} imports {module}"
            if module.startswith("pipeline"):
                floor = project_floor(module)
                assert floor in ALLOWED[folder], f"{path} imports {module} (a floor above)"


@pytest.mark.parametrize("folder", ["kernels", *LIBRARY])
def test_library_modules_only_define_names_at_import(folder):
    """Top level: imports, definitions, constants, a docstring. kernels/__init__ sets up
    the cache and the BLAS threads, explicitly, and is the one exception."""
    for path in modules(folder):
        if path.relative_to(PACKAGE).as_posix() == "kernels/__init__.py":
            continue
        for node in ast.parse(path.read_text()).body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            assert docstring or isinstance(node, (
                ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign,
                ast.AnnAssign)), f"{path}:{node.lineno} runs code at import"
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
                name = ast.unparse(node.value.func)
                assert name in ("dict", "tuple", "frozenset", "set", "list", "np.dtype",
                                "TypeVar") or name[0].isupper(), \
                    f"{path}:{node.lineno} calls {name} at import"


def test_files_stay_short():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"
    stages = {s: n for s in STAGES if (n := len((PACKAGE / s).read_text().splitlines())) >
              STAGE_LINES}
    assert not stages, f"stage modules over {STAGE_LINES} lines: {stages}"
