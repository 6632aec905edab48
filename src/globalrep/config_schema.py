"""The config's JSON schema, assembled from the workflow's top-level schema and every task's block.

The workflow's ``workflow/schemas/config.schema.yaml``, whose path the caller gives (the package
reads no file of the workflow's on its own), holds the top level (models, chains, engine, ...); each
task's options are described next to the task, in ``globalrep/tasks/{task}.schema.yaml``
(see :func:`globalrep.tasks.base.load_options_schema`), and each backend's model options with the
backend (:class:`globalrep.engine.backends.BackendInfo`). The workflow validates the config
against the assembled schema, so adding a task or a backend needs no edit of the top-level file.
The enums that name what the code knows (backends, the tasks that read published outputs,
Multi-VALUE's dialects) are empty in the top-level file and filled in here from the code's lists.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from pathlib import Path

import yaml

from globalrep.errors import GlobalrepError


def assemble(top_level: str | os.PathLike) -> dict:
    """The whole config schema: the top level (the file ``top_level``), with ``tasks.<name>`` of
    every registered task referring to that task's block under ``$defs``, a model's ``backend``
    one of the known backends, whose ``options`` follow that backend's block, ``published`` keyed
    by the tasks that can read published outputs, and ``dialects`` Multi-VALUE's dialect codes.
    Each of these lists is the code's own, so the schema cannot drift from it."""
    from globalrep.engine.backends import DEFAULT_BACKEND, backend_infos
    from globalrep.multivalue_adapter import DIALECTS
    from globalrep.tasks import TASKS

    schema = copy.deepcopy(yaml.safe_load(Path(top_level).read_text(encoding="utf-8")))
    tasks = schema["properties"]["tasks"]
    tasks["properties"] = {name: {"$ref": f"#/$defs/{name}"} for name in TASKS}
    for name, task in TASKS.items():
        if name in schema["$defs"]:
            raise GlobalrepError(f"{top_level}: $defs.{name} clashes with the options block of task {name!r}")
        schema["$defs"][name] = copy.deepcopy(dict(task.options_schema))
    schema["properties"]["dialects"]["items"]["enum"] = list(DIALECTS)
    model = schema["$defs"]["model"]
    model["properties"]["published"]["propertyNames"]["enum"] = [
        name for name, task in TASKS.items() if task.read_published
    ]
    infos = backend_infos()
    model["properties"]["backend"]["enum"] = sorted(infos)
    model["allOf"] = []
    for name, info in infos.items():
        schema["$defs"][f"backend-options-{name}"] = copy.deepcopy(dict(info.options_schema))
        chosen = {"properties": {"backend": {"const": name}}, "required": ["backend"]}
        if name == DEFAULT_BACKEND:
            chosen = {"anyOf": [chosen, {"not": {"required": ["backend"]}}]}
        model["allOf"].append(
            {"if": chosen, "then": {"properties": {"options": {"$ref": f"#/$defs/backend-options-{name}"}}}}
        )
    return schema


def assembled_file(top_level: str | os.PathLike) -> str:
    """The assembled schema written to a file (named by its content, in the temporary folder),
    for ``snakemake.utils.validate``, which reads schemas from files."""
    text = json.dumps(assemble(top_level), indent=1, sort_keys=True)
    path = (
        Path(tempfile.gettempdir()) / f"globalrep-config-schema-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    )
    if not path.exists():
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        staging.write_text(text, encoding="utf-8")
        staging.replace(path)
    return str(path)
