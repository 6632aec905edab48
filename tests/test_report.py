import base64
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from globalrep import figure_manifest, stages
from globalrep.atomic import write_csv_atomic
from globalrep.digests import fingerprint
from globalrep.errors import GlobalrepError
from globalrep.figures.chains import plot_chain_groups
from globalrep.report import TaskOutputs, build_report
from globalrep.tables import DELTA_COLUMNS, GAP_COLUMNS, GROUP_COLUMNS, deltas_table, group_table

EVIL = "<b>evil</b> & co"
CHAINS = {"demo": ["demo-base", EVIL]}
CONFIG = {
    "models": {
        "demo-base": {"path": "results/demo/models/base", "stage": "base", "kind": "lm"},
        EVIL: {"path": "org/evil-model", "stage": "pt"},
    },
    "chains": CHAINS,
    "tasks": {"global_opinions": {"source": "data/demo/global_opinions.csv", "shards": 2}},
}
STAGES = {"demo-base": "base", EVIL: "pt"}
VERSIONS = {"globalrep": "0.1.0", "torch": "2.13.0", "transformers": "5.24.0"}
LANGUAGE_CHAINS = {"demo": ["demo-base", "demo-sft", "demo-pt"], "short": ["demo-base", "demo-pt"]}
LANGUAGE_CONFIG = {"models": {}, "chains": LANGUAGE_CHAINS}


@pytest.fixture
def outputs(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        (model, f"q{i}", country, "similarity", rng.uniform(0.5, 0.8))
        for model in CHAINS["demo"]
        for country in ("United States", "China", "Jordan")
        for i in range(12)
    ]
    scores = pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])
    table, deltas = group_table(scores), deltas_table(scores, CHAINS)
    table_csv, deltas_csv = tmp_path / "global_opinions.csv", tmp_path / "global_opinions_deltas.csv"
    write_csv_atomic(table, table_csv)
    write_csv_atomic(deltas, deltas_csv)
    figures = plot_chain_groups(table, CHAINS, "similarity", tmp_path / "fig" / "chains", "Similarity", STAGES)
    return table, deltas, (table_csv, deltas_csv), figures


def write_tables(directory, task, table_rows=(), deltas_rows=(), columns=GROUP_COLUMNS):
    """A task's two tables as CSVs (empty by default); returns TaskOutputs for them."""
    table_csv, deltas_csv = directory / f"{task}.csv", directory / f"{task}_deltas.csv"
    write_csv_atomic(pd.DataFrame(list(table_rows), columns=columns), table_csv)
    write_csv_atomic(pd.DataFrame(list(deltas_rows), columns=DELTA_COLUMNS), deltas_csv)
    return TaskOutputs(table=table_csv, deltas=deltas_csv)


def section(page, element_id):
    """The HTML of the element with this id, up to the next element of the same kind's start
    (or the page's end)."""
    start = page.index(f'id="{element_id}"')
    following = re.search(r'<section class="(axis|task)"|<h3 id="changes-|<h2 id="configuration"', page[start + 1 :])
    return page[start : start + 1 + following.start()] if following else page[start:]


def test_chain_figure_writes_pdf_and_png(outputs, tmp_path):
    _, _, _, figures = outputs
    assert [path.name for path in figures] == ["chains.pdf", "chains.png"]
    assert figures[0].read_bytes().startswith(b"%PDF") and figures[1].read_bytes().startswith(b"\x89PNG")
    # A table without the metric still gives a (placeholder) figure rather than failing.
    empty = pd.DataFrame(columns=["model", "group", "metric", "value", "ci_low", "ci_high", "n"])
    assert all(p.exists() for p in plot_chain_groups(empty, CHAINS, "similarity", tmp_path / "empty", "None", {}))


def test_report_is_self_contained_with_every_figure_and_number(outputs, tmp_path):
    table, deltas, (table_csv, deltas_csv), figures = outputs
    pngs = [path for path in figures if path.suffix == ".png"]
    out = tmp_path / "site" / "report.html"
    task = TaskOutputs(table=table_csv, deltas=deltas_csv, figures=pngs, models=list(CHAINS["demo"]))
    build_report(out, {"global_opinions": task}, CONFIG, {"numpy": "2.0.0", "scipy": "1.17.0"})
    page = out.read_text(encoding="utf-8")

    for png in pngs:
        assert f'src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}"' in page
    for row in table.itertuples():
        assert f"{row.value:.3f}" in page and f"[{row.ci_low:.3f}, {row.ci_high:.3f}]" in page
    for row in deltas.itertuples():
        assert f"{row.delta:.3f}" in page and f"{row.p_value:.3f}" in page and f"{row.q_value:.3f}" in page
        assert f"[{row.ci_low:.3f}, {row.ci_high:.3f}]" in page
    assert fingerprint(CONFIG) in page
    assert "<td>scipy</td><td>1.17.0</td>" in page
    # The packages the header must name are there even when the versions lack them.
    for package in ("globalrep", "torch", "transformers"):
        assert f"<td>{package}</td><td>not installed</td>" in page
    assert "<details>" in page and "shards: 2" in page
    assert "org/evil-model" in page and "demo-base → &lt;b&gt;evil&lt;/b&gt; &amp; co" in page
    # Self-contained: nothing fetched from elsewhere, links only within the page.
    assert "<script" not in page and "<link" not in page and 'src="http' not in page
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', page))
    # Every place a model name appears is escaped, the YAML block included.
    assert "<b>evil" not in page and page.count("&lt;b&gt;evil&lt;/b&gt; &amp; co") >= 5
    assert list(out.parent.iterdir()) == [out]  # written atomically: no temp file left


def test_sections_follow_the_axes_in_order_with_each_tasks_method(tmp_path):
    # Given out of axis order; the opinions axis has no task here and gets no section.
    tasks = {
        task: write_tables(tmp_path, task) for task in ("tydiqa_goldp", "md3_taboo", "sft_langid", "md3_taboo_transfer")
    }
    out = tmp_path / "report.html"
    build_report(out, tasks, LANGUAGE_CONFIG, VERSIONS)
    page = out.read_text()

    axes = re.findall(r'<section class="axis" id="axis-(\w+)">', page)
    assert axes == ["dialects", "languages"]
    order = re.findall(r'<section class="(?:axis|task)" id="((?:axis|task)-\w+)">', page)
    assert order == [
        "axis-dialects", "task-md3_taboo", "task-md3_taboo_transfer",
        "axis-languages", "task-tydiqa_goldp", "task-sft_langid",
    ]  # fmt: skip
    # The table of contents links every axis, task and summary in that order.
    contents = page[page.index("<h2>Contents</h2>") : page.index('<section class="axis"')]
    assert re.findall(r'href="#([\w-]+)"', contents) == [
        "axis-dialects", "task-md3_taboo", "task-md3_taboo_transfer", "changes-dialects",
        "axis-languages", "task-tydiqa_goldp", "task-sft_langid", "changes-languages", "configuration",
    ]  # fmt: skip
    # Each task's method comes from its module docstring, ``code`` and :mod:`roles` as code.
    tydiqa = section(page, "task-tydiqa_goldp")
    assert (
        "<p>TyDiQA-GoldP (Clark et al. 2020): extractive question answering on gold passages, 9 languages.</p>"
        in tydiqa
    )
    assert (
        "The model sees an instruction to extract the answer span from the context, <code>num_shots</code> worked"
        in tydiqa
    )
    assert "two independent detectors (<code>globalrep.langid</code>)" in section(page, "task-sft_langid")
    assert "Multi-VALUE" in section(page, "task-md3_taboo_transfer") and "Multi-VALUE" not in section(
        page, "task-md3_taboo"
    )
    for versions in VERSIONS.items():
        assert "<td>{}</td><td>{}</td>".format(*versions) in page


def test_summary_lists_the_largest_significant_gains_and_drops_per_chain(tmp_path):
    base_sft, sft_pt = ("demo", "demo-base", "demo-sft"), ("demo", "demo-sft", "demo-pt")
    short = ("short", "demo-base", "demo-pt")
    belebele = write_tables(
        tmp_path,
        "belebele",
        [("demo-base", "deu_Latn", "German", "accuracy", 50.0, 40.0, 60.0, 8)],
        [
            (*base_sft, "deu_Latn", "accuracy", 12.5, 4.0, 21.0, 0.001, 0.005),  # the largest significant gain
            (*base_sft, "fra_Latn", "accuracy", 30.0, -2.0, 60.0, 0.08, 0.08),  # larger, not significant
            (*base_sft, "eng_Latn", "accuracy", 7.25, 1.0, 13.5, 0.02, 0.04),
            (*base_sft, "ita_Latn", "accuracy", 5.0, 1.0, 9.0, 0.03, 0.04),
            (*base_sft, "spa_Latn", "accuracy", 2.0, 0.5, 3.5, 0.04, 0.045),  # significant, but 4th
            (*sft_pt, "deu_Latn", "accuracy", -9.75, -15.0, -3.0, 0.00004, 0.00012),  # the largest significant drop
            (*sft_pt, "fra_Latn", "accuracy", -3.5, -6.0, -1.0, 0.03, 0.045),
            (*sft_pt, "eng_Latn", "accuracy", -40.0, -80.0, 1.0, 0.049, 0.098),  # passes raw p, not q
            (*sft_pt, "ita_Latn", "accuracy", np.nan, np.nan, np.nan, np.nan, np.nan),  # no items: no test
            (*short, "deu_Latn", "accuracy", 1.5, -0.5, 2.5, 0.3, 0.3),
        ],
        columns=[*GROUP_COLUMNS[:2], "group_name", *GROUP_COLUMNS[2:]],
    )
    tydiqa = write_tables(tmp_path, "tydiqa_goldp", deltas_rows=[
        *[(*base_sft, group, "f1", delta, 1.0, 2 * delta, 0.01, 0.02) for group, delta in
          (("english", 20.0), ("finnish", 15.0), ("indonesian", 10.0), ("swahili", 5.0))],
        (*base_sft, "english", "exact_match", 0.25, 0.125, 0.375, 0.02, 0.02),  # small, but its own metric
        (*short, "english", "f1", 1.0, 0.5, 1.5, 0.01, 0.01),
        (*short, "english", "exact_match", -0.5, -1.0, 0.1, 0.2, 0.2),
    ])  # fmt: skip
    out = tmp_path / "report.html"
    tasks = {"belebele": belebele, "tydiqa_goldp": tydiqa, "sft_langid": write_tables(tmp_path, "sft_langid")}
    build_report(out, tasks, LANGUAGE_CONFIG, VERSIONS)
    summary = section(out.read_text(), "changes-languages")
    assert "corrected within the family by Benjamini–Hochberg (false discovery rate)" in summary

    demo = summary[summary.index("<h4>demo: demo-base → demo-sft → demo-pt</h4>") : summary.index("<h4>short:")]
    demo_belebele, demo_tydiqa = demo.split("<strong>tydiqa_goldp</strong>")
    assert (
        "<strong>belebele</strong>: 6 of 9 comparisons changed significantly (q &lt; 0.05; 7 pass raw p).</p>"
        in demo_belebele
    )
    # Per family (step and metric): its size, the groups left out for want of a p-value, p against q.
    family = "<tr><td>{}</td><td>accuracy</td>" + '<td class="num">{}</td>' * 4 + "</tr>"
    assert family.format("demo-base → demo-sft", 5, 0, 4, 4) in demo_belebele
    assert family.format("demo-sft → demo-pt", 3, 1, 3, 2) in demo_belebele
    row = "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>" + '<td class="num">{}</td>' * 4 + "</tr>"
    gain = row.format(
        "accuracy", "gain", "demo-base → demo-sft", "deu_Latn (German)", "+12.500", "[4.000, 21.000]", "0.001", "0.005"
    )
    drop = row.format(
        "accuracy",
        "drop",
        "demo-sft → demo-pt",
        "deu_Latn (German)",
        "-9.750",
        "[-15.000, -3.000]",
        "4.0e-05",
        "1.2e-04",
    )
    assert gain in demo_belebele and drop in demo_belebele
    # The top 3 each way, largest first; per metric, so a small change of another metric stays.
    assert listed_deltas(demo_belebele) == ["+12.500", "+7.250", "+5.000", "-9.750", "-3.500"]
    assert ": 5 of 5 comparisons changed significantly (q &lt; 0.05; 5 pass raw p).</p>" in demo_tydiqa
    assert listed_deltas(demo_tydiqa) == ["+20.000", "+15.000", "+10.000", "+0.250"]
    assert "sft_langid" not in summary  # no chains: nothing to summarise

    short_chain = summary[summary.index("<h4>short:") :]
    assert (
        "<strong>belebele</strong>: no significant change among 1 comparison (q &lt; 0.05; 0 pass raw p).</p>"
        in short_chain
    )
    assert (
        "<strong>tydiqa_goldp</strong>: 1 of 2 comparisons changed significantly (q &lt; 0.05; 1 pass raw p); "
        "no significant change in exact_match.</p>"
    ) in short_chain
    assert listed_deltas(short_chain) == ["+1.000"]


def listed_deltas(html):
    return re.findall(r'<td class="num">([+-][\d.]+)</td>', html)


def test_notes_models_and_extra_tables_are_shown(tmp_path):
    rows = [(EVIL, "NG", "Nigeria", "reward", 1.25, 0.5, 2.0, 1)]
    where_from = write_tables(
        tmp_path, "where_from", rows, columns=[*GROUP_COLUMNS[:2], "group_name", *GROUP_COLUMNS[2:]]
    )
    gaps = tmp_path / "md3_taboo_gaps.csv"
    write_csv_atomic(
        pd.DataFrame(
            [(EVIL, "en_us", "en_in", "generated_correct", 0.125, 0.0625, 0.25, 0.01, 0.02, 40, 38)],
            columns=GAP_COLUMNS,
        ),
        gaps,
    )
    long = tmp_path / "md3_taboo_long.csv"
    write_csv_atomic(pd.DataFrame({"group": [f"g{i}" for i in range(40)], "value": np.arange(40) / 8}), long)
    md3 = write_tables(tmp_path, "md3_taboo")
    tasks = {
        "md3_taboo": TaskOutputs(
            md3.table, md3.deltas, extra_tables={"gaps": gaps, "long": long}, models=["demo-base", EVIL],
            note=f"no published outputs for {EVIL}",
        ),
        "where_from": where_from,
        "sft_langid": write_tables(tmp_path, "sft_langid"),
    }  # fmt: skip
    out = tmp_path / "report.html"
    build_report(out, tasks, CONFIG, VERSIONS)
    page = out.read_text()

    md3_taboo = section(page, "task-md3_taboo")
    assert (
        '<p class="note"><strong>Note:</strong> no published outputs for &lt;b&gt;evil&lt;/b&gt; &amp; co</p>'
        in md3_taboo
    )
    assert "<p>Models evaluated: demo-base, &lt;b&gt;evil&lt;/b&gt; &amp; co.</p>" in md3_taboo
    assert "<p>Models evaluated: none (this task runs no models).</p>" in section(page, "task-sft_langid")
    assert '<p class="note">' not in section(page, "task-where_from")
    # Extra tables: every column, a CI pair as one column, integers as integers, long ones folded.
    assert "<th>gap</th><th>95% CI</th><th>p</th><th>q</th><th>n_reference</th>" in md3_taboo
    assert (
        '<td class="num">0.125</td><td class="num">[0.062, 0.250]</td><td class="num">0.010</td>'
        '<td class="num">0.020</td><td class="num">40</td>'
    ) in md3_taboo
    assert "<details><summary>40 rows</summary>" in md3_taboo and "<td>g39</td>" in md3_taboo
    # The per-group table shows group names; no deltas is said, not an empty table.
    assert "<td>NG</td><td>Nigeria</td><td>reward</td>" in section(page, "task-where_from")
    assert "<p>No chain comparisons for this task.</p>" in section(page, "task-where_from")
    assert "<p>No chain comparisons in this section.</p>" in section(page, "changes-opinions")
    assert "<b>evil" not in page


def test_pipeline_report_gives_each_task_its_own_extra_tables_and_figures(tmp_path):
    # md3_taboo's extras must not pick up md3_taboo_transfer's files, whose names share its prefix;
    # rm_dialect_probe stands for a task no model could answer: no extra tables were written.
    tasks = ("md3_taboo", "md3_taboo_transfer", "sft_langid", "rm_dialect_probe")
    tables = {}
    for task in tasks:
        outputs = write_tables(tmp_path, task)
        tables[task] = (outputs.table, outputs.deltas)
    extras = [tmp_path / f"{task}_{name}.csv" for task in tasks[:3] for name in stages.extra_table_names(task)]
    for path in extras:
        write_csv_atomic(pd.DataFrame({"marker": [path.stem]}), path)
    figure_dirs = {task: tmp_path / "figures" / task for task in tasks}
    for directory in figure_dirs.values():
        directory.mkdir(parents=True)
    plot_chain_groups(pd.DataFrame(columns=GROUP_COLUMNS), {}, "x", figure_dirs["md3_taboo"] / "chains", "x", {})
    for task, directory in figure_dirs.items():
        figure_manifest.write(directory, {"kind": "figures", "task": task}, [])
    # A PNG the figure job did not draw is not the task's figure: the report leaves it out.
    shutil.copy(figure_dirs["md3_taboo"] / "chains.png", figure_dirs["md3_taboo_transfer"] / "stray.png")
    out = tmp_path / "report.html"
    task_models = {
        "md3_taboo": ["demo-base"],
        "md3_taboo_transfer": ["demo-base"],
        "sft_langid": [],
        "rm_dialect_probe": [],
    }
    notes = {"md3_taboo_transfer": "a note", "rm_dialect_probe": "No published outputs for demo-rm"}
    stages.report(out, tables, figure_dirs, extras, task_models, notes, CONFIG)
    page = out.read_text()

    md3_taboo, transfer = section(page, "task-md3_taboo"), section(page, "task-md3_taboo_transfer")
    assert "<td>md3_taboo_gaps</td>" in md3_taboo and "<td>md3_taboo_gap_changes</td>" in md3_taboo
    assert "md3_taboo_transfer_dialect_pairs" not in md3_taboo
    assert "<td>md3_taboo_transfer_dialect_pairs</td>" in transfer and "a note" in transfer
    assert md3_taboo.count("<img ") == 1 and "<img " not in transfer
    probe = section(page, "task-rm_dialect_probe")
    assert "<p>Models evaluated: none.</p>" in probe and "No published outputs for demo-rm" in probe
    assert "dialect_pairs" not in probe
    assert "<td>globalrep</td>" in page and "<td>python</td>" in page


def test_a_figure_missing_from_its_folder_is_named_and_the_folder_deleted(tmp_path):
    folder = tmp_path / "figures" / "global_opinions"
    plot_chain_groups(pd.DataFrame(columns=GROUP_COLUMNS), {}, "x", folder / "chains", "x", {})
    figure_manifest.write(folder, {"kind": "figures", "task": "global_opinions"}, [])
    assert figure_manifest.listed_pngs(folder) == [folder / "chains.png"]
    (folder / "chains.png").unlink()
    assert figure_manifest.damaged(folder) == f"{folder}: chains.png is missing (listed in figures.json)"
    table = write_tables(tmp_path, "global_opinions")
    with pytest.raises(
        GlobalrepError,
        match=r"chains\.png is missing \(listed in figures\.json\)\. The folder was deleted: run snakemake again",
    ):
        stages.report(
            tmp_path / "report.html",
            {"global_opinions": (table.table, table.deltas)},
            {"global_opinions": folder},
            [],
            {"global_opinions": []},
            {},
            CONFIG,
        )
    assert not folder.exists() and not (tmp_path / "report.html").exists()


def test_report_without_tasks_lists_models(tmp_path):
    out = tmp_path / "report.html"
    build_report(out, {}, {"models": {}, "chains": {}}, {})
    page = out.read_text()
    assert "<h2>Models</h2>" in page and '<section class="axis"' not in page
