"""Language identification of text with two independent offline detectors, counted only where they agree.

- ``langdetect`` (a port of Google's language-detection: character n-gram naive Bayes with random
  trials), with a fixed seed so that its answers are reproducible;
- ``lingua`` (``lingua-language-detector``: n-gram language models shipped in the wheel, Rust).

Both answer an ISO 639-1 code (folded to its macrolanguage, see
:func:`globalrep.languages.base_language`); a text counts for a language only when both say the
same, else it is ``unknown`` (as it is when either finds nothing, e.g. for digits or code only).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from globalrep.languages import UNKNOWN, base_language

DETECTOR_PACKAGES = ("langdetect", "lingua-language-detector")


def detector_versions() -> dict[str, str]:
    """Installed detector versions: a new version may answer differently, so they join the fingerprint."""
    return {package: metadata.version(package) for package in DETECTOR_PACKAGES}


@dataclass(frozen=True)
class Detection:
    langdetect: str
    lingua: str

    @property
    def language(self) -> str:
        return self.langdetect if self.langdetect == self.lingua else UNKNOWN


class Detectors:
    """Both detectors, loaded once (lingua loads each language's models on first use)."""

    def __init__(self, seed: int = 0, max_chars: int = 1000, low_accuracy: bool = False):
        """``low_accuracy``: lingua's trigram-only mode, which loads in about a second instead of
        ~15 s and is slightly less accurate on texts under ~120 characters."""
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
        from lingua import LanguageDetectorBuilder

        # An own factory rather than langdetect's module-level one: no global state to share.
        self._factory = DetectorFactory()
        self._factory.load_profile(PROFILES_DIRECTORY)
        self._factory.set_seed(seed)
        builder = LanguageDetectorBuilder.from_all_languages()
        self._lingua = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()
        self.max_chars = max_chars

    def detect(self, text: str) -> Detection:
        """Both detectors' answers on the first ``max_chars`` characters of ``text``."""
        text = text[: self.max_chars]
        return Detection(self._langdetect(text), self._lingua_code(text))

    def _langdetect(self, text: str) -> str:
        from langdetect.lang_detect_exception import LangDetectException

        detector = self._factory.create()
        detector.append(text)
        try:
            return base_language(detector.detect())
        except LangDetectException:  # no letters to go by
            return UNKNOWN

    def _lingua_code(self, text: str) -> str:
        language = self._lingua.detect_language_of(text)
        return base_language(language.iso_code_639_1.name) if language is not None else UNKNOWN
