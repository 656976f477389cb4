/**
 * The CPU sort's column sums, reproduced bit for bit on the GPU with integer arithmetic.
 * The CPU (sort/shared_index.ts) adds a column's finite fp32 values in row order into a
 * Float64 and rounds the sum to fp32 once; the sort key is that fp32 value's ordered key,
 * ties by column. WGSL has no f64, and its f32 arithmetic may flush subnormals (NVIDIA
 * does) and need not round like IEEE, so an fp32 sum — even compensated — can order two
 * columns differently from the CPU. Here the Float64 accumulator is emulated: a 64-bit
 * significand in two u32 words, round-to-nearest-even after every addition, then the
 * CPU's rounding to fp32 (subnormals and overflow to ∞ included). No float type is used.
 *
 * Range: a sum of at most 2^16 fp32 values lies between 2^-149 and 2^145 in magnitude (or
 * is 0), far inside the normal doubles, so the emulation needs no f64 subnormals or ∞.
 * A zero sum is +0, as on the CPU (it starts at +0, and x + (−x) is +0 in IEEE).
 * @module
 */

/** WGSL: `D64`, `d64Zero()`, `d64FromF32(bits)`, `d64Add(a, b)`, `d64ToF32(a)` (fp32 bits). */
export const SUM64 = /* wgsl */ `
// sign · m · 2^e with m = (hi, lo) = (m.x, m.y); m's top bit at 62 after every operation
// (53 significant bits, bits 9..0 zero), or m = 0 for +0
struct D64 { m: vec2<u32>, e: i32, neg: bool }
fn d64Zero() -> D64 { return D64(vec2<u32>(0u, 0u), 0, false); }
fn isZero64(m: vec2<u32>) -> bool { return (m.x | m.y) == 0u; }
fn lead64(m: vec2<u32>) -> i32 {
  if (m.x != 0u) { return i32(firstLeadingBit(m.x)) + 32; }
  return i32(firstLeadingBit(m.y));
}
// m >> d, the shifted-out bits jammed into bit 0 (sticky)
fn shrJam(m: vec2<u32>, d: u32) -> vec2<u32> {
  if (d == 0u) { return m; }
  if (d >= 64u) { return vec2<u32>(0u, select(0u, 1u, !isZero64(m))); }
  var r: vec2<u32>;
  var lost: u32;
  if (d >= 32u) {
    let s = d - 32u;
    r = vec2<u32>(0u, m.x >> s);
    lost = m.y | (m.x & ((1u << s) - 1u));
  } else {
    r = vec2<u32>(m.x >> d, (m.y >> d) | (m.x << (32u - d)));
    lost = m.y & ((1u << d) - 1u);
  }
  if (lost != 0u) { r.y |= 1u; }
  return r;
}
fn shl64(m: vec2<u32>, d: u32) -> vec2<u32> {
  if (d == 0u) { return m; }
  if (d >= 32u) { return vec2<u32>(m.y << (d - 32u), 0u); }
  return vec2<u32>((m.x << d) | (m.y >> (32u - d)), m.y << d);
}
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.y + b.y;
  return vec2<u32>(a.x + b.x + select(0u, 1u, lo < a.y), lo);
}
// a − b for a ≥ b
fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  return vec2<u32>(a.x - b.x - select(0u, 1u, a.y < b.y), a.y - b.y);
}
fn ge64(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x > b.x || (a.x == b.x && a.y >= b.y); }
// fp32 bits of a finite value (±0 is the caller's to skip) as a D64, exactly
fn d64FromF32(b: u32) -> D64 {
  let ex = (b >> 23u) & 0xffu;
  var mant = b & 0x7fffffu;
  var e = -149;
  if (ex != 0u) { mant |= 0x800000u; e = i32(ex) - 150; }
  let s = 62u - firstLeadingBit(mant);
  return D64(shl64(vec2<u32>(0u, mant), s), e - i32(s), (b >> 31u) != 0u);
}
// a + b in IEEE double, round to nearest even (the CPU's Float64 +=)
fn d64Add(a: D64, b: D64) -> D64 {
  if (isZero64(b.m)) { return a; }
  if (isZero64(a.m)) { return b; }
  var x = a;
  var y = b;
  if (y.e > x.e) { x = b; y = a; }
  let ym = shrJam(y.m, u32(min(x.e - y.e, 64)));
  var m: vec2<u32>;
  var e = x.e;
  var neg = x.neg;
  if (x.neg == y.neg) {
    m = add64(x.m, ym);
    if ((m.x >> 31u) != 0u) { m = shrJam(m, 1u); e += 1; }
  } else {
    if (ge64(x.m, ym)) { m = sub64(x.m, ym); } else { m = sub64(ym, x.m); neg = y.neg; }
    if (isZero64(m)) { return d64Zero(); }
    let s = 62 - lead64(m);
    m = shl64(m, u32(s));
    e -= s;
  }
  // keep 53 bits (62..10): bits 9..0 are guard bits, the lowest one sticky
  let low = m.y & 0x3ffu;
  m.y &= ~0x3ffu;
  if (low > 0x200u || (low == 0x200u && (m.y & 0x400u) != 0u)) {
    m = add64(m, vec2<u32>(0u, 0x400u));
    if ((m.x >> 31u) != 0u) { m = shrJam(m, 1u); e += 1; }
  }
  return D64(m, e, neg);
}
// the double rounded to fp32 (nearest even, subnormals, overflow to ∞), as fp32 bits
fn d64ToF32(a: D64) -> u32 {
  if (isZero64(a.m)) { return 0u; }
  let top = a.e + 62; // exponent of the leading bit
  var sh = 39;        // bits dropped: 63 − 24 for a normal result
  var base = 0u;
  if (top >= -126) { base = u32(top + 126) << 23u; } else { sh = -149 - a.e; }
  var q = 0u;
  if (sh < 64) {
    let s = u32(sh) - 32u; // 7..31
    q = a.m.x >> s;
    let rem = vec2<u32>(a.m.x & ((1u << s) - 1u), a.m.y);
    let half = vec2<u32>(1u << (s - 1u), 0u);
    let gt = rem.x > half.x || (rem.x == half.x && rem.y > 0u);
    let tie = rem.x == half.x && rem.y == 0u;
    if (gt || (tie && (q & 1u) != 0u)) { q += 1u; }
  }
  let bits = min(base + q, 0x7f800000u);
  return bits | select(0u, 0x80000000u, a.neg);
}
`;
