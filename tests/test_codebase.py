"""What a module imports, and the code fingerprint that reruns scoring when a metric changes; the
package's layers point one way: no import cycle, no task imports another."""

import graphlib

from globalrep import codebase
from globalrep.codebase import (
    PACKAGE_DIR,
    code_fingerprint,
    imported_names,
    imports_by_scope,
    module_file,
    module_name,
    package_files,
    scoring_fingerprint,
    third_party_imports,
)


def test_package_files_follow_imports_transitively_and_lazily():
    files = {path.relative_to(PACKAGE_DIR).as_posix() for path in package_files(["globalrep.tasks.where_from"])}
    # Module level (countries, errors), inside a function (the figures), and what those import.
    assert {"tasks/where_from.py", "countries.py", "errors.py", "figures/maps.py", "figures/__init__.py"} <= files
    assert "tasks/md3_taboo.py" not in files and "engine/hf.py" not in files
    # Neither another package nor a name imported from a module is a module of ours.
    assert package_files(["numpy", "globalrep.errors.GlobalrepError"]) == []


def edit_source(monkeypatch, relative_path: str) -> None:
    """Fingerprints from now on read the file ``relative_path`` (under src/globalrep) as edited."""
    edited = PACKAGE_DIR / relative_path
    real_read = codebase.Path.read_bytes
    monkeypatch.setattr(
        codebase.Path, "read_bytes", lambda self: real_read(self) + b"# edited\n" if self == edited else real_read(self)
    )


def test_code_fingerprint_differs_per_task_and_follows_the_source(monkeypatch):
    where_from = code_fingerprint(["globalrep.tasks.where_from"])
    assert where_from == code_fingerprint(["globalrep.tasks.where_from"])
    assert where_from != code_fingerprint(["globalrep.tasks.belebele"])
    edit_source(monkeypatch, "tasks/where_from.py")
    assert code_fingerprint(["globalrep.tasks.where_from"]) != where_from


def test_a_tasks_scoring_fingerprint_covers_what_its_scoring_runs_only(monkeypatch):
    tasks = ("md3_taboo", "md3_taboo_transfer", "belebele")
    before = {task: scoring_fingerprint(f"globalrep.tasks.{task}") for task in tasks}
    edit_source(monkeypatch, "tasks/belebele.py")
    after = {task: scoring_fingerprint(f"globalrep.tasks.{task}") for task in tasks}
    assert after == {**before, "belebele": after["belebele"]} and after["belebele"] != before["belebele"]
    edit_source(monkeypatch, "md3.py")  # the MD3 game both MD3 tasks score
    assert all(scoring_fingerprint(f"globalrep.tasks.{task}") != before[task] for task in tasks[:2])


def test_editing_a_data_file_of_the_package_reruns_scoring(monkeypatch):
    before = scoring_fingerprint("globalrep.tasks.askreddit")
    edit_source(monkeypatch, "data/paper_correlation_countries.csv")
    assert scoring_fingerprint("globalrep.tasks.askreddit") != before
    before = scoring_fingerprint("globalrep.tasks.tydiqa_goldp")
    edit_source(monkeypatch, "data/cfmatch/lr.json.gz")  # in a folder of its own: CFMatch's classifier
    assert scoring_fingerprint("globalrep.tasks.tydiqa_goldp") != before


def test_no_task_module_imports_another():
    for path in sorted((PACKAGE_DIR / "tasks").glob("*.py")):
        if path.name in ("__init__.py", "base.py"):
            continue
        # The registry (globalrep.tasks itself) imports every task; tasks.base is the protocol.
        found = {module_file(name) for name in imported_names(path, module_name(path))} - {None}
        tasks = {p.relative_to(PACKAGE_DIR).as_posix() for p in found if p.parent == PACKAGE_DIR / "tasks"}
        assert tasks <= {"tasks/base.py"}, f"{path.name} imports {sorted(tasks)}: move what they share out of the tasks"


def test_no_import_cycle():
    """Imports that run when a module is imported (module level) form no cycle. Importing
    ``globalrep.a.b`` runs ``globalrep.a`` first, so that counts as an import of ``globalrep.a``
    too, unless the importer is inside it (then it has run already)."""
    graph = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        importer = module_name(path)
        modules = set()
        for name in imports_by_scope(path).get("", ()):
            parts = name.split(".")
            modules |= {
                module_name(found) for i in range(1, len(parts) + 1) if (found := module_file(".".join(parts[:i])))
            }
        graph[importer] = {m for m in modules if m != importer and not importer.startswith(m + ".")}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        # graphlib lists the cycle from imported to importer.
        raise AssertionError(f"import cycle: {' imports '.join(reversed(error.args[1]))}") from None


def test_third_party_imports_of_a_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import os\nfrom globalrep.tasks.where_from import prepare\n")
    found = third_party_imports([script])
    assert {"pandas", "shapefile", "matplotlib"} <= found
    assert not {"os", "globalrep", "torch"} & found
