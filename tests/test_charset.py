"""ASCII spellings for a console that is not UTF-8 (numfmt._charset)."""

import io

from numfmt._charset import HANDLER, printable, spell, spell_on


def test_generated_text_in_any_script_prints_on_an_ascii_console():
    assert (
        printable("naïve → café, α=0.5 × 2 ≤ 1…", "ascii") == "naive -> cafe, alpha=0.5 x 2 <= 1..."
    )
    assert printable("夢", "ascii") == "?"
    assert printable("Σ", "cp1252") == "sum" and printable("·", "cp1252") == "·"
    assert [spell(c) for c in "━┃┏╇█"] == ["-", "|", "+", "+", "#"]


def test_the_handler_set_on_a_cp1252_stream_spells_what_it_lacks():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252")
    spell_on(stream)
    assert stream.errors == HANDLER
    stream.write("┏━┓ Σ 3·4 → é\n")
    stream.flush()
    assert raw.getvalue().decode("cp1252") == "+-+ sum 3·4 -> é\n"


def test_a_utf8_stream_is_left_alone():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    spell_on(stream)
    assert stream.errors == "strict"
