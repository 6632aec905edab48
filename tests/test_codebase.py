"""What a module imports, and the code fingerprint that reruns scoring when a metric changes."""

from globalrep import codebase
from globalrep.codebase import PACKAGE_DIR, code_fingerprint, package_files, third_party_imports


def test_package_files_follow_imports_transitively_and_lazily():
    files = {path.relative_to(PACKAGE_DIR).as_posix() for path in package_files(["globalrep.tasks.where_from"])}
    # Module level (countries, errors), inside a function (the figures), and what those import.
    assert {"tasks/where_from.py", "countries.py", "errors.py", "figures/maps.py", "figures/__init__.py"} <= files
    assert "tasks/md3_taboo.py" not in files and "engine/hf.py" not in files
    # Neither another package nor a name imported from a module is a module of ours.
    assert package_files(["numpy", "globalrep.errors.GlobalrepError"]) == []


def test_code_fingerprint_differs_per_task_and_follows_the_source(monkeypatch):
    where_from = code_fingerprint(["globalrep.tasks.where_from"])
    assert where_from == code_fingerprint(["globalrep.tasks.where_from"])
    assert where_from != code_fingerprint(["globalrep.tasks.belebele"])
    source = (PACKAGE_DIR / "tasks" / "where_from.py").read_bytes()
    real_read = codebase.Path.read_bytes
    monkeypatch.setattr(codebase.Path, "read_bytes",
                        lambda self: source + b"# edited\n" if self.name == "where_from.py" else real_read(self))
    assert code_fingerprint(["globalrep.tasks.where_from"]) != where_from


def test_third_party_imports_of_a_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import os\nfrom globalrep.tasks.where_from import prepare\n")
    found = third_party_imports([script])
    assert {"pandas", "shapefile", "matplotlib"} <= found
    assert not {"os", "globalrep", "torch"} & found
