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
  m = /^q(\d+)\.(\d+)$/.exec(name);
  if (m) {
    const ib = Number(m[1]), fb = Number(m[2]), bits = 1 + ib + fb;
    if (bits > 64) throw new Error(`formats hold at most 64 bits; this one needs ${bits}`);
    return { name, kind: "fixed", bits, signed: true, intBits: ib, frac: fb };
  }
  m = /^(?:float\d+_)?e(\d+)m(\d+)(?:b(\d+))?(fn|fnuz|fnn|fnu)?$/.exec(name);
  if (!m) throw new Error(`unknown format '${text}': try bf16, e4m3fn, e3m3, int4, q3.4`);
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

// The integer a code of an int or fixed-point format stands for (two's complement).
function nfIntegerOf(f, code) {
  const w = BigInt(f.bits);
  return f.signed && code >= 1n << (w - 1n) ? code - (1n << w) : code;
}

// v / 2^frac as an exact decimal (it always has one: 2^-n = 5^n / 10^n).
function nfFixedText(v, frac) {
  const negative = v < 0n, scaled = (negative ? -v : v) * 5n ** BigInt(frac);
  let digits = scaled.toString().padStart(frac + 1, "0");
  let text = frac ? `${digits.slice(0, -frac)}.${digits.slice(-frac)}` : digits;
  if (frac) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return (negative ? "-" : "") + text;
}

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
  if (f.kind !== "float") {
    const v = nfIntegerOf(f, code);
    if (f.kind === "int") return { cls: v === 0n ? "zero" : "integer", value: Number(v), exact: v.toString() };
    const value = Number(v) * P2(-f.frac); // exact when the code has at most 53 significant bits
    return { cls: v === 0n ? "zero" : "fixed", value, exact: nfFixedText(v, f.frac) };
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

// The largest finite code's magnitude bits.
function nfMaxMagnitude(f) {
  const e = BigInt(f.e), m = BigInt(f.m);
  const allOnes = (1n << (e + m)) - 1n;
  if (f.specials === "ieee") return (((1n << e) - 2n) << m) | ((1n << m) - 1n);
  if (f.specials === "fn" || f.specials === "fnu") return allOnes - 1n;
  return allOnes; // fnuz and finite: every magnitude is a number
}

const NF_ROUNDINGS = ["nearest-even", "nearest-away", "toward-zero", "up", "down"];
const NF_ERROR = null; // a plan slot whose input is refused

// What each kind of input becomes, for a float format, rounding mode and overflow policy: a
// port of numfmt's encode.make_plan (numfmt/formats/encode.py).
function nfPlan(f, rounding, overflow) {
  const { sign, all } = nfLayout(f);
  const m = BigInt(f.m), top = nfMaxMagnitude(f);
  const quiet = f.m > 0 ? 1n << (m - 1n) : 0n;
  const nan = { ieee: (((1n << BigInt(f.e)) - 1n) << m) | quiet, fn: all & ~sign, fnuz: sign, fnu: all, finite: NF_ERROR }[f.specials];
  const signedNan = f.specials === "ieee" || f.specials === "fn";
  const nans = nan === NF_ERROR ? [NF_ERROR, NF_ERROR] : [nan, signedNan ? nan | sign : nan];
  const inf = ((1n << BigInt(f.e)) - 1n) << m;
  const beyond = nfHasInf(f) ? [inf, inf | sign] : f.specials === "finite" ? [top, top | sign] : nans;
  const saturated = [top, top | sign];
  let infs, overflows;
  if (overflow === "saturate") { infs = saturated; overflows = saturated; }
  else if (overflow === "error") { infs = nfHasInf(f) ? beyond : [NF_ERROR, NF_ERROR]; overflows = [NF_ERROR, NF_ERROR]; }
  else {
    infs = beyond; // IEEE 754 7.4: rounding toward zero (for the value's sign) gives the largest finite
    const towardZeroPos = rounding === "toward-zero" || rounding === "down";
    const towardZeroNeg = rounding === "toward-zero" || rounding === "up";
    overflows = [towardZeroPos ? saturated[0] : beyond[0], towardZeroNeg ? saturated[1] : beyond[1]];
  }
  let zeros = [0n, f.signed && f.specials !== "fnuz" ? sign : 0n];
  let negative = NF_ERROR;
  if (!f.signed) { // E8M0-like: no zero, no negatives
    const domain = overflow === "saturate" ? 0n : overflow === "error" ? NF_ERROR : nans[0];
    zeros = [domain, domain]; negative = domain; infs = [infs[0], domain];
  }
  const subn = nfHasSubnormals(f) ? 1 : 0;
  const emin = subn ? 1 - f.bias : -f.bias;
  const emax = Number(top >> m) - f.bias;
  return { m: f.m, emin, emax, subn, top, sign, rounding, nans, infs, overflows, zeros, negative };
}

// sig * 2^(e - 52) with sig in [2^52, 2^53): the float64 x > 0, exactly.
function nfSplit(a) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, a);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let sig = bits & ((1n << 52n) - 1n), e;
  if (biased === 0) { e = -1022; while (sig < 1n << 52n) { sig <<= 1n; e -= 1; } } // subnormal
  else { sig |= 1n << 52n; e = biased - 1023; }
  return { sig, e };
}

// A port of numfmt's encode_one (numfmt/formats/_core.py) for a float64 input: {code} or
// {slot} when the plan refuses the input.
function nfEncodeFloat(f, x, plan) {
  const neg = x < 0 || Object.is(x, -0);
  const pick = (pair) => pair[neg ? 1 : 0];
  const out = (code, slot) => (code === NF_ERROR ? { slot } : { code });
  if (Number.isNaN(x)) return out(pick(plan.nans), "nan");
  if (!Number.isFinite(x)) return out(pick(plan.infs), "inf");
  if (x === 0) return out(pick(plan.zeros), "zero");
  if (neg && plan.sign === 0n) return out(plan.negative, "negative");
  const { sig, e } = nfSplit(Math.abs(x));
  const p = 52, m = BigInt(plan.m);
  let es = plan.subn ? Math.max(e, plan.emin) : e;
  if (es > plan.emax) return out(pick(plan.overflows), "overflow");
  const shift = p - plan.m + (es - e);
  let q;
  if (shift <= 0) q = sig << BigInt(-shift);
  else {
    const sc = BigInt(Math.min(shift, p + 2));
    q = sig >> sc;
    const rem = sig - (q << sc), half = 1n << (sc - 1n), inexact = rem !== 0n;
    const up = {
      "nearest-even": rem > half || (rem === half && (q & 1n) === 1n),
      "nearest-away": rem >= half,
      "toward-zero": false,
      up: inexact && !neg,
      down: inexact && neg,
    }[plan.rounding];
    if (up) q += 1n;
  }
  if (!plan.subn) es = Math.max(es, plan.emin - 1); // below the smallest value: keep it
  const high = BigInt(es - plan.emin + plan.subn) << m;
  const extra = q - (1n << m);
  if (extra > plan.top - high) return out(pick(plan.overflows), "overflow");
  let mag = high + extra;
  if (mag < 0n) mag = 0n;
  if (mag === 0n && plan.subn) return out(pick(plan.zeros), "zero");
  return { code: neg ? mag | plan.sign : mag };
}

// An integer or fixed-point code: x * 2^frac rounded by the mode, then the overflow policy
// (numfmt's _encode_integer_exact).
function nfEncodeInteger(f, x, rounding, overflow) {
  if (overflow === "ieee") return { error: `overflow 'ieee' applies to float formats; ${f.name} takes wrap, saturate or error` };
  if (Number.isNaN(x)) return { error: `${f.name} has no NaN` };
  const w = BigInt(f.bits);
  const lo = f.signed ? -(1n << (w - 1n)) : 0n, hi = f.signed ? (1n << (w - 1n)) - 1n : (1n << w) - 1n;
  let n = null;
  const scaled = f.kind === "fixed" ? x * P2(f.frac) : x;
  if (Number.isFinite(scaled)) {
    const floor = Math.floor(scaled), rem = scaled - floor;
    const up = rem !== 0 && {
      "nearest-even": rem > 0.5 || (rem === 0.5 && BigInt(floor) % 2n !== 0n),
      "nearest-away": rem > 0.5 || (rem === 0.5 && x > 0),
      "toward-zero": x < 0,
      up: true,
      down: false,
    }[rounding];
    n = BigInt(floor) + (up ? 1n : 0n);
  }
  if (n === null || n < lo || n > hi) {
    if (overflow === "saturate") n = x < 0 ? lo : hi;
    else if (overflow === "wrap" && n !== null) n = n & ((1n << w) - 1n);
    else {
      const range = f.kind === "fixed" ? `${nfFixedText(lo, f.frac)} .. ${nfFixedText(hi, f.frac)}` : `${lo} .. ${hi}`;
      return { error: `${x} does not fit in ${f.name} (${range}); choose saturate or wrap` };
    }
  }
  return { code: n & ((1n << w) - 1n) };
}

const NF_REFUSED = {
  nan: (f) => `${f.name} has no NaN`,
  inf: (f) => `${f.name} has no infinity; choose overflow ieee or saturate`,
  overflow: (f) => `beyond the range of ${f.name}; choose overflow ieee or saturate`,
  zero: (f) => `${f.name} holds only positive values; choose overflow ieee (NaN) or saturate`,
  negative: (f) => `${f.name} holds only positive values; choose overflow ieee (NaN) or saturate`,
};

// The code of a float64 value, as numfmt.encode(x, f, rounding, overflow) gives it: {code}, or
// {error} where numfmt refuses. overflow null is numfmt's default (ieee for floats, error for
// integers and fixed point); stochastic rounding is left to numfmt.
function nfEncode(f, x, rounding = "nearest-even", overflow = null) {
  x = Number(x);
  if (!NF_ROUNDINGS.includes(rounding)) return { error: `unknown rounding '${rounding}'` };
  if (f.kind !== "float") return nfEncodeInteger(f, x, rounding, overflow || "error");
  overflow = overflow || "ieee";
  if (overflow === "wrap") return { error: `overflow 'wrap' applies to integer formats; ${f.name} takes ieee, saturate or error` };
  const got = nfEncodeFloat(f, x, nfPlan(f, rounding, overflow));
  return got.slot ? { error: NF_REFUSED[got.slot](f) } : got;
}

// The code of the next value below (direction -1) or above (+1) a code's, or null: a port of
// numfmt's show._neighbour (numfmt/formats/explain/show.py).
function nfNeighbour(f, code, direction) {
  code = BigInt(code);
  if (f.kind !== "float") {
    const n = nfIntegerOf(f, code) + BigInt(direction), w = BigInt(f.bits);
    const lo = f.signed ? -(1n << (w - 1n)) : 0n, hi = f.signed ? (1n << (w - 1n)) - 1n : (1n << w) - 1n;
    return n < lo || n > hi ? null : n & ((1n << w) - 1n);
  }
  const cls = nfDecode(f, code).cls;
  if (cls === "nan") return null;
  const { sign } = nfLayout(f);
  const magnitude = code & ~sign & ((1n << BigInt(f.bits)) - 1n);
  const negative = (code & sign) !== 0n;
  let next;
  if (cls === "zero") {
    if (direction > 0) next = 1n;
    else if (!f.signed) return null;
    else next = sign | 1n;
  } else if (negative === direction < 0) {
    if (magnitude + 1n > (1n << BigInt(f.e + f.m)) - 1n) return null;
    next = (magnitude + 1n) | (negative ? sign : 0n);
  } else {
    if (magnitude === 0n) return null; // the smallest value of a format without zero
    next = (magnitude - 1n) | (negative && magnitude > 1n ? sign : 0n);
  }
  return nfDecode(f, next).cls === "nan" ? null : next;
}

// The fields of a code, left to right: [{name, bits}].
function nfFields(f, code) {
  const text = BigInt(code).toString(2).padStart(f.bits, "0");
  if (f.kind === "fixed") {
    return [
      { name: "sign", bits: text[0] },
      { name: "integer", bits: text.slice(1, 1 + f.intBits) },
      { name: "fraction", bits: text.slice(1 + f.intBits) },
    ].filter((field) => field.bits.length > 0);
  }
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
const NF_COLOURS = {
  sign: "#f6c1c1", exponent: "#c4dcf7", mantissa: "#c9efc4", value: "#e6e6e6",
  integer: "#c4dcf7", fraction: "#c9efc4",
};

// The page's words: English, or Spanish on a Spanish page (<html lang="es">, or data-lang="es"
// on the explorer's div). The computations, their messages and the CSS classes stay English.
const NF_WORDS = {
  en: {
    format: "format", value: "value", rounding: "rounding", overflow: "overflow",
    defaultPolicy: "numfmt's default", wrap: "wrap (integers)",
    below: "value below", above: "value above", belowTitle: "the next value below",
    aboveTitle: "the next value above", code: "code", flip: "click to flip",
    code_: "code", value_: "value", class_: "class", neighbours: "neighbours",
    roundingError: "rounding error", relative: "relative", none: "none", self: "this",
    noValue: (up, name) => `no value ${up ? "above" : "below"} this one in ${name}`,
    fields: {}, classes: {},
  },
  es: {
    format: "formato", value: "valor", rounding: "redondeo", overflow: "desbordamiento",
    defaultPolicy: "el de numfmt por defecto", wrap: "wrap (enteros)",
    below: "valor anterior", above: "valor siguiente", belowTitle: "el valor representable anterior",
    aboveTitle: "el valor representable siguiente", code: "c\u00f3digo", flip: "haz clic para cambiarlo",
    code_: "c\u00f3digo", value_: "valor", class_: "clase", neighbours: "vecinos",
    roundingError: "error de redondeo", relative: "relativo", none: "ninguno", self: "este",
    noValue: (up, name) => `no hay ning\u00fan valor por ${up ? "encima" : "debajo"} de este en ${name}`,
    fields: {
      sign: "signo", exponent: "exponente", mantissa: "mantisa", value: "valor",
      integer: "parte entera", fraction: "fracci\u00f3n",
    },
    classes: {
      zero: "cero", integer: "entero", fixed: "coma fija", nan: "NaN", inf: "infinito",
      normal: "normal", subnormal: "subnormal",
    },
  },
};

function nfWords(root) {
  const lang = (root.dataset.lang || document.documentElement.lang || "en").slice(0, 2);
  return NF_WORDS[lang] || NF_WORDS.en;
}

function nfShow(v) {
  if (Number.isNaN(v)) return "NaN";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

function nfValueText(f, code) {
  const d = nfDecode(f, code);
  return d.exact !== undefined ? d.exact : nfShow(d.value);
}

function nfMount(root) {
  const state = { f: nfParse(root.dataset.format || "bf16"), code: 0n, rounding: "nearest-even", overflow: "" };
  state.code = nfEncode(state.f, 3.14).code;
  const w = nfWords(root);
  const options = (values, labels) => values.map((v, i) => `<option value="${v}">${labels[i]}</option>`).join("");
  root.innerHTML = `
    <p><label>${w.format} <input class="nf-format" list="nf-names" value="${state.f.name}" size="16" style="${NF_INPUT}"></label>
    <datalist id="nf-names"></datalist>
    <label>${w.value} <input class="nf-value" value="3.14" size="24" style="${NF_INPUT}"></label></p>
    <p><label>${w.rounding} <select class="nf-rounding" style="${NF_INPUT}">${options(NF_ROUNDINGS, NF_ROUNDINGS)}</select></label>
    <label>${w.overflow} <select class="nf-overflow" style="${NF_INPUT}">${options(["", "ieee", "saturate", "error", "wrap"], [w.defaultPolicy, "ieee", "saturate", "error", w.wrap])}</select></label></p>
    <p><button class="nf-prev" title="${w.belowTitle}" style="${NF_INPUT}">&larr; ${w.below}</button>
    <button class="nf-next" title="${w.aboveTitle}" style="${NF_INPUT}">${w.above} &rarr;</button>
    <button class="nf-down" title="${w.code} - 1" style="${NF_INPUT}">${w.code} &minus; 1</button>
    <button class="nf-up" title="${w.code} + 1" style="${NF_INPUT}">${w.code} + 1</button></p>
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
        b.title = `bit ${position} (${w.fields[field.name] || field.name}): ${w.flip}`;
        b.style.cssText = `width:1.6em;margin:1px;font-family:monospace;border:1px solid #888;border-radius:3px;background:${NF_COLOURS[field.name]};color:#111`;
        const p = BigInt(position);
        b.onclick = () => { state.code ^= 1n << p; render(null); };
        group.appendChild(b);
        position -= 1;
      }
      group.insertAdjacentHTML("beforeend", `<div style="font-size:0.75em;color:#555">${w.fields[field.name] || field.name}</div>`);
      boxes.appendChild(group);
    }
    const below = nfNeighbour(f, state.code, -1), above = nfNeighbour(f, state.code, 1);
    // [the row's class (nf-row-...), its label, its text]
    const rows = [
      ["code", w.code_, `0x${state.code.toString(16).toUpperCase()} = ${state.code}`],
      ["value", w.value_, nfValueText(f, state.code)],
      ["class", w.class_, w.classes[d.cls] || d.cls],
      ["neighbours", w.neighbours, `${below === null ? w.none : nfValueText(f, below)} < ${w.self} < ${above === null ? w.none : nfValueText(f, above)}`],
    ];
    if (typed !== null && Number.isFinite(typed) && Number.isFinite(d.value)) {
      const error = Math.abs(d.value - typed);
      rows.push(["rounding", w.roundingError, `${error} (${w.relative} ${typed === 0 ? 0 : error / Math.abs(typed)})`]);
    }
    root.querySelector(".nf-info").innerHTML = rows
      .map(([k, label, v]) => `<tr><td style="color:#666;padding-right:1em">${label}</td><td class="nf-row-${k}">${v}</td></tr>`)
      .join("");
  };
  const encodeTyped = () => {
    const typed = Number(root.querySelector(".nf-value").value);
    const got = nfEncode(state.f, typed, state.rounding, state.overflow || null);
    if (got.error) { err.textContent = got.error; return; }
    err.textContent = "";
    state.code = got.code;
    render(typed);
  };
  root.querySelector(".nf-format").onchange = (ev) => {
    try {
      state.f = nfParse(ev.target.value);
      state.code = 0n;
      err.textContent = "";
      encodeTyped();
      render(null);
    } catch (e) { err.textContent = e.message; }
  };
  root.querySelector(".nf-value").onchange = encodeTyped;
  root.querySelector(".nf-rounding").onchange = (ev) => { state.rounding = ev.target.value; encodeTyped(); };
  root.querySelector(".nf-overflow").onchange = (ev) => { state.overflow = ev.target.value; encodeTyped(); };
  const step = (k) => { const { all } = nfLayout(state.f); state.code = (state.code + k + all + 1n) % (all + 1n); render(null); };
  const move = (direction) => {
    const next = nfNeighbour(state.f, state.code, direction);
    if (next === null) { err.textContent = w.noValue(direction > 0, state.f.name); return; }
    err.textContent = "";
    state.code = next;
    render(null);
  };
  root.querySelector(".nf-up").onclick = () => step(1n);
  root.querySelector(".nf-down").onclick = () => step(-1n);
  root.querySelector(".nf-next").onclick = () => move(1);
  root.querySelector(".nf-prev").onclick = () => move(-1);
  render(3.14);
}

if (typeof document !== "undefined") {
  const start = () => document.querySelectorAll(".nf-explorer").forEach(nfMount);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
