import base64

import numpy as np
import pandas as pd
import pytest

from globalrep.figures.chains import plot_chain_groups
from globalrep.models import fingerprint
from globalrep.report import build_report
from globalrep.tables import deltas_table, group_table

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
    table.to_csv(table_csv, index=False)
    deltas.to_csv(deltas_csv, index=False)
    figures = plot_chain_groups(table, CHAINS, "similarity", tmp_path / "fig" / "chains", "Similarity", STAGES)
    return table, deltas, (table_csv, deltas_csv), figures


def test_chain_figure_writes_pdf_and_png(outputs, tmp_path):
    _, _, _, figures = outputs
    assert [path.name for path in figures] == ["chains.pdf", "chains.png"]
    assert figures[0].read_bytes().startswith(b"%PDF") and figures[1].read_bytes().startswith(b"\x89PNG")
    # A table without the metric still gives a (placeholder) figure rather than failing.
    empty = pd.DataFrame(columns=["model", "group", "metric", "value", "ci_low", "ci_high", "n"])
    assert all(p.exists() for p in plot_chain_groups(empty, CHAINS, "similarity", tmp_path / "empty", "None", {}))


def test_report_is_self_contained_with_every_figure_and_number(outputs, tmp_path):
    table, deltas, csvs, figures = outputs
    pngs = [path for path in figures if path.suffix == ".png"]
    out = tmp_path / "site" / "report.html"
    build_report(out, {"global_opinions": csvs}, {"global_opinions": pngs}, CONFIG, {"numpy": "2.0.0", "scipy": "1.17.0"})
    page = out.read_text(encoding="utf-8")

    for png in pngs:
        assert f'src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}"' in page
    for row in table.itertuples():
        assert f"{row.value:.3f}" in page and f"[{row.ci_low:.3f}, {row.ci_high:.3f}]" in page
    for row in deltas.itertuples():
        assert f"{row.delta:.3f}" in page and f"{row.p_value:.3f}" in page
        assert f"[{row.ci_low:.3f}, {row.ci_high:.3f}]" in page
    assert fingerprint(CONFIG) in page
    assert "<td>scipy</td><td>1.17.0</td>" in page
    assert "<details>" in page and "shards: 2" in page
    assert "org/evil-model" in page and "demo-base → &lt;b&gt;evil&lt;/b&gt; &amp; co" in page
    # Self-contained: nothing fetched from elsewhere.
    assert "<script" not in page and "<link" not in page and 'src="http' not in page
    # Every place a model name appears is escaped, the YAML block included.
    assert "<b>evil" not in page and page.count("&lt;b&gt;evil&lt;/b&gt; &amp; co") >= 5
    assert list(out.parent.iterdir()) == [out]  # written atomically: no temp file left


def test_report_without_tables_lists_models(tmp_path):
    out = tmp_path / "report.html"
    build_report(out, {}, {}, {"models": {}, "chains": {}}, {})
    assert "<h2>Models</h2>" in out.read_text()
