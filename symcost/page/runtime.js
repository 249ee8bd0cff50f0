// Exact rationals over BigInt: the arithmetic the compiled closed forms call (symcost.page.js).
// A value is {n, d}: d > 0, and n/d in lowest terms unless d is 1 (the common, fast case).
"use strict";

function gcd(a, b) {
  if (a < 0n) a = -a;
  while (b) [a, b] = [b, a % b];
  return a;
}

function q(n, d = 1n) {
  if (d === 0n) throw new RangeError("division by zero");
  if (d < 0n) { n = -n; d = -d; }
  if (d === 1n) return {n, d};
  const g = gcd(n, d);
  return g === 1n ? {n, d} : {n: n / g, d: d / g};
}

function add(...xs) {
  let n = 0n, d = 1n;
  for (const x of xs) {
    if (x.d === d) n += x.n;
    else { n = n * x.d + x.n * d; d = d * x.d; }
  }
  return q(n, d);
}

function mul(...xs) {
  let n = 1n, d = 1n;
  for (const x of xs) { n *= x.n; d *= x.d; }
  return q(n, d);
}

function pow(x, k) {
  if (k >= 0) return q(x.n ** BigInt(k), x.d ** BigInt(k));
  return q(x.d ** BigInt(-k), x.n ** BigInt(-k));
}

function floorDiv(n, d) {  // BigInt division rounds toward zero; this rounds down (d > 0)
  const t = n / d;
  return (n % d !== 0n && n < 0n) ? t - 1n : t;
}

function floor(x) { return x.d === 1n ? x : q(floorDiv(x.n, x.d)); }
function ceil(x) { return x.d === 1n ? x : q(-floorDiv(-x.n, x.d)); }
function cmp(a, b) {
  const s = a.n * b.d - b.n * a.d;
  return s > 0n ? 1 : s < 0n ? -1 : 0;
}
function mod(a, b) { return add(a, mul(q(-1n), b, floor(mul(a, pow(b, -1))))); }  // sympy's Mod
function min(...xs) { return xs.reduce((m, x) => (cmp(x, m) < 0 ? x : m)); }
function max(...xs) { return xs.reduce((m, x) => (cmp(x, m) > 0 ? x : m)); }
function undefinedPiece() { throw new RangeError("no case of a piecewise form applies"); }

function isWhole(x) { return x.d === 1n; }

// A rational as sympy prints it: "12", "-3", "4096/3".
function show(x) { return x.d === 1n ? x.n.toString() : `${x.n}/${x.d}`; }

// n/d rounded once to the nearest double, as Python's int / int is.
function toDouble(x) {
  if (x.d === 1n) return Number(x.n);
  const neg = x.n < 0n, n = neg ? -x.n : x.n;
  // scale so that the quotient has at least 66 bits, then a sticky bit for the remainder
  const shift = Math.max(0, 66 - (n.toString(2).length - x.d.toString(2).length));
  let t = (n << BigInt(shift)) / x.d;
  if ((n << BigInt(shift)) % x.d !== 0n) t |= 1n;
  const value = Number(t) / 2 ** shift;  // Number(BigInt) rounds to nearest; the power of two is exact
  return neg ? -value : value;
}

// A double as Python's repr writes it: shortest digits, '1e+16' from 1e16 up, '.0' on whole numbers.
function pyRepr(x) {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : (x > 0 ? "inf" : "-inf");
  const [mantissa, e] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", ""), exp = Number(e), sign = x < 0 ? "-" : "";
  if (exp >= 16 || exp < -4) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const whole = digits.slice(0, exp + 1).padEnd(exp + 1, "0"), frac = digits.slice(exp + 1);
  return `${sign}${whole}.${frac || "0"}`;
}

// eval's JSON for a value that may not be whole (FLOPs per token): the integer, else a float.
function jsonNumber(x) { return isWhole(x) ? x.n.toString() : pyRepr(toDouble(x)); }
