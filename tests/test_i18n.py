"""The site in Spanish beside English: every page a Spanish-speaking student reads has its
Spanish twin (docs/NAME.es.md beside docs/NAME.md), and each twin runs exactly the code of
its original, in the same order, so that the build can run it once and print the same numbers
under both (docs/hooks/run_pages.py). Fast: nothing here builds the site or runs a page."""

import re
import runpy
from pathlib import Path

import pytest

from numfmt.lessons.catalog import LESSONS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The pages with a Spanish twin; the references (API, command line, gallery, arithmetic in
#: a format) are shown in English on the Spanish site, as the Spanish home page says.
PAGES = sorted(
    {"index.md", "formats.md", "formats-at-a-glance.md", "explorer.md", "glossary.md"}
    | {Path(lesson.page).name for lesson in LESSONS}
)
HOOK = None


def _hook():
    global HOOK
    if HOOK is None:
        HOOK = runpy.run_path(str(DOCS / "hooks" / "run_pages.py"))
    return HOOK


def _twin(page: str) -> Path:
    return DOCS / page.replace(".md", ".es.md")


def _config():
    yaml = pytest.importorskip("yaml")

    class Loader(yaml.SafeLoader):  # mkdocs.yml may hold !!python tags: none is needed here
        pass

    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def test_every_page_a_student_reads_has_its_spanish_twin():
    missing = [page for page in PAGES if not _twin(page).is_file()]
    assert not missing, f"no Spanish twin (docs/NAME.es.md) for {missing}"


def test_every_twin_has_an_original_in_the_navigation():
    twins = {p.name.replace(".es.md", ".md") for p in DOCS.rglob("*.es.md")}
    assert twins == set(PAGES), f"twins without an original: {twins - set(PAGES)}"


def _nav_titles(items) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, dict):
            title, value = next(iter(item.items()))
            out.append(title)
            if isinstance(value, list):
                out += _nav_titles(value)
    return out


def test_every_navigation_title_is_translated():
    config = _config()
    i18n = next(p["i18n"] for p in config["plugins"] if isinstance(p, dict) and "i18n" in p)
    es = next(lang for lang in i18n["languages"] if lang["locale"] == "es")
    untranslated = set(_nav_titles(config["nav"])) - set(es["nav_translations"])
    assert not untranslated, f"navigation titles with no Spanish: {untranslated}"


def _run_parts(path: Path):
    return _hook()["split"](path.read_text())


@pytest.mark.parametrize("page", PAGES)
def test_the_twins_run_the_same_code_in_the_same_order(page):
    """The same commands, doctests and code blocks, cell by cell (comments may be translated);
    a doctest's expected output is the same on both pages."""
    pytest.importorskip("nbformat")
    english, spanish = _run_parts(DOCS / page), _run_parts(_twin(page))
    key = _hook()["cells_key"]
    assert key(spanish) == key(english), f"{page}: the Spanish page runs other cells"

    def wants(parts):
        return [e.want for p in parts if p.kind == "doctest" for cell in p.examples for e in cell]

    assert wants(spanish) == wants(english), f"{page}: a doctest expects other output"


def test_a_translated_comment_keeps_the_cell_the_same_and_changed_code_does_not():
    pytest.importorskip("nbformat")
    hook = _hook()
    en = hook["split"]("```python\n>>> x = 1  # one\n>>> x\n1\n\n```\n")
    es = hook["split"]("```python\n>>> x = 1  # uno\n>>> x\n1\n\n```\n")
    other = hook["split"]("```python\n>>> x = 2  # uno\n>>> x\n1\n\n```\n")
    assert hook["cells_key"](en) == hook["cells_key"](es) != hook["cells_key"](other)
    magic = hook["split"]("```console\n$ numfmt show 1 -f bf16\n```\n")
    assert hook["cells_key"](magic) == ("%load_ext numfmt", "%numfmt show 1 -f bf16")


def _prose(path: Path) -> str:
    """A page's own words: no code blocks, no inline code, no links' addresses, no HTML."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    text = re.sub(r"^    .*$", "", text, flags=re.M)  # indented code
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"<[^>]*>", "", text)


@pytest.mark.parametrize("page", PAGES)
def test_spanish_prose_writes_no_comma_between_thousands(page):
    """In Spanish 8,000 reads as eight with three decimals: thousands are written 8000 or,
    from five digits, with a narrow space (8 000 000 000)."""
    found = re.findall(r"\b\d{1,3}(?:,\d{3})+\b", _prose(_twin(page)))
    assert not found, f"{_twin(page).name}: {found}"


def _rows(path: Path) -> list[list[str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            out.append([cell.strip() for cell in line.strip("|").split("|")])
    return out[1:]  # the header


def _headings(path: Path) -> set[str]:
    from markdown.extensions.toc import slugify

    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    titles = re.findall(r"^#{1,6} (.+?)\s*$", text, flags=re.M)
    return {slugify(re.sub(r"[`*]", "", t), "-") for t in titles}


def test_the_glossary_has_the_same_terms_both_ways_each_linked_to_its_lesson():
    """Each English row names its Spanish term and each Spanish row its English one; both
    link the same lesson, at a heading that exists there in the page's language."""
    pairs = {}
    for path, (mine, theirs) in [
        (DOCS / "glossary.md", (0, 1)),
        (_twin("glossary.md"), (1, 0)),
    ]:
        rows = _rows(path)
        assert len(rows) >= 25, path.name
        found = set()
        for row in rows:
            assert len(row) == 4 and all(row), f"{path.name}: {row}"
            assert row[2].strip(" .") and "|" not in row[2]
            links = re.findall(r"\]\(([^)#]+)(?:#([^)]+))?\)", row[3])
            assert links, f"{path.name}: {row[0]} links no lesson"
            for target, anchor in links:
                page = DOCS / target
                if path.name.endswith(".es.md"):
                    page = page.with_suffix(".es.md")
                assert page.is_file(), f"{path.name}: {row[0]} -> {target}"
                if anchor:
                    assert anchor in _headings(page), f"{path.name}: {row[0]} -> #{anchor}"
            found.add((row[mine], row[theirs], tuple(t for t, _ in links)))
        pairs[path.name] = found
    english, spanish = pairs["glossary.md"], pairs["glossary.es.md"]
    assert english == spanish, (
        f"only in English: {sorted(english - spanish)}; only in Spanish: {sorted(spanish - english)}"
    )
    terms = {en for en, _, _ in english}
    for term in ("mantissa", "zero point", "clipping", "rounding", "two's complement"):
        assert term in terms


def test_the_spanish_index_says_which_pages_stay_in_english():
    text = _twin("index.md").read_text()
    for page in ("cli.md", "gallery.md", "arithmetic.md", "api/formats.md"):
        assert f"({page})" in text, page


def test_the_spanish_formats_at_a_glance_is_current():
    module = runpy.run_path(str(DOCS / "make_formats_page.py"))
    assert _twin("formats-at-a-glance.md").read_text() == module["page"]("es"), (
        "docs/formats-at-a-glance.es.md is out of date: run python docs/make_formats_page.py"
    )
