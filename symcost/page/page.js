// The page: a control per free dim, the numbers at the current sizes, a breakdown, a plot.
// Every number comes from the compiled closed forms above (SPEC, DERIVE, CHECKS, COMPONENTS,
// INPUTS, BYTES) over exact rationals; a point that breaks a constraint is never shown.
"use strict";

const FREE = SPEC.free.map(d => d.name);
const RATES = SPEC.free.filter(d => d.rate).map(d => d.name);  // rationals in [0, 1), typed only
const SIZES = FREE.filter(name => !RATES.includes(name));  // integers, with a slider and a plot axis
const TOTALS = ["params", "active_params", "forward", "backward"];  // the summed metrics, in COMPONENTS' order
const UNIT = SPEC.input_unit;

class Problem extends Error {
  constructor(message, field = null) { super(message); this.field = field; }
}

// -- exact evaluation ----------------------------------------------------------------

function filled(check, v) {  // as checks.Check.failure: a number of more than 40 digits by its first ones
  const args = check.args(v);
  let i = 0;
  return check.message.replace(/\{\}/g, () => {
    const text = show(args[i++]);
    return text.length <= 40 || !isWhole(args[i - 1]) ? text
      : `${text.slice(0, 12)}… (${text.replace("-", "").length} digits)`;
  });
}

function held(check, v) {
  if (!check.holds(v)) throw new Problem(`${check.where}/${check.field}: ${filled(check, v)}`, check.deps);
}

// Every dim's value (free dims as given, derived ones from them); `only`: check only the
// constraints that depend on that free dim (the others held at a point already checked).
function point(values, only = null) {
  const v = Object.create(null);  // keyed by dim names: none may meet Object's own (constructor, …)
  for (const name of FREE) v[name] = RATES.includes(name) ? values[name] : q(values[name]);
  try {
    DERIVE(v);
    for (const c of CHECKS) if (only === null || c.deps.includes(only)) held(c, v);
  } catch (e) {
    if (e instanceof Problem) throw e;
    throw new Problem(`these sizes cannot be evaluated (${e.message})`);
  }
  return v;
}

function numbers(v) {
  const parts = COMPONENTS.map(c => ({path: c.path, kind: c.kind, values: c.f(v)}));
  const total = TOTALS.map((_, i) => add(...parts.map(p => p.values[i])));
  const inputs = INPUTS(v);
  const train = add(total[2], total[3]);
  const bytes = {};
  for (const [name, f] of Object.entries(BYTES)) bytes[name] = f(v);
  return {parts, total, train, inputs, bytes,
          perInput: {forward: mul(total[2], pow(inputs, -1)), train: mul(train, pow(inputs, -1))}};
}

function flopsOf(forward, backward) {  // the `flops` group of a document, as decimal strings
  return {forward: show(forward), backward: show(backward), train: show(add(forward, backward))};
}

function parseSize(name, raw) {
  const text = String(raw).trim();
  if (!/^[0-9]+$/.test(text)) throw new Problem(`${name} must be a positive integer, got ${JSON.stringify(text)}`);
  const x = BigInt(text);
  if (x <= 0n) throw new Problem(`${name} must be a positive integer, got ${text}`);
  if (x >= 10n ** 18n) throw new Problem(`${name} must be below 10**18, as every size symcost reads`);
  return x;
}

// A rate as eval reads it: 0.1 (exactly 1/10), 0, or n/d; in [0, 1).
function parseRate(name, raw) {
  const text = String(raw).trim();
  let x = null;
  const frac = /^([0-9]{1,18})\/([0-9]{1,18})$/.exec(text), dec = /^([0-9]{0,18})(?:\.([0-9]{1,18}))?$/.exec(text);
  if (frac && BigInt(frac[2]) > 0n) x = q(BigInt(frac[1]), BigInt(frac[2]));
  else if (dec && (dec[1] || dec[2])) {
    const digits = dec[2] || "";
    x = q(BigInt((dec[1] || "0") + digits), 10n ** BigInt(digits.length));
  }
  if (x === null || x.n >= x.d) throw new Problem(`${name} is a rate: a number in [0, 1), e.g. 0.1; got ${JSON.stringify(text)}`);
  return x;
}

function parseValue(name, raw) { return RATES.includes(name) ? parseRate(name, raw) : parseSize(name, raw); }

// window.symcost.evaluate({dim: value, …}): eval's numbers as decimal strings (free dims not
// given keep the spec's defaults); an Error with the reason where the sizes are not valid.
function evaluate(given = {}) {
  const values = Object.create(null);
  for (const d of SPEC.free) values[d.name] = parseValue(d.name, d.default);
  for (const [name, raw] of Object.entries(given)) {
    if (!FREE.includes(name)) {
      const derived = SPEC.derived.find(d => d.name === name);
      throw new Problem(derived ? `${name} is derived (${derived.definition}); set the dims it is made of`
                                : `no such dim ${name}; the page's dims: ${FREE.join(", ")}`);
    }
    values[name] = parseValue(name, raw);
  }
  const v = point(values);
  const n = numbers(v);
  const out = {
    dims: Object.fromEntries(Object.keys(v).map(k => [k, RATES.includes(k) ? pyRepr(toDouble(v[k])) : show(v[k])])),
    inputs: show(n.inputs),
    // eval --format json's shape (metrics.shaped), its integers as decimal strings
    params: show(n.total[0]), active_params: show(n.total[1]), flops: flopsOf(n.total[2], n.total[3]),
    flops_per_input: {forward: jsonNumber(n.perInput.forward), train: jsonNumber(n.perInput.train)},
    components: n.parts.map(p => ({path: p.path, kind: p.kind, params: show(p.values[0]),
      active_params: show(p.values[1]), flops: flopsOf(p.values[2], p.values[3])})),
  };
  for (const [name, x] of Object.entries(n.bytes)) out[name] = show(x);
  return out;
}

// -- formatting ----------------------------------------------------------------------

const SUFFIXES = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
function grouped(x) { return x.n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
function human(x) {  // as symcost's text output: K, M, B, T, then scientific
  const value = toDouble(x);
  if (Math.abs(value) >= 1e15) {
    const [m, e] = value.toExponential(2).split("e");
    return `${m}e${Number(e)}`;
  }
  for (const [scale, suffix] of SUFFIXES) if (Math.abs(value) >= scale) return (value / scale).toFixed(2) + suffix;
  return isWhole(x) ? grouped(x) : value.toPrecision(6);
}
function bytesHuman(x) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let value = toDouble(x), i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  return i === 0 ? `${value} B` : `${value.toFixed(2)} ${units[i]}`;
}
function exactText(x) { return isWhole(x) ? grouped(x) : toDouble(x).toPrecision(8); }

// -- the controls --------------------------------------------------------------------

const state = {values: Object.create(null), lists: Object.create(null), plotted: null};
for (const d of SPEC.free) state.values[d.name] = parseValue(d.name, d.start);

// Sizes a slider may stop at: around the default, in power-of-two steps (at most ~1,024).
function grid(name) {
  const d = Number(SPEC.free.find(x => x.name === name).default);
  const lo = Math.max(1, Math.floor(d / 16)), hi = Math.max(d * 16, 64);
  let step = 1;
  while ((hi - lo) / step > 1024) step *= 2;
  const xs = new Set([BigInt(d), state.values[name]]);
  for (let k = Math.ceil(lo / step); k * step <= hi; k++) xs.add(BigInt(k * step));
  return [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function accepts(name, x) {
  try { point({...state.values, [name]: x}, name); return true; } catch (e) { return false; }
}

function list(name) {  // the grid's sizes every constraint accepts, the other dims as they are
  if (!state.lists[name]) state.lists[name] = grid(name).filter(x => x === state.values[name] || accepts(name, x));
  return state.lists[name];
}

function sync(name) {  // the slider under the current value
  const slider = document.getElementById(`range-${name}`), xs = list(name);
  slider.max = String(xs.length - 1);
  slider.value = String(Math.max(0, xs.indexOf(state.values[name])));
}

function mark(input, reason) {
  const box = input.closest(".dim").querySelector(".reason");
  box.textContent = reason || "";
  if (reason) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
}

function accept(name, x) {
  state.values[name] = x;
  for (const other of SIZES) if (other !== name) state.lists[other] = null;
  if (SIZES.includes(name) && !list(name).includes(x)) state.lists[name] = null;
  render();
}

// A typed value: taken if every constraint accepts it, else the field says why.
function typed(name) {
  const input = document.getElementById(`dim-${name}`);
  let x;
  try {
    x = parseValue(name, input.value);
    point({...state.values, [name]: x});
  } catch (e) {
    mark(input, e.message);
    return false;
  }
  mark(input, null);
  const rate = RATES.includes(name);
  if (rate ? cmp(x, state.values[name]) !== 0 : x !== state.values[name]) accept(name, x);
  if (!rate) sync(name);
  return true;
}

function buildControls() {
  const form = document.getElementById("controls");
  for (const name of FREE) {
    const row = document.createElement("div");
    row.className = "dim";
    row.innerHTML = `<label for="dim-${name}"></label><input type="text" inputmode="numeric" spellcheck="false"
      id="dim-${name}"><input type="range" min="0" step="1" id="range-${name}"><span class="reason" role="alert"></span>`;
    row.querySelector("label").textContent = name;
    const input = row.querySelector("input[type=text]"), slider = row.querySelector("input[type=range]");
    input.name = name;
    input.addEventListener("input", () => {
      if (typed(name)) for (const other of FREE) {  // a field refused before may fit now
        const field = document.getElementById(`dim-${other}`);
        if (other !== name && field.getAttribute("aria-invalid") === "true") typed(other);
      }
    });
    form.appendChild(row);
    if (RATES.includes(name)) {  // a probability: typed as written, no slider over sizes
      input.value = SPEC.free.find(d => d.name === name).start;
      input.inputMode = "decimal";
      slider.remove();
      continue;
    }
    input.value = state.values[name].toString();
    slider.setAttribute("aria-label", `${name} (slider)`);
    const fresh = () => sync(name);
    slider.addEventListener("pointerdown", fresh);
    slider.addEventListener("focus", fresh);
    slider.addEventListener("input", () => {
      const x = list(name)[Number(slider.value)];
      input.value = x.toString();
      mark(input, null);
      accept(name, x);
    });
  }
  for (const name of SIZES) sync(name);
}

// -- the numbers, the breakdown, the plot -------------------------------------------------

const METRIC_ROWS = [  // names and labels from symcost's one table (metrics.py), as SPEC.labels carries them
  ["params", n => n.total[0]],
  ["active_params", n => n.total[1]],
  ["forward", n => n.total[2]],
  ["backward", n => n.total[3]],
  ["train", n => n.train],
  ["forward_per_input", n => n.perInput.forward],
  ["train_per_input", n => n.perInput.train],
].map(([name, get]) => [name, SPEC.labels[name].replace(/per token$/, `per ${UNIT}`), get]).concat(
  SPEC.shown_bytes.map(m => [m, SPEC.labels[m], n => n.bytes[m], true]));
const dense = SPEC.dense;

function buildMetrics() {
  const dl = document.getElementById("metrics");
  const rows = METRIC_ROWS.filter(r => !(dense && r[0] === "active_params"));
  for (const [name, text] of rows) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = text;
    dd.dataset.metric = name;
    dl.append(dt, dd);
  }
  const dt = document.createElement("dt"), dd = document.createElement("dd");
  dt.textContent = `uses per weight per ${UNIT}`;
  dd.dataset.metric = "uses_per_weight";
  dl.append(dt, dd);
  const select = document.getElementById("plot-metric");
  for (const [name, text] of rows) select.add(new Option(text, name));
  select.value = "forward";
  const dims = document.getElementById("plot-dim");
  for (const name of SIZES) dims.add(new Option(name, name));
  dims.value = SIZES.includes("seq_len") ? "seq_len" : SIZES.includes("image_size") ? "image_size" : SIZES[0];
  select.addEventListener("change", drawPlot);
  dims.addEventListener("change", drawPlot);
}

function render() {
  const v = point(state.values);
  const n = numbers(v);
  for (const [name, , get, isBytes] of METRIC_ROWS) {
    const dd = document.querySelector(`dd[data-metric="${name}"]`);
    if (!dd) continue;
    const x = get(n);
    dd.dataset.exact = isWhole(x) ? x.n.toString() : show(x);
    dd.innerHTML = "";
    dd.append(exactText(x));
    const extra = document.createElement("span");
    extra.className = "human";
    extra.textContent = isBytes ? `(${bytesHuman(x)})` : (toDouble(x) >= 1000 ? `(${human(x)})` : "");
    dd.append(extra);
  }
  const reuse = document.querySelector('dd[data-metric="uses_per_weight"]');
  const active = n.total[1];
  reuse.textContent = active.n === 0n ? "-"
    : (toDouble(n.total[2]) / (SPEC.flops_per_mac * toDouble(n.inputs) * toDouble(active))).toFixed(2);
  document.getElementById("derived").textContent = SPEC.derived.map(d => `${d.name} = ${d.definition} = ${show(v[d.name])}`).join("; ");
  drawTable(n);
  drawChart(n);
  drawPlot();
}

function drawTable(n) {
  const head = document.querySelector("#components thead"), body = document.querySelector("#components tbody");
  const cols = ["component", "type", "params", ...(dense ? [] : ["active params"]), "forward FLOPs", "share"];
  head.innerHTML = "<tr></tr>";
  for (const c of cols) { const th = document.createElement("th"); th.textContent = c; head.firstChild.append(th); }
  body.innerHTML = "";
  const forward = n.total[2];
  for (const p of n.parts) {
    const tr = document.createElement("tr");
    const share = forward.n === 0n ? "-" : `${(100 * toDouble(p.values[2]) / toDouble(forward)).toFixed(1)}%`;
    const cells = [p.path, p.kind, grouped(p.values[0]), ...(dense ? [] : [grouped(p.values[1])]), grouped(p.values[2]), share];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i >= 2) td.className = "num";
      tr.append(td);
    });
    body.append(tr);
  }
}

function drawChart(n) {
  const chart = document.getElementById("chart");
  const params = toDouble(n.total[0]) || 1, forward = toDouble(n.total[2]) || 1;
  const width = 560, row = 30, left = 210, room = width - left - 60;
  const shown = n.parts.filter(p => p.values[0].n !== 0n || p.values[2].n !== 0n);
  let svg = `<svg viewBox="0 0 ${width} ${row * shown.length + 6}" role="img" aria-label="share of parameters and of forward FLOPs per component">`;
  shown.forEach((p, i) => {
    const y = i * row + 4, a = toDouble(p.values[0]) / params, b = toDouble(p.values[2]) / forward;
    const name = p.path.length > 34 ? "…" + p.path.slice(-33) : p.path;
    svg += `<text x="0" y="${y + 17}"><title>${p.path} (${p.kind})</title>${name}</text>`;
    svg += `<rect class="params" x="${left}" y="${y + 2}" width="${Math.max(a * room, 0.5)}" height="11"></rect>`;
    svg += `<rect class="flops" x="${left}" y="${y + 14}" width="${Math.max(b * room, 0.5)}" height="11"></rect>`;
    svg += `<text x="${left + a * room + 4}" y="${y + 12}">${(100 * a).toFixed(1)}%</text>`;
    svg += `<text x="${left + b * room + 4}" y="${y + 24}">${(100 * b).toFixed(1)}%</text>`;
  });
  chart.innerHTML = svg + "</svg>";
}

// At most six of `ticks`, evenly spaced; the two ends when there are fewer than two.
function thinned(ticks, lo, hi) {
  return ticks.length < 2 ? [lo, hi] : ticks.filter((_, i) => i % Math.ceil(ticks.length / 6) === 0);
}

// Powers of two between lo and hi: the x axis (sizes), and the y axis for bytes.
function powersOfTwo(lo, hi) {
  const ticks = [];
  for (let x = 2 ** Math.ceil(Math.log2(lo)); x <= hi; x *= 2) ticks.push(x);
  return thinned(ticks, lo, hi);
}

// Round values between lo and hi for the y axis: powers of ten, else 1-2-5 steps (powers of two
// for bytes).
function yTicks(lo, hi, bytes) {
  if (bytes) return powersOfTwo(lo, hi);
  const within = steps => {
    const out = [];
    for (let k = Math.floor(Math.log10(lo)) - 1; k <= Math.ceil(Math.log10(hi)); k++)
      for (const m of steps) { const v = m * 10 ** k; if (v >= lo && v <= hi && v >= 1) out.push(v); }
    return out;
  };
  const decades = within([1]);
  return thinned(decades.length >= 3 ? decades : within([1, 2, 5]), lo, hi);
}

function drawPlot() {
  const name = document.getElementById("plot-metric").value, dim = document.getElementById("plot-dim").value;
  const row = METRIC_ROWS.find(r => r[0] === name), xs = list(dim);
  const every = Math.max(1, Math.ceil(xs.length / 120));
  const picked = xs.filter((_, i) => i % every === 0 || xs[i] === state.values[dim]);
  const pts = [];
  for (const x of picked) {
    const y = toDouble(row[2](numbers(point({...state.values, [dim]: x}))));
    if (y > 0) pts.push([Number(x), y, x === state.values[dim]]);
  }
  const box = document.getElementById("plot");
  if (pts.length < 2 || pts.every(p => p[1] === pts[0][1])) {  // a flat line would only repeat one label
    box.textContent = `${row[1]} does not change with ${dim} here.`;
    return;
  }
  const W = 560, H = 300, L = 64, R = 28, T = 12, B = 36;
  const lx = pts.map(p => Math.log(p[0])), ly = pts.map(p => Math.log(p[1]));
  const [x0, x1] = [Math.min(...lx), Math.max(...lx)], [y0, y1] = [Math.min(...ly), Math.max(...ly)];
  const sx = t => L + (x1 > x0 ? (t - x0) / (x1 - x0) : 0.5) * (W - L - R);
  const sy = t => H - B - (y1 > y0 ? (t - y0) / (y1 - y0) : 0.5) * (H - T - B);
  const label = t => {  // 10T, 4 GiB, 2e15: a round tick needs no trailing zeros
    const x = q(BigInt(Math.round(Math.exp(t))));
    return (row[3] ? bytesHuman(x) : human(x)).replace(/\.(\d*?)0+(?=\D|$)/, (_, d) => (d ? `.${d}` : ""));
  };
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${row[1]} against ${dim}, log-log">`;
  for (const v of yTicks(Math.exp(y0), Math.exp(y1), row[3])) {
    const ty = Math.log(v);
    svg += `<line class="grid" x1="${L}" x2="${W - R}" y1="${sy(ty)}" y2="${sy(ty)}"></line>`;
    svg += `<text x="${L - 4}" y="${sy(ty) + 4}" text-anchor="end">${label(ty)}</text>`;
  }
  for (const x of powersOfTwo(pts[0][0], pts[pts.length - 1][0])) {
    svg += `<text x="${sx(Math.log(x))}" y="${H - B + 16}" text-anchor="middle">${x.toLocaleString("en-US")}</text>`;
  }
  svg += `<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"></line>`;
  svg += `<line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"></line>`;
  svg += `<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">${dim} (log scale)</text>`;
  svg += `<polyline class="curve" points="${pts.map((p, i) => `${sx(lx[i]).toFixed(1)},${sy(ly[i]).toFixed(1)}`).join(" ")}"></polyline>`;
  const here = pts.findIndex(p => p[2]);
  if (here >= 0) svg += `<circle class="here" cx="${sx(lx[here])}" cy="${sy(ly[here])}" r="5"><title>${dim} = ${pts[here][0]}</title></circle>`;
  box.innerHTML = svg + "</svg>";
}

// -- start -------------------------------------------------------------------------------

(function start() {
  buildControls();
  buildMetrics();
  render();
  window.symcost = {evaluate, spec: SPEC};
  document.body.dataset.ready = "true";
})();
