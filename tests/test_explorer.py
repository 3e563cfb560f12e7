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
         "e5m2b13fnuz", "e2m1", "e5m0fnu"]  # fmt: skip


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
    if fmt.kind == "int":
        lo, hi = fmt.min_value, fmt.max_value
        span = float(hi) - float(lo)
        x = rng.uniform(float(lo) - 0.1 * span, float(hi) + 0.1 * span, size=300)
        halves = np.floor(x) + 0.5  # ties: nearest-even
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


def _expected_code(x: float, fmt) -> str:
    try:
        return str(int(numfmt.encode(x, fmt)))
    except numfmt.NumfmtError:
        return "error"


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
    page = tmp_path / "harness.html"
    page.write_text(
        "<html><body><pre id='out'></pre>"
        f"<script src='{(JS / 'formats.js').as_uri()}'></script>"
        f"<script src='{(JS / 'explorer.js').as_uri()}'></script><script>"
        f"const dec = {json.dumps(decode_cases)}, enc = {json.dumps(encode_cases)};"
        "const show = (v) => Object.is(v, -0) ? '-0' : String(v);"
        "const out = {decode: dec.map(([f, c]) => show(nfDecode(nfParse(f), BigInt(c)).value)),"
        " encode: enc.map(([f, x]) => { const r = nfEncode(nfParse(f), Number(x));"
        " return r.error ? 'error' : r.code.toString(); })};"
        "document.getElementById('out').textContent = JSON.stringify(out);"
        "</script></body></html>"
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
        "document.getElementById('out').textContent = JSON.stringify(seen);"
        "});</script></body></html>"
    )
    seen = _run(browser, page, timeout=120)
    assert seen[:5] == ["3.140625", "-3.140625", "3.25", "3.5", "3"]  # int4 rounds 3.14 to 3
    assert "at most 64 bits" in seen[5]
