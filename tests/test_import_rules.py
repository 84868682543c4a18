"""DESIGN.md's package rules, checked by parsing every import of the project's packages.

* `debate` imports neither `service` nor `trainers`.
* `trainers` may import `debate` and `service.store`, nothing else of `service`.
* `service.store` imports nothing of `trainers`, must not import FastAPI (directly or through another
  project module), and knows no job kind: it never compares `kind` with, or enqueues, a literal kind
  (every kind's payload and handler live in `trainers.jobs`).
* nothing outside `service.api` imports `service.api`.
* what the API needs of `trainers` to enqueue and describe jobs loads neither torch nor transformers.
"""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("debate", "service", "trainers", "migrations")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = _module_name(path, root)
            graph[module] = _imports(path, module)
    return graph


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for name in graph.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imported in graph.items():
        for name in sorted(imported):
            if _within(module, "debate") and (_within(name, "service") or _within(name, "trainers")):
                found.append(f"{module} imports {name}: debate must not import service or trainers")
            if _within(module, "trainers") and _within(name, "service") and not _within(name, "service.store"):
                found.append(f"{module} imports {name}: trainers may use only service.store of service")
            if _within(name, "service.api") and not _within(module, "service.api"):
                found.append(f"{module} imports {name}: nothing outside service.api imports it")
            if _within(module, "service.store") and _within(name, "trainers"):
                found.append(f"{module} imports {name}: service.store must not import trainers")
        if _within(module, "service.store"):
            for name in sorted(_reachable(graph, module)):
                if _within(name, "fastapi") or _within(name, "starlette"):
                    found.append(f"{module} reaches {name}: service.store must not import FastAPI")
    return found


def job_kind_literals(path: Path) -> list[str]:
    """`x.kind == "debate"` comparisons and `enqueue_job(session, "debate", ...)` calls in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "kind":
            found += [
                f"{path.name}:{node.lineno}"
                for other in node.comparators
                if isinstance(other, ast.Constant) and isinstance(other.value, str)
            ]
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "enqueue_job"
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
        ):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_project_follows_the_import_rules() -> None:
    assert violations(import_graph(REPO)) == []


def test_the_store_knows_no_job_kind(tmp_path: Path) -> None:
    assert [hit for path in sorted((REPO / "service" / "store").rglob("*.py")) for hit in job_kind_literals(path)] == []
    planted = tmp_path / "jobs.py"
    planted.write_text("def f(s, Job):\n    enqueue_job(s, 'strong', {})\n    return Job.kind == 'debate'\n")
    assert job_kind_literals(planted) == ["jobs.py:2", "jobs.py:3"]


def test_checker_catches_each_forbidden_import() -> None:
    graph = {
        "debate.x": {"service.store"},
        "trainers.y": {"service.settings", "service.store.jobs", "debate.z"},
        "service.cli": {"service.api.app"},
        "service.store.a": {"service.helpers"},
        "service.store.b": {"trainers.jobs.payloads"},
        "service.helpers": {"fastapi"},
    }
    found = "\n".join(violations(graph))
    assert "debate.x imports service.store" in found
    assert "trainers.y imports service.settings" in found and "service.store.jobs" not in found
    assert "service.cli imports service.api.app" in found
    assert "service.store.a reaches fastapi" in found
    assert "service.store.b imports trainers.jobs.payloads" in found


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    package = tmp_path / "debate" / "sub"
    package.mkdir(parents=True)
    (package / "mod.py").write_text("from ...service import api\nfrom . import sibling\n")
    assert _imports(package / "mod.py", "debate.sub.mod") >= {"service", "service.api", "debate.sub.sibling"}


def test_importing_the_store_loads_no_web_framework() -> None:
    assert _loaded_after("service.store, service.store.jobs", ("fastapi", "starlette")) == "[]"


def test_enqueueing_and_describing_jobs_loads_no_torch() -> None:
    assert (
        _loaded_after("trainers.jobs.payloads, trainers.pipeline, trainers.hyperparameters", ("torch", "transformers"))
        == "[]"
    )


def _loaded_after(modules: str, roots: tuple[str, ...]) -> str:
    """The modules under `roots` a fresh interpreter has loaded after importing `modules`."""
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()
