"""The notebook view of show and compare: a box a bit in the field's colour, the fields'
captions, the formula and stored value beneath; well-formed HTML that fetches nothing."""

from html.parser import HTMLParser

import numfmt
from numfmt.render.html import COLOURS

VOID = {"br", "img", "hr", "meta", "input"}


class _Walk(HTMLParser):
    """Checks that every tag closes in order; collects the bit boxes and the field groups."""

    def __init__(self):
        super().__init__()
        self.stack, self.bits, self.fields, self.text = [], [], [], []
        self.in_bit = False
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag not in VOID:
            self.stack.append(tag)
        if a.get("class") == "nf-bit":
            self.in_bit = True
            self.bits.append(["", a["style"], a["title"]])
        if a.get("class") == "nf-field":
            self.fields.append(a["data-field"])

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes nothing open"
        self.in_bit = False

    def handle_data(self, data):
        self.text.append(data)
        if self.in_bit:
            self.bits[-1][0] += data


def walk(html: str) -> _Walk:
    w = _Walk()
    w.feed(html)
    w.close()
    assert not w.stack, f"unclosed: {w.stack}"
    return w


def test_a_float_shows_a_box_a_bit_coloured_by_field():
    r = numfmt.show(3.14, "bf16")
    w = walk(r._repr_html_())
    assert "".join(b[0] for b in w.bits) == r.bits == "0100000001001001"
    assert [b[2] for b in w.bits] == [f"bit {i}" for i in range(15, -1, -1)]
    assert w.fields == ["sign", "exponent", "mantissa"]
    colours = [COLOURS["sign"]] + [COLOURS["exponent"]] * 8 + [COLOURS["mantissa"]] * 7
    assert [c in b[1] for b, c in zip(w.bits, colours, strict=True)] == [True] * 16
    text = " ".join(w.text)
    assert "(-1)^0 x 2^1 x 1.5703125 = 3.140625" in text and "128 - bias 127 = 1" in text
    assert "3.140625" in text and "rounded up" in text and "3.125" in text  # a neighbour


def test_an_integer_shows_its_twos_complement_bits():
    r = numfmt.show(-5, "int8")
    w = walk(r._repr_html_())
    assert "".join(b[0] for b in w.bits) == "11111011"
    assert w.fields[0] == "sign" and "-128 + 123 = -5" in " ".join(w.text)


def test_compare_draws_a_row_a_format_and_a_refusal_is_said():
    c = numfmt.compare(0.1, ["fp32", "bf16", "e4m3", "int8"])
    w = walk(c._repr_html_())
    assert all(r.format.name in w.text for r in c.rows) and len(w.bits) == 32 + 16 + 8 + 8
    refused = numfmt.show("nan", "int8")
    w = walk(refused._repr_html_())
    assert "refused" in " ".join(w.text) and not w.bits


def test_nothing_is_fetched():
    html = numfmt.compare(1e-3, ["fp16", "e5m2", "fp4"])._repr_html_()
    w = walk(html)
    assert not w.tags & {"script", "link", "img", "style", "iframe"}
    assert "http" not in html and "url(" not in html
