"""Language codes and their readable names, from CLDR data (``langcodes`` + ``language_data``).

Tables keep each task's own codes (FLORES-200 ``eng_Latn`` for Belebele, ``english`` for
TyDiQA, ISO 639-1 ``en`` from the language detectors); figures and tables add the name.
"""

from __future__ import annotations

from functools import cache

import langcodes

UNKNOWN = "unknown"


@cache
def language_name(code: str) -> str:
    """English name of a language code (BCP-47, ISO 639, or FLORES-200 ``xxx_Scrp``).

    The script is named only where it is not the language's usual one, so ``deu_Latn`` reads
    "German" but ``hin_Latn`` "Hindi (Latin)". Codes CLDR does not know keep their code.
    """
    if code == UNKNOWN:
        return "unknown"
    try:
        tag = langcodes.Language.get(code.replace("_", "-"))
    except (langcodes.LanguageTagError, ValueError):
        return code
    if not tag.language or not langcodes.tag_is_valid(tag.language):
        return code
    name = tag.language_name()
    usual_script = langcodes.Language.get(tag.language).maximize().script
    return name if not tag.script or tag.script == usual_script else f"{name} ({tag.script_name()})"


@cache
def name_to_code(name: str) -> str | None:
    """The language code of an English language name such as TyDiQA's ``swahili``; None if unknown."""
    try:
        return langcodes.find(name).language
    except LookupError:
        return None


def named_language(name: str) -> str:
    """A readable name for a language given by name (``bengali`` -> "Bangla", CLDR's name)."""
    code = name_to_code(name)
    return language_name(code) if code else name


def base_language(code: str | None) -> str:
    """The bare language subtag of a detector's code, with individual languages folded into
    their macrolanguage (``zh-cn`` -> ``zh``, ``cmn`` -> ``zh``), so that detectors with different
    conventions can agree; ``unknown`` for no code."""
    if not code:
        return UNKNOWN
    try:
        return langcodes.Language.get(langcodes.standardize_tag(code, macro=True)).language or UNKNOWN
    except (langcodes.LanguageTagError, ValueError):
        return UNKNOWN
