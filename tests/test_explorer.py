"""The bit explorer (docs/javascripts/explorer.js) agrees with numfmt: headless Chromium runs
its decode and encode over codes and values of every named format, integers and custom eXmY
formats, and every answer is compared with numfmt.decode and numfmt.encode. Without Chromium
(Debian's ``chromium`` package) the test skips and says so."""

import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import numfmt
from numfmt.formats import NAMED
from numfmt.formats.registry import get_format

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "docs" / "javascripts"
EXTRA = ["int4", "int8", "uint8", "int16", "int32", "int64", "uint64", "e3m3", "e3m3fnn",
         "e5m2b13fnuz", "e2m1", "e5m0fnu", "q3.4", "q0.7", "q7.8", "q15.16"]  # fmt: skip
#: Formats the rounding and overflow choices are checked on: every kind of special values.
POLICY_FORMATS = ["bf16", "fp16", "e4m3fn", "e5m2", "e4m3fnuz", "fp6_e2m3", "fp4", "e8m0",
                  "e3m3fnn", "int8", "uint8", "q3.4"]  # fmt: skip
ROUNDINGS = ["nearest-even", "nearest-away", "toward-zero", "up", "down"]
OVERFLOWS = [None, "ieee", "saturate", "error", "wrap"]


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless Chromium here (apt-get install chromium): the explorer is untested")


def _codes(fmt, rng) -> list[int]:
    if fmt.bits <= 12:
        return list(range(1 << fmt.bits))
    top = (1 << fmt.bits) - 1
    edges = [0, 1, 2, top, top - 1, top >> 1, (top >> 1) + 1, (top >> 1) + 2]
    randoms = [int(x) for x in rng.integers(0, top, size=1500, dtype=np.uint64, endpoint=True)]
    return sorted(set(edges + randoms))


def _values(fmt, rng) -> list[float]:
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.0, 0.5, 2.5, -3.5, 3.14]
    if fmt.kind in ("int", "fixed"):
        lo, hi = float(fmt.min_value), float(fmt.max_value)
        step = float(fmt.resolution) if fmt.kind == "fixed" else 1.0
        span = hi - lo
        x = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=300)
        halves = (np.floor(x / step) + 0.5) * step  # ties
        return specials + [float(v) for v in np.concatenate([x, halves])]
    info = numfmt.info(fmt).to_dict()
    lo = math.log2(info["smallest"]) - 2
    hi = min(math.log2(info["max"]) + 2, 1023)
    mags = np.exp2(rng.uniform(lo, hi, size=400)) * rng.choice([-1.0, 1.0], size=400)
    # midpoints of neighbouring values: exact in float64, they test ties-to-even
    codes = np.array(_codes(fmt, rng)[:3000], dtype=np.uint64)
    vals = np.sort(np.unique(numfmt.decode(codes, fmt)))
    vals = vals[np.isfinite(vals)]
    mids = ((vals[1:] + vals[:-1]) / 2)[:600] if fmt.bits <= 16 else np.array([])
    return specials + [float(v) for v in mags] + [float(v) for v in mids]


def _expected_code(x: float, fmt, rounding="nearest-even", overflow=None) -> str:
    try:
        return str(int(numfmt.encode(x, fmt, rounding, overflow)))
    except numfmt.NumfmtError:
        return "error"


def _harness(path: Path, script: str) -> Path:
    path.write_text(
        "<html><body><pre id='out'></pre>"
        f"<script src='{(JS / 'formats.js').as_uri()}'></script>"
        f"<script src='{(JS / 'explorer.js').as_uri()}'></script><script>"
        f"{script}</script></body></html>"
    )
    return path


def _run(browser: str, page: Path, timeout: int = 300):
    """What the page wrote into its <pre id="out">, as JSON, after Chromium loaded it."""
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    found = re.search(r"<pre id=\"out\">(.*?)</pre>", done.stdout, flags=re.S)
    assert found and found.group(1), f"the page printed nothing: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def _js_number(text: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(text) or float(text)


def test_the_explorer_agrees_with_numfmt_on_every_format(tmp_path):
    browser = _browser()
    rng = np.random.default_rng(0)
    names = list(NAMED) + EXTRA
    decode_cases, encode_cases, expected_dec, expected_enc = [], [], [], []
    for name in names:
        fmt = get_format(name)
        codes = _codes(fmt, rng)
        values = numfmt.decode(np.array(codes, dtype=np.uint64), fmt)
        decode_cases += [[name, str(c)] for c in codes]
        expected_dec += [float(v) for v in np.asarray(values, dtype=np.float64)]
        for x in _values(fmt, rng):
            encode_cases.append([name, repr(x).replace("inf", "Infinity")])
            expected_enc.append(_expected_code(x, fmt))
    page = _harness(
        tmp_path / "harness.html",
        f"const dec = {json.dumps(decode_cases)}, enc = {json.dumps(encode_cases)};"
        "const show = (v) => Object.is(v, -0) ? '-0' : String(v);"
        "const out = {decode: dec.map(([f, c]) => show(nfDecode(nfParse(f), BigInt(c)).value)),"
        " encode: enc.map(([f, x]) => { const r = nfEncode(nfParse(f), Number(x));"
        " return r.error ? 'error' : r.code.toString(); })};"
        "document.getElementById('out').textContent = JSON.stringify(out);",
    )
    out = _run(browser, page)
    wrong = []
    for (name, code), got, want in zip(decode_cases, out["decode"], expected_dec, strict=True):
        value = _js_number(got)
        same = (math.isnan(value) and math.isnan(want)) or (
            value == want and math.copysign(1, value) == math.copysign(1, want)
        )
        if not same:
            wrong.append(f"decode {name} {code}: page {got}, numfmt {want!r}")
    for (name, x), got, want in zip(encode_cases, out["encode"], expected_enc, strict=True):
        if got != want:
            wrong.append(f"encode {name} {x}: page {got}, numfmt {want}")
    assert not wrong, f"{len(wrong)} disagreements, first: " + "; ".join(wrong[:8])
    assert len(decode_cases) > 15_000 and len(encode_cases) > 5_000


def test_every_rounding_and_overflow_choice_agrees_with_numfmt(tmp_path):
    """Five rounding modes times numfmt's overflow policies (its default, ieee, saturate,
    error, wrap; a policy a format does not take is refused by both) on formats with every
    kind of special values, fixed point included: the page's codes are numfmt.encode's."""
    browser = _browser()
    rng = np.random.default_rng(1)
    cases, expected = [], []
    for name in POLICY_FORMATS:
        fmt = get_format(name)
        values = _values(fmt, rng)
        values = [values[i] for i in sorted(rng.choice(len(values), 160, replace=False))]
        for rounding in ROUNDINGS:
            for overflow in OVERFLOWS:
                for x in values:
                    cases.append([name, repr(x).replace("inf", "Infinity"), rounding, overflow])
                    expected.append(_expected_code(x, fmt, rounding, overflow))
    page = _harness(
        tmp_path / "policies.html",
        f"const cases = {json.dumps(cases)};"
        "const out = cases.map(([f, x, r, o]) => { const got = nfEncode(nfParse(f), Number(x), r, o);"
        " return got.error ? 'error' : got.code.toString(); });"
        "document.getElementById('out').textContent = JSON.stringify(out);",
    )
    out = _run(browser, page)
    wrong = [
        f"encode {name} {x} {rounding} {overflow}: page {got}, numfmt {want}"
        for (name, x, rounding, overflow), got, want in zip(cases, out, expected, strict=True)
        if got != want
    ]
    assert not wrong, f"{len(wrong)} disagreements, first: " + "; ".join(wrong[:8])
    assert len(cases) > 45_000 and expected.count("error") > 1000


def test_the_neighbours_are_numfmts(tmp_path):
    """Stepping by value: the code of the next value below and above, as numfmt.show_code
    gives them (zero to the smallest negative, the largest finite to infinity, none past the
    ends or from NaN)."""
    browser = _browser()
    rng = np.random.default_rng(2)
    cases, expected = [], []
    for name in [*POLICY_FORMATS, "fp32", "e5m0fnu", "int4", "q0.7"]:
        fmt = get_format(name)
        codes = _codes(fmt, rng)
        if len(codes) > 400:
            codes = sorted({*codes[:8], *rng.choice(codes, 400, replace=False).tolist()})
        for code in codes:
            shown = numfmt.show_code(int(code), fmt)
            for direction, neighbour in ((-1, shown.below), (1, shown.above)):
                cases.append([name, str(code), direction])
                expected.append("none" if neighbour is None else str(neighbour.code))
    page = _harness(
        tmp_path / "neighbours.html",
        f"const cases = {json.dumps(cases)};"
        "const out = cases.map(([f, c, d]) => { const n = nfNeighbour(nfParse(f), BigInt(c), d);"
        " return n === null ? 'none' : n.toString(); });"
        "document.getElementById('out').textContent = JSON.stringify(out);",
    )
    out = _run(browser, page)
    wrong = [
        f"{name} code {code} {direction:+d}: page {got}, numfmt {want}"
        for (name, code, direction), got, want in zip(cases, out, expected, strict=True)
        if got != want
    ]
    assert not wrong, f"{len(wrong)} disagreements, first: " + "; ".join(wrong[:8])
    assert len(cases) > 5_000 and expected.count("none") > 10


def test_the_page_flips_bits_changes_format_and_steps(tmp_path):
    browser = _browser()
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><div class='nf-explorer' data-format='bf16'></div><pre id='out'></pre>"
        f"<script src='{(JS / 'formats.js').as_uri()}'></script>"
        f"<script src='{(JS / 'explorer.js').as_uri()}'></script><script>"
        "document.addEventListener('DOMContentLoaded', () => {"  # after the page mounts
        "const root = document.querySelector('.nf-explorer'), seen = [];"
        "const value = () => root.querySelector('.nf-row-value').textContent;"
        "seen.push(value());"
        "root.querySelector(\"[data-position='15']\").click(); seen.push(value());"
        "const f = root.querySelector('.nf-format'); f.value = 'e4m3fn'; f.onchange({target: f});"
        "seen.push(value());"
        "root.querySelector('.nf-up').click(); seen.push(value());"
        "f.value = 'int4'; f.onchange({target: f}); seen.push(value());"
        "f.value = 'e9m99'; f.onchange({target: f});"
        "seen.push(root.querySelector('.nf-error').textContent);"
        "const v = root.querySelector('.nf-value'), pick = (cls, x) => {"
        " const el = root.querySelector(cls); el.value = x; el.onchange({target: el}); };"
        "pick('.nf-format', 'q3.4'); seen.push(value());"  # fixed point: 3.14 -> 50/16
        "root.querySelector('.nf-next').click(); seen.push(value());"  # the value above
        "pick('.nf-format', 'q3.4'); pick('.nf-rounding', 'up'); seen.push(value());"
        "pick('.nf-format', 'fp16'); v.value = '70000'; v.onchange(); seen.push(value());"
        "root.querySelector('.nf-prev').click(); seen.push(value());"  # below inf: 65504
        "pick('.nf-overflow', 'saturate'); seen.push(value());"
        "pick('.nf-format', 'int8'); pick('.nf-overflow', 'error');"
        "seen.push(root.querySelector('.nf-error').textContent);"
        "document.getElementById('out').textContent = JSON.stringify(seen);"
        "});</script></body></html>"
    )
    seen = _run(browser, page, timeout=120)
    assert seen[:5] == ["3.140625", "-3.140625", "3.25", "3.5", "3"]  # int4 rounds 3.14 to 3
    assert "at most 64 bits" in seen[5]
    assert seen[6:12] == ["3.125", "3.1875", "3.1875", "Infinity", "65504", "65504"]
    assert "does not fit in int8" in seen[12]


def test_the_spanish_page_labels_its_controls_in_spanish_with_the_same_answers(tmp_path):
    """docs/explorer.es.md mounts the explorer with data-lang="es": the labels, fields and
    classes in Spanish, the values and the classes the tests read unchanged."""
    browser = _browser()
    page = tmp_path / "es.html"
    page.write_text(
        "<html lang='es'><body><div class='nf-explorer' data-format='bf16' data-lang='es'></div>"
        "<pre id='out'></pre>"
        f"<script src='{(JS / 'formats.js').as_uri()}'></script>"
        f"<script src='{(JS / 'explorer.js').as_uri()}'></script><script>"
        "document.addEventListener('DOMContentLoaded', () => {"
        "const root = document.querySelector('.nf-explorer');"
        "const text = (sel) => [...root.querySelectorAll(sel)].map((e) => e.textContent.trim());"
        "const seen = {labels: text('label'), buttons: text('button:not(.nf-bit)'),"
        " fields: text('.nf-boxes div'), rows: text('.nf-info td'),"
        " value: root.querySelector('.nf-row-value').textContent};"
        "root.querySelector('.nf-format').value = 'e8m0';"
        "root.querySelector('.nf-format').onchange({target: root.querySelector('.nf-format')});"
        "for (let i = 0; i < 300; i++) root.querySelector('.nf-next').click();"
        "seen.error = root.querySelector('.nf-error').textContent;"
        "document.getElementById('out').textContent = JSON.stringify(seen);"
        "});</script></body></html>"
    )
    seen = _run(browser, page, timeout=120)
    assert seen["value"] == "3.140625"
    assert [label.split()[0] for label in seen["labels"]] == [
        "formato", "valor", "redondeo", "desbordamiento"
    ]  # fmt: skip
    assert "valor anterior" in seen["buttons"][0] and "valor siguiente" in seen["buttons"][1]
    assert seen["fields"] == ["signo", "exponente", "mantisa"]
    assert seen["rows"][:6] == ["código", "0x4049 = 16457", "valor", "3.140625", "clase", "normal"]
    assert seen["error"] == "no hay ningún valor por encima de este en float8_e8m0fnu"
