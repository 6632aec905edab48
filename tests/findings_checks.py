"""Each finding of findings.csv re-derived from the table rows it names, independently of
globalrep.findings' own arithmetic: the check that no finding contradicts its source table."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from globalrep.findings import parse_selector, select, statistic_name, with_text

SIGNIFICANT = 0.05
US_SURVEY, US_NATURAL_EARTH = "United States", "United States of America"
ENGLISH = ("eng_Latn", "english", "en")


def expected_verdict(name: str, value: float, q_value: float) -> str:
    """The verdict the docs promise for a statistic's value and q."""
    if name in ("us_rank_by_similarity_change", "where_from_us_rank", "english_share"):
        return "descriptive"
    counted = {"sae_gaps_widened": "widened", "sae_gaps_narrowed": "narrowed",
               "languages_improved": "rose", "languages_declined": "fell"}  # fmt: skip
    if name in counted:
        return counted[name] if value > 0 else "no significant change"
    if not q_value < SIGNIFICANT or value == 0:
        return "no significant change"
    if name == "gallup_correlation_change":
        return "rose" if value > 0 else "fell"
    return "widened" if value > 0 else "narrowed"


def derived(name: str, rows: pd.DataFrame, finding) -> tuple[float, float | None]:
    """``(value, q)`` of a finding from its source rows (q None where the finding tests on its own)."""
    significant = rows[rows.get("q_value", pd.Series(dtype=float)) < SIGNIFICANT] if "q_value" in rows else rows
    if name == "md3_gap_change":
        assert len(rows) == 1, rows
        return rows["change"].iloc[0], rows["q_value"].iloc[0]
    if name in ("sae_gaps_widened", "languages_declined"):
        return float((significant["delta"] < 0).sum()), None
    if name in ("sae_gaps_narrowed", "languages_improved"):
        return float((significant["delta"] > 0).sum()), None
    if name == "english_vs_median_change":
        english = rows["group"].isin(ENGLISH)
        return rows.loc[english, "delta"].iloc[0] - rows.loc[~english, "delta"].median(), None
    if name == "us_minus_rest_change":
        us = rows["group"] == US_SURVEY
        return rows.loc[us, "delta"].iloc[0] - rows.loc[~us, "delta"].mean(), None
    if name == "us_rank_by_similarity_change":
        us_change = rows.loc[rows["group"] == US_SURVEY, "delta"].iloc[0]
        return float(1 + (rows["delta"] > us_change).sum()), None
    if name == "where_from_us_rank":
        us_reward = rows.loc[rows["group"] == US_NATURAL_EARTH, "value"].iloc[0]
        return float(1 + (rows["value"] > us_reward).sum()), None
    if name == "gallup_correlation_change":
        before = rows[rows["model"] == finding.from_model].set_index("country")
        after = rows[rows["model"] == finding.to_model].set_index("country")
        common = before.index.intersection(after.index)
        rho = [
            stats.spearmanr(side.loc[common, "mean_rank"], after.loc[common, "list_rank"]).statistic
            for side in (before, after)
        ]
        return rho[1] - rho[0], None
    if name == "english_share":
        assert len(rows) == 1, rows
        return rows["value"].iloc[0], None
    raise AssertionError(f"no check for statistic {name}")


def contradictions(findings: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """A message per finding whose value, q or verdict disagrees with its source rows."""
    problems = []
    for finding in with_text(findings).itertuples(index=False):
        name = statistic_name(finding.statistic)
        table, columns = parse_selector(finding.source_table)
        rows = select(tables[table], columns)
        if rows.empty:
            problems.append(f"{finding.statistic}: no rows for {finding.source_table}")
            continue
        value, q_value = derived(name, rows, finding)
        if not np.isclose(finding.value, value, rtol=1e-6, atol=1e-4):
            problems.append(
                f"{finding.statistic} ({finding.source_table}): value {finding.value} but the rows give {value}"
            )
        if q_value is not None and not np.isclose(finding.q_value, q_value, equal_nan=True):
            problems.append(
                f"{finding.statistic} ({finding.source_table}): q {finding.q_value} but the rows give {q_value}"
            )
        if finding.verdict != expected_verdict(name, finding.value, finding.q_value):
            problems.append(
                f"{finding.statistic} ({finding.source_table}): verdict {finding.verdict!r} for value {finding.value}, q {finding.q_value}"
            )
        if not np.isnan(finding.ci_low) and not finding.ci_low - 1e-9 <= finding.value <= finding.ci_high + 1e-9:
            problems.append(
                f"{finding.statistic}: value {finding.value} outside its CI [{finding.ci_low}, {finding.ci_high}]"
            )
    return problems
