"""CITATION.cff is valid Citation File Format 1.2.0 and agrees with the package and the README."""

import re
from pathlib import Path

import yaml

import avbench

ROOT = Path(__file__).resolve().parents[1]
#: The keys CFF 1.2.0 requires of a citation file, and of each of its references.
REQUIRED = ("cff-version", "message", "title", "authors")
REFERENCE_REQUIRED = ("type", "title", "authors")


def _valid_authors(authors) -> bool:
    """CFF persons have a family name, entities a name."""
    return isinstance(authors, list) and authors and all(a.get("family-names") or a.get("name") for a in authors)


def test_citation_file_is_cff_1_2_0_with_the_package_version_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert all(cff.get(key) for key in REQUIRED), [key for key in REQUIRED if not cff.get(key)]
    assert cff["cff-version"] == "1.2.0" and _valid_authors(cff["authors"])
    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M).group(1)
    assert str(cff["version"]) == pyproject == avbench.__version__
    refs = cff["references"]
    assert all(all(ref.get(key) for key in REFERENCE_REQUIRED) and _valid_authors(ref["authors"]) for ref in refs)
    paper = next(ref for ref in refs if ref["title"].startswith("Robust Audiovisual Emotion Recognition"))
    assert paper["type"] == "article" and paper["year"] == 2022
    assert paper["journal"] == "IEEE Transactions on Affective Computing"
    assert [a["family-names"] for a in paper["authors"]] == ["Goncalves", "Busso"]


def test_readme_bibtex_matches_the_citation_file():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    readme = (ROOT / "README.md").read_text()
    bibtex = readme.split("## How to cite", 1)[1].split("```bibtex", 1)[1].split("```", 1)[0]
    titles = re.findall(r"^\s*title\s*=\s*\{(.*)\},?$", bibtex, flags=re.M)
    assert titles == [cff["title"], cff["references"][0]["title"]]
    assert f"Version {cff['version']}" in bibtex and "year    = {2022}" in bibtex
