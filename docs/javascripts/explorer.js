// numfmt's bit explorer: any float (eXmY with numfmt's special-value conventions) or
// integer format, decoded and encoded in the page, offline. The rules are numfmt's
// (numfmt/formats/types.py, decode.py, encode.py); tests/docs/test_explorer.py drives this
// file in headless Chromium and compares every answer with numfmt.decode and numfmt.encode.
"use strict";

const NF_SPECIALS = { "": "ieee", fn: "fn", fnuz: "fnuz", fnn: "finite", fnu: "fnu" };

// A format from its name: a named one (NF_NAMED, generated from numfmt's registry), eXmY
// with an optional bias bB and suffix, or intN / uintN.
function nfParse(text) {
  const name = String(text).trim().toLowerCase();
  const named = (typeof NF_NAMED !== "undefined" && NF_NAMED[name]) || null;
  if (named) return named;
  let m = /^(u?)int(\d+)$/.exec(name);
  if (m) {
    const bits = Number(m[2]);
    if (bits < 1 || bits > 64) throw new Error(`integers have 1 to 64 bits, not ${bits}`);
    if (m[1] === "" && bits < 2) throw new Error("a signed integer needs 2 bits");
    return { name, kind: "int", bits, signed: m[1] === "" };
  }
  m = /^(?:float\d+_)?e(\d+)m(\d+)(?:b(\d+))?(fn|fnuz|fnn|fnu)?$/.exec(name);
  if (!m) throw new Error(`unknown format '${text}': try bf16, e4m3fn, e3m3, int4`);
  const e = Number(m[1]), mant = Number(m[2]), specials = NF_SPECIALS[m[4] || ""];
  if (e < 1) throw new Error("a float needs at least 1 exponent bit");
  if (specials === "ieee" && mant === 0) throw new Error("an IEEE-style format needs a mantissa bit");
  const bias = m[3] !== undefined ? Number(m[3]) : specials === "fnuz" ? 2 ** (e - 1) : 2 ** (e - 1) - 1;
  const signed = specials !== "fnu";
  const bits = (signed ? 1 : 0) + e + mant;
  if (bits > 64) throw new Error(`formats hold at most 64 bits; this one needs ${bits}`);
  return { name, kind: "float", e, m: mant, bias, specials, signed, bits };
}

const P2 = (k) => Math.pow(2, k); // exact for integer k in [-1074, 1023]

function nfLayout(f) {
  const bits = BigInt(f.bits);
  const sign = f.kind === "float" && f.signed ? 1n << (bits - 1n) : 0n;
  return { sign, all: (1n << bits) - 1n };
}

function nfHasInf(f) { return f.kind === "float" && f.specials === "ieee"; }
function nfHasNaN(f) { return f.kind === "float" && f.specials !== "finite"; }
function nfHasSubnormals(f) { return f.kind === "float" && f.specials !== "fnu"; }

// {cls, value} of a code (a BigInt): cls is zero, subnormal, normal, inf, nan or integer.
function nfDecode(f, code) {
  code = BigInt(code);
  const { sign, all } = nfLayout(f);
  if (code < 0n || code > all) throw new Error(`a code of ${f.bits} bits is 0 to ${all}`);
  if (f.kind === "int") {
    let v = code;
    if (f.signed && code >= 1n << BigInt(f.bits - 1)) v = code - (1n << BigInt(f.bits));
    return { cls: v === 0n ? "zero" : "integer", value: Number(v), exact: v.toString() };
  }
  const e = BigInt(f.e), m = BigInt(f.m);
  const negative = (code & sign) !== 0n;
  const magnitude = code & ~sign & all;
  const biased = magnitude >> m;
  const mant = magnitude & ((1n << m) - 1n);
  const topExp = (1n << e) - 1n;
  const allOnes = (1n << (e + m)) - 1n;
  const nan = {
    ieee: biased === topExp && mant !== 0n,
    fn: magnitude === allOnes,
    fnuz: code === sign,
    finite: false,
    fnu: magnitude === allOnes,
  }[f.specials];
  if (nan) return { cls: "nan", value: NaN };
  const s = negative ? -1 : 1;
  if (nfHasInf(f) && biased === topExp) return { cls: "inf", value: s * Infinity };
  if (!nfHasSubnormals(f)) {
    const v = (P2(f.m) + Number(mant)) * P2(Number(biased) - f.bias - f.m);
    return { cls: "normal", value: s * v };
  }
  if (magnitude === 0n) return { cls: "zero", value: negative ? -0 : 0 };
  if (biased === 0n) return { cls: "subnormal", value: s * Number(mant) * P2(1 - f.bias - f.m) };
  return { cls: "normal", value: s * (P2(f.m) + Number(mant)) * P2(Number(biased) - f.bias - f.m) };
}

function nfHalfEven(q) { // q >= 0, below 2^53
  const fl = Math.floor(q), d = q - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

function nfExponent(a) { // floor(log2 a) for a finite a > 0, exactly
  let e = Math.floor(Math.log2(a));
  while (P2(e) > a) e -= 1;
  while (P2(e + 1) <= a) e += 1;
  return e;
}

// The largest finite code's magnitude bits.
function nfMaxMagnitude(f) {
  const e = BigInt(f.e), m = BigInt(f.m);
  const allOnes = (1n << (e + m)) - 1n;
  if (f.specials === "ieee") return (((1n << e) - 2n) << m) | ((1n << m) - 1n);
  if (f.specials === "fn" || f.specials === "fnu") return allOnes - 1n;
  return allOnes; // fnuz and finite: every magnitude is a number
}

// The code of a float64 value under numfmt's defaults (nearest-even; overflow: inf for
// IEEE formats, NaN for fn/fnuz/fnu, the largest value for finite formats; integers
// refuse what does not fit). Returns {code} or {error}.
function nfEncode(f, x) {
  x = Number(x);
  const { sign, all } = nfLayout(f);
  if (f.kind === "int") {
    if (!Number.isFinite(x)) return { error: `${f.name} has no ${x}` };
    const r = Math.sign(x) * nfHalfEven(Math.abs(x));
    const lo = f.signed ? -(2 ** (f.bits - 1)) : 0, hi = f.signed ? 2 ** (f.bits - 1) - 1 : 2 ** f.bits - 1;
    if (r < lo || r > hi) return { error: `${x} does not fit in ${f.name} (${lo} .. ${hi})` };
    const v = BigInt(r);
    return { code: v < 0n ? v + (1n << BigInt(f.bits)) : v };
  }
  const m = BigInt(f.m);
  const quiet = f.m > 0 ? 1n << (m - 1n) : 0n; // IEEE formats have a mantissa bit
  const nanCode = { ieee: (((1n << BigInt(f.e)) - 1n) << m) | quiet, fn: all & ~sign, fnuz: sign, fnu: all }[f.specials];
  const negative = x < 0 || Object.is(x, -0);
  const sbit = negative ? sign : 0n;
  if (Number.isNaN(x)) return nfHasNaN(f) ? { code: nanCode } : { error: `${f.name} has no NaN` };
  if (!f.signed && (negative || x === 0)) return { code: nanCode };
  const overflow = () => {
    if (f.specials === "ieee") return { code: sbit | (((1n << BigInt(f.e)) - 1n) << m) };
    if (f.specials === "finite") return { code: sbit | nfMaxMagnitude(f) };
    if (f.specials === "fn") return { code: sbit | nanCode }; // NaN keeps the sign
    return { code: nanCode };
  };
  const a = Math.abs(x);
  if (a === Infinity) return overflow();
  if (a === 0) return { code: f.specials === "fnuz" ? 0n : sbit }; // fnuz has no -0
  const emin = nfHasSubnormals(f) ? 1 - f.bias : -f.bias;
  let e = nfExponent(a);
  if (e < emin) {
    if (!nfHasSubnormals(f)) return { code: 0n }; // no zero: the smallest value
    e = emin;
  }
  let r = nfHalfEven(a / P2(e - f.m));
  if (r >= P2(f.m + 1)) { r /= 2; e += 1; }
  let magnitude;
  if (r < P2(f.m)) magnitude = BigInt(r); // a subnormal (or zero)
  else magnitude = (BigInt(e + f.bias) << m) | BigInt(r - P2(f.m));
  if (magnitude > nfMaxMagnitude(f)) return overflow();
  if (magnitude === 0n) return { code: f.specials === "fnuz" ? 0n : sbit };
  return { code: sbit | magnitude };
}

// The fields of a code, left to right: [{name, bits}].
function nfFields(f, code) {
  const text = BigInt(code).toString(2).padStart(f.bits, "0");
  if (f.kind === "int") return f.signed ? [{ name: "sign", bits: text[0] }, { name: "value", bits: text.slice(1) }] : [{ name: "value", bits: text }];
  const out = [];
  let at = 0;
  if (f.signed) { out.push({ name: "sign", bits: text[0] }); at = 1; }
  out.push({ name: "exponent", bits: text.slice(at, at + f.e) });
  if (f.m > 0) out.push({ name: "mantissa", bits: text.slice(at + f.e) });
  return out;
}

// ---- the page ---------------------------------------------------------------------------
const NF_INPUT = "border:1px solid #888;border-radius:3px;padding:2px 6px;margin-right:8px";
const NF_COLOURS = { sign: "#f6c1c1", exponent: "#c4dcf7", mantissa: "#c9efc4", value: "#e6e6e6" };

function nfShow(v) {
  if (Number.isNaN(v)) return "NaN";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

function nfMount(root) {
  const state = { f: nfParse(root.dataset.format || "bf16"), code: 0n };
  state.code = nfEncode(state.f, 3.14).code;
  root.innerHTML = `
    <p><label>format <input class="nf-format" list="nf-names" value="${state.f.name}" size="16" style="${NF_INPUT}"></label>
    <datalist id="nf-names"></datalist>
    <label>value <input class="nf-value" value="3.14" size="24" style="${NF_INPUT}"></label>
    <button class="nf-down" title="code - 1" style="${NF_INPUT}">code &minus; 1</button>
    <button class="nf-up" title="code + 1" style="${NF_INPUT}">code + 1</button></p>
    <div class="nf-boxes" style="white-space:nowrap;overflow-x:auto"></div>
    <table class="nf-info" style="font-size:0.9em"></table>
    <p class="nf-error" style="color:#b00020"></p>`;
  const names = root.querySelector("#nf-names");
  if (typeof NF_NAMED !== "undefined") {
    for (const n of Object.keys(NF_NAMED)) names.insertAdjacentHTML("beforeend", `<option value="${n}">`);
  }
  const err = root.querySelector(".nf-error");
  const render = (typed) => {
    const f = state.f, d = nfDecode(f, state.code);
    const boxes = root.querySelector(".nf-boxes");
    boxes.innerHTML = "";
    let position = f.bits - 1;
    for (const field of nfFields(f, state.code)) {
      const group = document.createElement("span");
      group.style.cssText = "display:inline-block;margin-right:8px;text-align:center";
      for (const bit of field.bits) {
        const b = document.createElement("button");
        b.className = "nf-bit";
        b.dataset.position = String(position);
        b.textContent = bit;
        b.title = `bit ${position} (${field.name}): click to flip`;
        b.style.cssText = `width:1.6em;margin:1px;font-family:monospace;border:1px solid #888;border-radius:3px;background:${NF_COLOURS[field.name]};color:#111`;
        const p = BigInt(position);
        b.onclick = () => { state.code ^= 1n << p; render(null); };
        group.appendChild(b);
        position -= 1;
      }
      group.insertAdjacentHTML("beforeend", `<div style="font-size:0.75em;color:#555">${field.name}</div>`);
      boxes.appendChild(group);
    }
    const rows = [
      ["code", `0x${state.code.toString(16).toUpperCase()} = ${state.code}`],
      ["value", nfShow(d.value)],
      ["class", d.cls],
    ];
    if (typed !== null && Number.isFinite(typed) && Number.isFinite(d.value)) {
      const error = Math.abs(d.value - typed);
      rows.push(["rounding error", `${error} (relative ${typed === 0 ? 0 : error / Math.abs(typed)})`]);
    }
    root.querySelector(".nf-info").innerHTML = rows
      .map(([k, v]) => `<tr><td style="color:#666;padding-right:1em">${k}</td><td class="nf-row-${k.split(" ")[0]}">${v}</td></tr>`)
      .join("");
  };
  root.querySelector(".nf-format").onchange = (ev) => {
    try {
      state.f = nfParse(ev.target.value);
      state.code = 0n;
      err.textContent = "";
      root.querySelector(".nf-value").onchange();
    } catch (e) { err.textContent = e.message; }
  };
  root.querySelector(".nf-value").onchange = () => {
    const typed = Number(root.querySelector(".nf-value").value);
    const got = nfEncode(state.f, typed);
    if (got.error) { err.textContent = got.error; return; }
    err.textContent = "";
    state.code = got.code;
    render(typed);
  };
  const step = (k) => { const { all } = nfLayout(state.f); state.code = (state.code + k + all + 1n) % (all + 1n); render(null); };
  root.querySelector(".nf-up").onclick = () => step(1n);
  root.querySelector(".nf-down").onclick = () => step(-1n);
  render(3.14);
}

if (typeof document !== "undefined") {
  const start = () => document.querySelectorAll(".nf-explorer").forEach(nfMount);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
