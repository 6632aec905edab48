"""A task's figures: text from the data is drawn as written (never parsed as mathtext), and the
folder lists exactly the figures the job drew."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from globalrep import figure_manifest, stages
from globalrep.atomic import write_csv_atomic
from globalrep.tables import deltas_table, group_table

MATH = r"$\nope$"  # mathtext's parser fails on it ("Unknown symbol"): a crash, had it parsed it
CHAINS = {"c$1$": ["base$", f"sft {MATH}"]}


def test_data_text_with_dollars_is_drawn_as_text_and_the_folder_lists_its_figures(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        (model, f"q{i}", country, "similarity", rng.uniform(0.4, 0.8))
        for model in CHAINS["c$1$"]
        for country in (MATH, "United States", "a $5 $ country")
        for i in range(8)
    ]
    scores = pd.DataFrame(rows, columns=["model", "item_id", "group", "metric", "value"])
    table, deltas = tmp_path / "global_opinions.csv", tmp_path / "global_opinions_deltas.csv"
    write_csv_atomic(group_table(scores), table)
    write_csv_atomic(deltas_table(scores, CHAINS), deltas)
    out = tmp_path / "figures"
    written = stages.task_figures(
        "global_opinions", {}, table, deltas, CHAINS, {m: "base" for m in CHAINS["c$1$"]}, out
    )
    listed = json.loads((out / "figures.json").read_text())
    assert sorted(listed["files"]) == sorted(path.name for path in written)
    assert listed["inputs"] == {
        str(table): json.loads((tmp_path / "global_opinions.csv.provenance.json").read_text())["digest"],
        str(deltas): json.loads((tmp_path / "global_opinions_deltas.csv.provenance.json").read_text())["digest"],
    }
    assert figure_manifest.listed_pngs(out) == [out / "global_opinions_chains.png"]
