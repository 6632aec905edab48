"""CFMatch (Li et al. 2024, the ``qa-metrics`` package's ``CFMatcher``): a logistic classifier that
judges whether a candidate answer means the same as a reference answer, as the paper scored
TyDiQA-GoldP with it.

The classifier is the one ``CFMatcher`` downloaded when the paper was scored (upstream commit
86c01fc, 2024-04-23), shipped in ``globalrep/data/cfmatch/`` as plain JSON (no pickle; see the
README and LICENSE there) and applied here with numpy, following qa-metrics 0.2.16 step by step:

1. each of reference, candidate and question is normalised (:func:`normalize`);
2. the text ``"[CLS] cand [SEP] ref [SEP] question [SEP]"`` becomes a tf-idf vector with
   scikit-learn's default ``TfidfVectorizer`` steps (lower-case, tokens ``(?u)\\b\\w\\w+\\b``,
   counts times idf, l2 norm) over the fitted English vocabulary;
3. three word-set overlap features follow it: f1, "precision" = overlap / |reference words| and
   "recall" = overlap / |candidate words| (upstream's names);
4. ``d = features · coef + intercept``; the score is P("correct") = 1 − sigmoid(d), and the
   candidate is judged correct (``cf_match``) when ``d ≤ 0``.

The vocabulary is English: text in a script it does not cover gives a tf-idf vector of only
``cls`` and ``sep``, which push towards "incorrect", so even an exact match scores low there.
"""

from __future__ import annotations

import gzip
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import regex
from scipy.special import expit

from globalrep.errors import GlobalrepError

CLASSIFIER_DIR = "data/cfmatch"
VOCABULARY_FILE = "tfidf_vocabulary.json.gz"
IDF_FILE = "tfidf_idf.json.gz"
PARAMS_FILE = "tfidf_params.json"
CLASSIFIER_FILE = "lr.json.gz"
# The vectorizer's settings these steps implement (scikit-learn's defaults); a file that says
# otherwise is another classifier.
EXPECTED_PARAMS = {
    "analyzer": "word",
    "lowercase": True,
    "token_pattern": r"(?u)\b\w\w+\b",
    "ngram_range": [1, 1],
    "norm": "l2",
    "use_idf": True,
    "sublinear_tf": False,
    "binary": False,
    "strip_accents": None,
    "stop_words": None,
}
CLASSES = ["correct", "incorrect"]
OVERLAP_FEATURES = 3  # f1, precision, recall after the tf-idf columns
# scikit-learn tokenises with the standard library's re; qa-metrics removes articles with the
# regex package, whose Unicode word boundaries differ from re's next to combining marks.
TOKEN = re.compile(EXPECTED_PARAMS["token_pattern"])
ARTICLES = regex.compile(r"\b(a|an|the)\b")
NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
# The marker words of the classifier's input text, "[CLS]" and "[SEP]" as tokenised.
CLS, SEP = "cls", "sep"


@dataclass(frozen=True)
class Classifier:
    """The fitted vectorizer and classifier, folded for scoring: ``text_weights`` = idf × the
    tf-idf columns' coefficients, so a text's part of ``d`` is ``counts · text_weights / ‖counts × idf‖``."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    text_weights: np.ndarray
    overlap_weights: np.ndarray  # f1, precision, recall
    intercept: float


def normalize(text: str) -> str:
    """qa-metrics' ``normalize_answer``: lower-case, drop ASCII punctuation, drop the words a, an,
    the, collapse whitespace (its second pass, ``fix_answer``, changes nothing more)."""
    return " ".join(ARTICLES.sub(" ", text.lower().translate(NO_PUNCTUATION)).split())


@cache
def classifier() -> Classifier:
    """The classifier shipped in ``globalrep/data/cfmatch``, read once per process (about 0.1 s)."""
    return load_classifier(resources.files("globalrep").joinpath(CLASSIFIER_DIR))


def load_classifier(folder) -> Classifier:
    """The classifier in ``folder`` (a path or an importlib resource), checked to be what these
    steps apply (scikit-learn's default vectorizer, classes ``correct, incorrect``, sizes that agree)."""

    def read(name: str, opener=open):
        path = folder.joinpath(name)
        try:
            with opener(str(path), "rt", encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError) as error:
            raise GlobalrepError(
                f"CFMatch classifier file {path} cannot be read ({error}); reinstall globalrep"
            ) from None

    params, model = read(PARAMS_FILE), read(CLASSIFIER_FILE, gzip.open)
    vocabulary, idf = read(VOCABULARY_FILE, gzip.open), np.asarray(read(IDF_FILE, gzip.open), dtype=float)
    coef = np.asarray(model.get("coef", []), dtype=float).ravel()
    problems = [
        f"{PARAMS_FILE}: {key} is {params.get(key)!r}, not {value!r}"
        for key, value in EXPECTED_PARAMS.items()
        if params.get(key) != value
    ]
    if model.get("classes") != CLASSES:
        problems.append(f"{CLASSIFIER_FILE}: classes are {model.get('classes')!r}, not {CLASSES!r}")
    if (
        len(vocabulary) != len(idf)
        or len(coef) != len(idf) + OVERLAP_FEATURES
        or set(vocabulary.values()) != set(range(len(idf)))
    ):
        problems.append(
            f"sizes disagree: {len(vocabulary)} terms (columns 0..n-1 expected), {len(idf)} idf values, "
            f"{len(coef)} coefficients (expected terms + {OVERLAP_FEATURES})"
        )
    if problems:
        raise GlobalrepError(f"CFMatch classifier in {folder} is not the one these steps apply: {'; '.join(problems)}")
    return Classifier(
        vocabulary=vocabulary,
        idf=idf,
        text_weights=idf * coef[: len(idf)],
        overlap_weights=coef[len(idf) :],
        intercept=float(model["intercept"][0]),
    )


def scores(
    references: Sequence[str], candidates: Sequence[str], questions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per ``(reference, candidate, question)`` triple, what ``CFMatcher`` gives it: the score
    P("correct") in 0..1 (``get_score``) and the judgment (``cf_match``), as two arrays."""
    decision = _decisions(references, candidates, questions)
    return 1.0 - expit(decision), decision <= 0


def best_scores(
    candidates: Sequence[str], gold_answers: Sequence[Sequence[str]], questions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per question, as the paper scored it: the highest score of ``candidates[i]`` against any of
    ``gold_answers[i]`` (0..1), and whether any gold answer judges it correct."""
    sizes = [len(golds) for golds in gold_answers]
    if len(sizes) != len(candidates) or 0 in sizes:
        raise GlobalrepError("CFMatch: every candidate needs its question's gold answers, at least one")
    owner = np.repeat(np.arange(len(candidates)), sizes)
    references = [gold for golds in gold_answers for gold in golds]
    score, match = scores(references, [candidates[i] for i in owner], [questions[i] for i in owner])
    best = np.full(len(candidates), -np.inf)
    np.maximum.at(best, owner, score)
    judged = np.zeros(len(candidates), dtype=bool)
    np.logical_or.at(judged, owner, match)
    return best, judged


def _decisions(references: Sequence[str], candidates: Sequence[str], questions: Sequence[str]) -> np.ndarray:
    """The classifier's decision value ``d`` per triple, all triples at once. Texts repeat (a
    question per gold answer, an answer across models), so each distinct text is normalised and
    tokenised once."""
    model = classifier()
    vocabulary = model.vocabulary
    cls, sep = vocabulary.get(CLS), vocabulary.get(SEP)
    marker_ids = np.array([i for i in (cls, sep, sep, sep) if i is not None], dtype=np.int64)
    seen: dict[str, tuple[np.ndarray, frozenset[str]]] = {}

    def parts(text: str) -> tuple[np.ndarray, frozenset[str]]:
        """``text`` normalised: its in-vocabulary token columns and its set of words."""
        if text not in seen:
            normal = normalize(str(text))
            # The parts of the input text are joined by " [SEP] ", so tokens never cross them:
            # the text's tokens are those of its parts and the markers.
            ids = [column for token in TOKEN.findall(normal.lower()) if (column := vocabulary.get(token)) is not None]
            seen[text] = (np.array(ids, dtype=np.int64), frozenset(normal.split()))
        return seen[text]

    n = len(references)
    token_ids, overlap = [], np.zeros((n, OVERLAP_FEATURES))
    for row, (reference, candidate, question) in enumerate(zip(references, candidates, questions)):
        (ref_ids, ref_words), (cand_ids, cand_words), (question_ids, _) = (
            parts(reference),
            parts(candidate),
            parts(question),
        )
        token_ids += [marker_ids, cand_ids, ref_ids, question_ids]
        overlap[row] = _overlap(ref_words, cand_words)
    lengths = [len(ids) for ids in token_ids]
    rows = np.repeat(np.repeat(np.arange(n), 4), lengths)
    columns = np.concatenate(token_ids) if token_ids else np.zeros(0, dtype=np.int64)
    size = len(model.idf)
    cells, counts = np.unique(rows * size + columns, return_counts=True)
    cell_rows, cell_columns = cells // size, cells % size
    weighted = counts * model.idf[cell_columns]
    numerator = np.bincount(cell_rows, counts * model.text_weights[cell_columns], minlength=n)
    norm = np.sqrt(np.bincount(cell_rows, weighted * weighted, minlength=n))
    text = np.divide(
        numerator, norm, out=np.zeros(n), where=norm > 0
    )  # an empty vector stays 0, as l2 normalising leaves it
    return text + overlap @ model.overlap_weights + model.intercept


def _overlap(reference: frozenset[str], candidate: frozenset[str]) -> tuple[float, float, float]:
    """qa-metrics' ``f1_score_with_precision_recall(reference, candidate)`` on word sets: f1,
    overlap / |reference| ("precision") and overlap / |candidate| ("recall"), 0 where undefined."""
    common = len(reference & candidate)
    precision = common / len(reference) if reference else 0.0
    recall = common / len(candidate) if candidate else 0.0
    f1 = 2 * (precision * recall) / (precision + recall) if precision + recall > 0 else 0.0
    return f1, precision, recall
