"""The single-file HTML report: every table and figure, and the config that made them.

Self-contained on purpose (figures inlined as data URIs, inline CSS, no scripts), so the one
file can be mailed or archived and still show everything offline.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from globalrep.atomic import write_text_atomic
from globalrep.models import ModelSpec, fingerprint
from globalrep.tables import read_table

CSS = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; }
pre { background: #f6f6f6; padding: 1rem; overflow-x: auto; }
"""


def build_report(
    out_path: str | Path,
    tables: dict[str, tuple[str | Path, str | Path]],
    figures: dict[str, Sequence[str | Path]],
    config: dict,
    versions: dict[str, str],
) -> None:
    """Write the report to ``out_path``: a header (models, chains, config hash, versions), one
    section per task (``tables[task] = (table_csv, deltas_csv)``, ``figures[task]`` = PNGs) and
    the config as YAML."""
    tasks = list(dict.fromkeys([*tables, *figures]))
    body = [
        "<h1>globalrep report</h1>",
        _header(config, versions),
        *(_task_section(task, tables.get(task), figures.get(task, ())) for task in tasks),
        "<h2>Configuration</h2>",
        "<details><summary>config (YAML)</summary><pre>"
        + _e(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        + "</pre></details>",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>globalrep report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    write_text_atomic(page, out_path)


def _header(config: dict, versions: dict[str, str]) -> str:
    models = [
        (name, entry.get("path", ""), entry.get("stage", ModelSpec.stage), entry.get("kind", ModelSpec.kind))
        for name, entry in config.get("models", {}).items()
    ]
    chains = [(name, " → ".join(members)) for name, members in config.get("chains", {}).items()]
    return "\n".join(
        [
            f"<p>Config hash: <code>{_e(fingerprint(config))}</code></p>",
            "<h2>Models</h2>",
            _html_table(["name", "path", "stage", "kind"], models),
            "<h2>Chains</h2>",
            _html_table(["chain", "models"], chains),
            "<h2>Package versions</h2>",
            _html_table(["package", "version"], sorted(versions.items())),
        ]
    )


def _task_section(task: str, csvs: tuple[str | Path, str | Path] | None, pngs: Iterable[str | Path]) -> str:
    parts = [f'<section id="{_e(task)}">', f"<h2>{_e(task)}</h2>"]
    for png in map(Path, pngs):
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(png.stem)}">'
            f"<figcaption>{_e(png.stem)}</figcaption></figure>"
        )
    if csvs is not None:
        table_csv, deltas_csv = map(read_table, csvs)
        parts += [
            "<h3>Per group (95% bootstrap CI over items)</h3>",
            _html_table(
                ["model", "group", "metric", "value", "95% CI", "n"],
                [
                    (r.model, r.group, r.metric, _num(r.value), _ci(r.ci_low, r.ci_high), _count(r.n))
                    for r in table_csv.itertuples(index=False)
                ],
            ),
            "<h3>Changes along chains (paired over items)</h3>",
            _html_table(
                ["chain", "from", "to", "group", "metric", "delta", "95% CI", "p"],
                [
                    (r.chain, r.from_model, r.to_model, r.group, r.metric, _num(r.delta), _ci(r.ci_low, r.ci_high), _num(r.p_value))
                    for r in deltas_csv.itertuples(index=False)
                ],
            ),
        ]
    parts.append("</section>")
    return "\n".join(parts)


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(_cell(value) for value in row) + "</tr>\n" for row in rows
    )
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


class _Number(str):
    """Formatted numeric text: right-aligned in tables."""


def _cell(value: object) -> str:
    css = ' class="num"' if isinstance(value, _Number) else ""
    return f"<td{css}>{_e(value)}</td>"


def _missing(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value: float) -> _Number:
    return _Number("–" if _missing(value) else f"{value:.3f}")


def _count(value: float) -> _Number:
    return _Number("–" if _missing(value) else str(int(value)))


def _ci(low: float, high: float) -> _Number:
    return _Number("–" if _missing(low) or _missing(high) else f"[{low:.3f}, {high:.3f}]")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
