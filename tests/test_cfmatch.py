"""CFMatch, the paper's TyDiQA figure metric: the shipped classifier applied with numpy gives what
qa-metrics 0.2.16's ``CFMatcher`` gives (the 600 reference triples in ../shared), and hand cases
with the package's own files."""

from __future__ import annotations

import gzip
import json
import shutil
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from globalrep import cfmatch
from globalrep.errors import GlobalrepError

QUESTION = "What is the capital of France?"


def package_file(name: str):
    return json.loads(gzip.decompress(resources.files("globalrep").joinpath(cfmatch.CLASSIFIER_DIR, name).read_bytes()))


# ------------------------------------------------------------------------------ the reference


def test_all_600_reference_triples_score_as_the_real_cfmatcher(shared_data):
    reference = pd.read_csv(shared_data / "cfmatch" / "reference_scores.csv", keep_default_na=False)
    assert len(reference) == 600 and set(reference["cf_match"]) == {0, 1}
    score, judged = cfmatch.scores(
        list(reference["reference"]), list(reference["candidate"]), list(reference["question"])
    )
    assert np.abs(score - reference["cfm_score"].to_numpy()).max() <= 1e-9
    assert (judged.astype(int) == reference["cf_match"].to_numpy()).all()


def test_the_shipped_files_are_the_shared_export(shared_data):
    for name in (cfmatch.VOCABULARY_FILE, cfmatch.IDF_FILE, cfmatch.CLASSIFIER_FILE, cfmatch.PARAMS_FILE):
        shipped = resources.files("globalrep").joinpath(cfmatch.CLASSIFIER_DIR, name).read_bytes()
        assert shipped == (shared_data / "cfmatch" / name).read_bytes(), name


# ------------------------------------------------------------------------------ hand cases


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The U.S.A.!", "usa"),
        ("an apple, a pear", "apple pear"),
        ("Theory  of\tthe\nmind", "theory of mind"),
        ("¿Qué?", "¿qué"),  # only ASCII punctuation goes
        # regex's word boundaries, as qa-metrics': a combining mark is part of a word, so "the"
        # followed by one is not the article (the standard library's re would remove it)
        ("the\u0301 cat", "the\u0301 cat"),
    ],
)
def test_normalisation_is_qa_metrics(text, normal):
    assert cfmatch.normalize(text) == normal


def test_punctuation_case_and_articles_do_not_change_the_score():
    plain = cfmatch.scores(["Paris"], ["Paris"], [QUESTION])
    dressed = cfmatch.scores(["the Paris."], ["PARIS!"], ["what is THE capital of France"])
    assert plain[0] == pytest.approx(dressed[0], abs=0) and plain[1] == dressed[1]


def test_english_exact_answer_is_judged_correct_and_a_wrong_one_not():
    score, judged = cfmatch.scores(["Paris", "Paris"], ["Paris", "Berlin"], [QUESTION, QUESTION])
    assert score[0] > 0.5 and judged[0]
    assert score[1] < 0.5 and not judged[1]


def test_an_empty_prediction_is_judged_incorrect_like_one_of_only_articles_and_punctuation():
    score, judged = cfmatch.scores(["Paris"] * 3, ["", "the .", "Paris"], [QUESTION] * 3)
    assert score[0] == score[1] and not judged[0]
    assert 0 < score[0] < 0.5 < score[2]


def test_several_gold_answers_take_the_best_one():
    golds = ["Berlin", "Paris", "the city of Paris"]
    each, each_judged = cfmatch.scores(golds, ["Paris"] * 3, [QUESTION] * 3)
    best, judged = cfmatch.best_scores(["Paris", "Rome"], [golds, golds[:1]], [QUESTION, QUESTION])
    assert best[0] == each.max() and judged[0] == each_judged.any() and judged[0]
    assert best[1] == cfmatch.scores(["Berlin"], ["Rome"], [QUESTION])[0][0] and not judged[1]


def test_an_exact_answer_in_a_script_the_vocabulary_lacks_scores_by_the_marker_words_alone():
    # Only "[CLS]" and three "[SEP]" are known words, and the overlap features are all 1:
    # d = (idf·coef of cls + 3 idf·coef of sep) / ‖(idf_cls, 3 idf_sep)‖ + f1 + p + r weights + intercept.
    vocabulary, idf = package_file(cfmatch.VOCABULARY_FILE), np.array(package_file(cfmatch.IDF_FILE))
    model = package_file(cfmatch.CLASSIFIER_FILE)
    coef = np.array(model["coef"]).ravel()
    cls, sep = vocabulary["cls"], vocabulary["sep"]
    text = (idf[cls] * coef[cls] + 3 * idf[sep] * coef[sep]) / np.hypot(idf[cls], 3 * idf[sep])
    d = text + coef[-3:].sum() + model["intercept"][0]
    score, judged = cfmatch.scores(["বাংলাদেশ"], ["বাংলাদেশ"], ["বাংলাদেশের রাজধানী কী?"])
    assert score[0] == pytest.approx(1 - 1 / (1 + np.exp(-d)), abs=1e-12)
    assert score[0] < 0.05 and not judged[0]  # CFMatch cannot see that this is right


def test_a_question_without_gold_answers_is_refused():
    with pytest.raises(GlobalrepError, match="at least one"):
        cfmatch.best_scores(["Paris"], [[]], [QUESTION])


def test_a_classifier_that_is_not_this_one_is_refused_by_file(tmp_path):
    folder = tmp_path / "cfmatch"
    shutil.copytree(resources.files("globalrep").joinpath(cfmatch.CLASSIFIER_DIR), folder)
    assert cfmatch.load_classifier(folder).intercept == cfmatch.classifier().intercept
    params = json.loads((folder / cfmatch.PARAMS_FILE).read_text())
    (folder / cfmatch.PARAMS_FILE).write_text(json.dumps({**params, "sublinear_tf": True}))
    with pytest.raises(GlobalrepError, match=r"tfidf_params.json: sublinear_tf is True, not False"):
        cfmatch.load_classifier(folder)
    (folder / cfmatch.IDF_FILE).write_bytes(b"not gzip")
    with pytest.raises(GlobalrepError, match=r"tfidf_idf.json.gz cannot be read"):
        cfmatch.load_classifier(folder)
