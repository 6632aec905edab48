"""The single-file HTML report: first the findings (the paper's questions answered per chain
step, :mod:`globalrep.findings`) beside their overview figure, then every table and figure, what
each task measures, what alignment changed along each chain, and the config that made them.

Self-contained on purpose (figures inlined as data URIs, inline CSS, no scripts, no links
outside the page), so the one file can be mailed or archived and still show everything offline.
"""

from __future__ import annotations

import base64
import html
import inspect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from globalrep.atomic import write_text_atomic
from globalrep.digests import fingerprint
from globalrep.errors import GlobalrepError
from globalrep.findings import QUESTION_LABELS, QUESTIONS, sentences
from globalrep.intermediates import read_table_output
from globalrep.models import ModelSpec
from globalrep.tasks import get_task
from globalrep.tasks.base import AXES

# The header always names these, "not installed" when missing, so a reader sees what is absent.
HEADER_PACKAGES = ("globalrep", "torch", "transformers")
SIGNIFICANCE = 0.05  # on q: p-values corrected within each family (globalrep.tables.FAMILY_COLUMNS)
CORRECTIONS = {  # config key stats.correction: how the report names it
    "bh": "Benjamini–Hochberg (false discovery rate)",
    "holm": "Holm (family-wise error rate)",
    "none": "no correction (q = p)",
}
TOP_CHANGES = 3  # per chain, task and metric: the largest significant gains, and as many drops
COLLAPSE_ROWS = 30  # longer tables start folded
MISSING_FLAG = 0.01  # a model missing more than this share of a task's answers is flagged with the findings
COLUMN_LABELS = {"from_model": "from", "to_model": "to", "group_name": "group name", "p_value": "p", "q_value": "q"}

CSS = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
section.axis { border-top: 3px solid #444; margin-top: 3rem; }
section.task { border-top: 1px solid #ccc; margin-top: 2rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; }
figcaption { font-size: 0.9rem; color: #555; }
.note { background: #fff6d5; padding: 0.5rem 0.8rem; border-left: 4px solid #e0b000; }
pre { background: #f6f6f6; padding: 1rem; overflow-x: auto; }
h1 { margin-bottom: 0.3rem; }
section.findings { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0 1.5rem; }
section.findings > h2, section.findings > .lead, section.findings > details { grid-column: 1 / -1; }
section.findings h2 { margin: 0.3rem 0; }
section.findings h3 { font-size: 1rem; margin: 0.6rem 0 0.2rem; }
section.findings ul { margin: 0; padding-left: 1.1rem; font-size: 0.9rem; }
section.findings .lead { margin: 0 0 0.3rem; font-size: 0.9rem; }
section.findings figure { margin: 0; }
section.findings li a { color: inherit; text-decoration-color: #8aa4d6; }
"""


@dataclass(frozen=True)
class TaskOutputs:
    """What the report shows of one task."""

    table: Path  # results/tables/{task}.csv
    deltas: Path  # results/tables/{task}_deltas.csv
    figures: Sequence[Path] = ()  # PNGs, shown in this order
    extra_tables: Mapping[str, Path] = field(default_factory=dict)  # {name: {task}_{name}.csv}
    models: Sequence[str] = ()  # the models it evaluated; none for a model-free task
    note: str = ""  # what it could not evaluate, if anything


@dataclass(frozen=True)
class FindingsOutputs:
    """What the report opens with."""

    table: Path  # results/tables/findings.csv
    figure: Path | None = None  # the overview PNG
    missing: Mapping[str, Mapping[str, tuple[int, int]]] = field(
        default_factory=dict
    )  # {task: {model: (missing, total)}}


def build_report(
    out_path: str | Path,
    tasks: Mapping[str, TaskOutputs],
    config: dict,
    versions: Mapping[str, str],
    findings: FindingsOutputs | None = None,
) -> None:
    """Write the report to ``out_path``: the findings (one sentence per question and chain step,
    the overview figure, models missing answers), then a header (models, chains, config hash,
    versions), a table of contents, one section per axis with its tasks (method, note, models,
    figures, tables) and what alignment changed per chain, then the config as YAML."""
    axes = _tasks_by_axis(tasks)
    body = [
        "<h1>globalrep report</h1>",
        *([_findings_section(findings, tasks)] if findings else []),
        _header(config, versions),
        _contents(axes, findings is not None),
        *(_axis_section(axis, {task: tasks[task] for task in names}, config) for axis, names in axes.items()),
        '<h2 id="configuration">Configuration</h2>',
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


def _tasks_by_axis(tasks: Iterable[str]) -> dict[str, list[str]]:
    """{axis: its tasks in the given order}, axes in report order, only those with tasks."""
    axes: dict[str, list[str]] = {axis: [] for axis in AXES}
    for task in tasks:
        axis = get_task(task).axis
        if axis not in AXES:
            raise GlobalrepError(f"task {task!r} has AXIS {axis!r}; known axes: {', '.join(AXES)}")
        axes[axis].append(task)
    return {axis: names for axis, names in axes.items() if names}


def _findings_section(findings: FindingsOutputs, tasks: Mapping[str, TaskOutputs]) -> str:
    """The first screen: per chain step, one sentence per question linking to its evidence; the
    overview figure beside them; models missing answers flagged; all rows folded below."""
    table = read_table_output(findings.table)
    said = sentences(table, list(tasks))
    questions = " ".join(
        f"<strong>{_e(QUESTION_LABELS[q])}</strong>: {_e(asked)}" for q, (_, asked) in QUESTIONS.items()
    )
    parts = [
        '<section class="findings" id="findings">',
        "<h2>Findings: what each alignment step did</h2>",
        f'<p class="lead">{questions} Each change is <em>to − from</em> with its 95% bootstrap CI and q (p '
        f"corrected within its family); significant when q &lt; {SIGNIFICANCE}. A gap is the favoured group's "
        "lead (US English, SAE, English, the US). Every row: <code>results/tables/findings.csv</code>; "
        "definitions: <code>docs/statistics.md</code>.</p>",
        '<div class="sentences">',
        *_missing_flags(findings.missing),
    ]
    if not said:
        parts.append("<p>No chain step has a finding in this run (no task compared models along a chain).</p>")
    for step in dict.fromkeys(sentence.step for sentence in said):
        items = [sentence for sentence in said if sentence.step == step]
        parts += [f"<h3>{_e(step)}</h3>", "<ul>", *(_sentence_item(s, tasks) for s in items), "</ul>"]
    parts.append("</div>")
    if findings.figure is not None:
        parts.append(
            _figure_html(Path(findings.figure), "findings overview", "Chain steps × findings; * and frame: q < 0.05")
        )
    parts += [
        f"<details><summary>findings.csv ({len(table)} rows)</summary>",
        _frame_table(table),
        "</details>",
        "</section>",
    ]
    return "\n".join(parts)


def _sentence_item(sentence, tasks: Mapping[str, TaskOutputs]) -> str:
    clauses = "; ".join(
        f'<a href="#task-{_e(clause.task)}">{_e(clause.text)}</a>' if clause.task in tasks else _e(clause.text)
        for clause in sentence.clauses
    )
    return f"<li><strong>{_e(QUESTION_LABELS[sentence.question])}</strong>: {clauses}.</li>"


def _missing_flags(missing: Mapping[str, Mapping[str, tuple[int, int]]]) -> list[str]:
    """A note naming each model that lacks more than :data:`MISSING_FLAG` of a task's answers."""
    flagged = [
        f"{model}: {n_missing} of {total} {task} answers ({n_missing / total:.1%})"
        for task, counts in missing.items()
        for model, (n_missing, total) in counts.items()
        if total and n_missing / total > MISSING_FLAG
    ]
    if not flagged:
        return []
    return [
        f'<p class="note"><strong>Missing answers</strong> (over {MISSING_FLAG:.0%}, scored as not correct): '
        f"{_e('; '.join(flagged))}.</p>"
    ]


def _figure_html(png: Path, alt: str, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _header(config: dict, versions: Mapping[str, str]) -> str:
    models = [
        (name, entry.get("path", ""), entry.get("stage", ModelSpec.stage), entry.get("kind", ModelSpec.kind))
        for name, entry in config.get("models", {}).items()
    ]
    packages = {**dict.fromkeys(HEADER_PACKAGES, "not installed"), **versions}
    return "\n".join(
        [
            f"<p>Config hash: <code>{_e(fingerprint(config))}</code></p>",
            "<h2>Models</h2>",
            _html_table(["name", "path", "stage", "kind"], models),
            "<h2>Chains</h2>",
            _html_table(
                ["chain", "models"],
                [(name, _chain_text(members)) for name, members in config.get("chains", {}).items()],
            ),
            "<h2>Package versions</h2>",
            _html_table(["package", "version"], sorted(packages.items())),
        ]
    )


def _contents(axes: Mapping[str, Sequence[str]], with_findings: bool = False) -> str:
    items = [
        f'<li><a href="#axis-{_e(axis)}">{_e(AXES[axis][0])}</a><ul>'
        + "".join(f'<li><a href="#task-{_e(task)}">{_e(task)}</a></li>' for task in tasks)
        + f'<li><a href="#changes-{_e(axis)}">What alignment changed, per chain</a></li></ul></li>'
        for axis, tasks in axes.items()
    ]
    items.append('<li><a href="#configuration">Configuration</a></li>')
    if with_findings:
        items.insert(0, '<li><a href="#findings">Findings</a></li>')
    return "<h2>Contents</h2>\n<ul>" + "".join(items) + "</ul>"


def _axis_section(axis: str, tasks: Mapping[str, TaskOutputs], config: dict) -> str:
    title, question = AXES[axis]
    loaded = {
        task: (read_table_output(outputs.table), read_table_output(outputs.deltas)) for task, outputs in tasks.items()
    }
    return "\n".join(
        [
            f'<section class="axis" id="axis-{_e(axis)}">',
            f"<h2>{_e(title)}</h2>",
            f"<p>{_e(question)}</p>",
            *(_task_section(task, outputs, *loaded[task]) for task, outputs in tasks.items()),
            _changes_section(axis, loaded, config.get("chains", {}), config.get("stats", {}).get("correction", "bh")),
            "</section>",
        ]
    )


def _task_section(task: str, outputs: TaskOutputs, table: pd.DataFrame, deltas: pd.DataFrame) -> str:
    parts = [f'<section class="task" id="task-{_e(task)}">', f"<h3>{_e(task)}</h3>", *_method_paragraphs(task)]
    if outputs.note:
        parts.append(f'<p class="note"><strong>Note:</strong> {_e(outputs.note)}</p>')
    if outputs.models:
        models = ", ".join(map(_e, outputs.models))
    else:  # a model task none of whose models could answer it says why in its note
        models = "none" if get_task(task).runs_models else "none (this task runs no models)"
    parts.append(f"<p>Models evaluated: {models}.</p>")
    for png in map(Path, outputs.figures):
        parts.append(_figure_html(png, f"{task}: {png.stem}", f"{task}: {png.stem}"))
    parts += ["<h4>Per group (95% bootstrap CI over items)</h4>", _frame_table(table)]
    parts.append("<h4>Changes along chains (paired over items)</h4>")
    parts.append(_frame_table(deltas) if len(deltas) else "<p>No chain comparisons for this task.</p>")
    summaries = get_task(task).extra_table_summaries
    for name, path in outputs.extra_tables.items():
        extra = read_table_output(path)
        parts.append(f"<h4>{_e(name)} <small>({_e(task)}_{_e(name)}.csv)</small></h4>")
        if name in summaries:
            parts.append(f"<p>{_e(summaries[name](extra))}</p>")
        parts.append(_frame_table(extra))
    parts.append("</section>")
    return "\n".join(parts)


def _method_paragraphs(task: str) -> list[str]:
    """The task module's docstring, one <p> per paragraph, ``code`` set as code."""
    doc = inspect.cleandoc(get_task(task).description)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc) if p.strip()]
    return [f"<p>{_code_markup(_e(p))}</p>" for p in paragraphs]


def _code_markup(escaped: str) -> str:
    """``x`` and Sphinx roles such as :mod:`x` as <code>x</code> (on already escaped text)."""
    escaped = re.sub(r"``(.+?)``", r"<code>\1</code>", escaped)
    return re.sub(r":\w+:`~?(.+?)`", r"<code>\1</code>", escaped)


def _changes_section(
    axis: str, loaded: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], chains: Mapping[str, list], correction: str
) -> str:
    parts = [
        f'<h3 id="changes-{_e(axis)}">What alignment changed, per chain</h3>',
        (
            "<p>Each comparison of consecutive models tests every group of a task, so its p-values "
            "are corrected together: a <em>family</em> is one step (from → to) and one metric across "
            "the task's groups, and q is its p-values corrected within the family by "
            f"{_e(CORRECTIONS[correction])} (config key <code>stats.correction</code>). A change is "
            f"significant when q &lt; {SIGNIFICANCE}. Groups without a p-value (no paired items) are "
            "left out of their family. Per chain and task, each family's size and how many of its "
            f"groups pass raw p &lt; {SIGNIFICANCE} against q &lt; {SIGNIFICANCE}; then per metric the "
            f"largest significant gains and drops (at most {TOP_CHANGES} of each). Gain and drop refer "
            "to the metric's value; for a metric where lower is better (a rank, a negative "
            "log-likelihood) a gain is a loss.</p>"
        ),
    ]
    compared = False
    for chain, members in chains.items():
        per_task = [
            _task_changes(task, table, deltas[deltas["chain"] == chain])
            for task, (table, deltas) in loaded.items()
            if (deltas["chain"] == chain).any()
        ]
        if per_task:
            compared = True
            parts += [f"<h4>{_e(chain)}: {_e(_chain_text(members))}</h4>", *per_task]
    if not compared:
        parts.append("<p>No chain comparisons in this section.</p>")
    return "\n".join(parts)


def _task_changes(task: str, table: pd.DataFrame, deltas: pd.DataFrame) -> str:
    """One task's significant changes along one chain: per family its size and how many groups
    pass p and q, then per metric (their scales differ) the largest gains and drops."""
    significant = deltas[deltas["q_value"] < SIGNIFICANCE]
    raw = int((deltas["p_value"] < SIGNIFICANCE).sum())
    lead = f"<p><strong>{_e(task)}</strong>: "
    if significant.empty:
        lead += f"no significant change among {_comparisons(len(deltas))} (q &lt; {SIGNIFICANCE}; {raw} pass raw p)."
    else:
        unchanged = [metric for metric in deltas["metric"].unique() if metric not in set(significant["metric"])]
        lead += f"{len(significant)} of {_comparisons(len(deltas))} changed significantly (q &lt; {SIGNIFICANCE}; {raw} pass raw p)"
        lead += f"; no significant change in {_e(', '.join(map(str, unchanged)))}." if unchanged else "."
    parts = [lead + "</p>", _family_counts(deltas)]
    if significant.empty:
        return "\n".join(parts)
    names = _group_names(table)
    rows = []
    for metric, changes in significant.groupby("metric", sort=False):
        gains = changes[changes["delta"] > 0].nlargest(TOP_CHANGES, "delta")
        drops = changes[changes["delta"] < 0].nsmallest(TOP_CHANGES, "delta")
        rows += [
            (
                metric,
                kind,
                f"{r.from_model} → {r.to_model}",
                f"{r.group} ({names[r.group]})" if r.group in names else r.group,
                _Number(f"{r.delta:+.3f}"),
                _ci(r.ci_low, r.ci_high),
                _p(r.p_value),
                _p(r.q_value),
            )
            for kind, chosen in (("gain", gains), ("drop", drops))
            for r in chosen.itertuples(index=False)
        ]
    parts.append(_html_table(["metric", "change", "models", "group", "delta", "95% CI", "p", "q"], rows))
    return "\n".join(parts)


def _family_counts(deltas: pd.DataFrame) -> str:
    """Per family (step and metric): groups tested, groups left out for want of a p-value, and
    how many pass raw p and corrected q."""
    rows = [
        (
            f"{from_model} → {to_model}",
            metric,
            _count(family["p_value"].notna().sum()),
            _count(family["p_value"].isna().sum()),
            _count((family["p_value"] < SIGNIFICANCE).sum()),
            _count((family["q_value"] < SIGNIFICANCE).sum()),
        )
        for (from_model, to_model, metric), family in deltas.groupby(["from_model", "to_model", "metric"], sort=False)
    ]
    headers = [
        "models",
        "metric",
        "family size (groups tested)",
        "left out (no p)",
        f"p < {SIGNIFICANCE}",
        f"q < {SIGNIFICANCE}",
    ]
    return _html_table(headers, rows)


def _comparisons(n: int) -> str:
    return f"{n} comparison" + ("" if n == 1 else "s")


def _group_names(table: pd.DataFrame) -> dict:
    """{group: readable name} from a table's ``group_name`` column, if it has one."""
    if "group_name" not in table:
        return {}
    named = table.dropna(subset=["group_name"])
    return dict(zip(named["group"], named["group_name"]))


def _frame_table(frame: pd.DataFrame) -> str:
    """Any table: numbers formatted, a ``ci_low``/``ci_high`` pair shown as one "95% CI" column,
    folded into <details> when long."""
    has_ci = {"ci_low", "ci_high"} <= set(frame.columns)
    columns = [c for c in frame.columns if c != "ci_high"] if has_ci else list(frame.columns)
    headers = ["95% CI" if c == "ci_low" and has_ci else COLUMN_LABELS.get(c, c) for c in columns]
    formats = {c: _p if c in ("p_value", "q_value") else _column_format(frame[c]) for c in columns}
    rows = (
        [_ci(row["ci_low"], row["ci_high"]) if c == "ci_low" and has_ci else formats[c](row[c]) for c in columns]
        for row in frame.to_dict("records")
    )
    table = _html_table(headers, rows)
    if len(frame) > COLLAPSE_ROWS:
        return f"<details><summary>{len(frame)} rows</summary>\n{table}\n</details>"
    return table


def _column_format(column: pd.Series):
    if pd.api.types.is_bool_dtype(column):
        return str
    if pd.api.types.is_integer_dtype(column):
        return _count
    if pd.api.types.is_float_dtype(column):
        return _num
    return lambda value: "–" if _missing(value) else str(value)


def _chain_text(members: Sequence[str]) -> str:
    return " → ".join(members)


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>\n" for row in rows)
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


def _p(value: float) -> _Number:
    """A p- or q-value: three decimals, or two significant digits below 0.001 (a correction
    over 100+ groups turns on values that small)."""
    return _Number("–" if _missing(value) else f"{value:.3f}" if value >= 0.001 else f"{value:.1e}")


def _count(value: float) -> _Number:
    return _Number("–" if _missing(value) else str(int(value)))


def _ci(low: float, high: float) -> _Number:
    return _Number("–" if _missing(low) or _missing(high) else f"[{low:.3f}, {high:.3f}]")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
