"""The tree shows the architecture: pure libraries stay pure; services do not queue other apps' tasks."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_deidentification_library_loads_neither_django_nor_celery():
    loaded = _modules_loaded_by("import clinic_ai.deid, clinic_ai.deid.process, clinic_ai.deid.ocr")
    assert "pydicom" in loaded  # the import really ran
    leaked = sorted(m for m in loaded if m.split(".")[0] in {"django", "celery", "kombu", "redis"})
    assert not leaked
    assert not any(m.startswith(("clinic_ai.deidentification", "clinic_ai.studies")) for m in loaded)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, imported inside a function) for every import in a file."""
    found = []

    def visit(node, nested):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module:
                found.append((child.module, inner))
                found.extend((f"{child.module}.{a.name}", inner) for a in child.names)
            elif isinstance(child, ast.Import):
                found.extend((a.name, inner) for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def test_no_service_imports_tasks_and_no_app_imports_inside_functions_to_dodge_a_circle():
    for path in sorted((REPO / "clinic_ai").glob("*/services.py")):
        for module, nested in _imports(path):
            assert not module.endswith(".tasks") and ".tasks." not in module, (path, module)
            assert not (nested and module.startswith("clinic_ai.")), (path, module)
