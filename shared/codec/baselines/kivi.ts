/**
 * KIVI-style asymmetric integer quantization (Liu et al. 2024), the baseline the paper
 * compares against: groups of 32 — keys per channel (32 consecutive tokens of one channel),
 * values per token (32 consecutive channels of one token) — each with its minimum and
 * scale in fp16 (fp32 when they overflow fp16), codes of 8, 4 or 2 bits. No error bound.
 * Non-finite values are stored exactly so they survive like everywhere else.
 * @module
 */
import { type ByteReader, ByteWriter } from "../bytes.ts";
import { type Dtype, f16Table32, f32ToF16Bits } from "../../dtype/mod.ts";
import { rounderFor } from "../quantize/linear.ts";
import { assemble } from "../assemble.ts";
import type { Frame } from "../pipeline.ts";

const KIVI_TAG = 0x4b; // 'K'
/** Values per quantization group. */
export const KIVI_GROUP = 32;

function groupOf(role: "key" | "value", cols: number): (i: number) => number {
  if (role === "key") return (i) => Math.floor(Math.floor(i / cols) / KIVI_GROUP) * cols + (i % cols);
  const per = Math.ceil(cols / KIVI_GROUP);
  return (i) => Math.floor(i / cols) * per + Math.floor((i % cols) / KIVI_GROUP);
}

function groupCount(role: "key" | "value", rows: number, cols: number): number {
  return role === "key" ? Math.ceil(rows / KIVI_GROUP) * cols : rows * Math.ceil(cols / KIVI_GROUP);
}

/** Encodes a frame with `bits`-bit codes; returns the body and the output data. */
export function kiviEncode(
  f: Frame,
  bits: 2 | 4 | 8,
  role: "key" | "value",
): { body: Uint8Array; out: Float32Array | Uint16Array } {
  const { x, rows, cols } = f;
  const n = x.length;
  const ng = groupCount(role, rows, cols);
  const gid = groupOf(role, cols);
  const lo = new Float64Array(ng).fill(Infinity), hi = new Float64Array(ng).fill(-Infinity);
  const exc: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) {
      exc.push(i);
      continue;
    }
    const g = gid(i);
    if (v < lo[g]) lo[g] = v;
    if (v > hi[g]) hi[g] = v;
  }
  const levels = (1 << bits) - 1;
  let wide = false;
  for (let g = 0; g < ng; g++) {
    if (lo[g] > hi[g]) lo[g] = hi[g] = 0;
    if (Math.abs(lo[g]) > 65504 || (hi[g] - lo[g]) / levels > 65504) wide = true;
  }
  const p16 = f16Table32();
  const mins = new Float32Array(ng), scales = new Float32Array(ng);
  for (let g = 0; g < ng; g++) {
    const s = (hi[g] - lo[g]) / levels;
    mins[g] = wide ? lo[g] : p16[f32ToF16Bits(lo[g])];
    scales[g] = wide ? s : p16[f32ToF16Bits(s)];
  }
  const codes = new Uint8Array(n);
  const recon = new Float32Array(n);
  const round = rounderFor(f.dtype);
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const g = gid(i);
    const s = scales[g];
    let c = 0;
    if (Number.isFinite(v) && s > 0) c = Math.min(levels, Math.max(0, Math.round((v - mins[g]) / s)));
    codes[i] = c;
    recon[i] = round(mins[g] + c * s);
  }
  const excIdx = Int32Array.from(exc);
  const excBits = Uint32Array.from(exc, (i) => f.bits[i]);
  const out = assemble(recon, f.dtype, excIdx, excBits);
  const w = new ByteWriter(64 + ng * 8 + Math.ceil((n * bits) / 8));
  w.u8(KIVI_TAG);
  w.u8(role === "key" ? 0 : 1);
  w.u8(wide ? 4 : 2);
  w.varint(exc.length);
  let prev = -1;
  for (let e = 0; e < exc.length; e++) {
    w.varint(exc[e] - prev - 1);
    prev = exc[e];
    if (f.dtype === "f32") w.u32(excBits[e]);
    else {
      w.u8(excBits[e] & 0xff);
      w.u8(excBits[e] >>> 8);
    }
  }
  for (let g = 0; g < ng; g++) {
    if (wide) {
      w.u32(new Uint32Array(Float32Array.of(mins[g]).buffer)[0]);
      w.u32(new Uint32Array(Float32Array.of(scales[g]).buffer)[0]);
    } else {
      const a = f32ToF16Bits(mins[g]), b = f32ToF16Bits(scales[g]);
      w.u8(a & 0xff), w.u8(a >>> 8), w.u8(b & 0xff), w.u8(b >>> 8);
    }
  }
  const per = 8 / bits;
  const packed = new Uint8Array(Math.ceil(n / per));
  for (let i = 0; i < n; i++) packed[(i / per) | 0] |= codes[i] << ((i % per) * bits);
  w.bytes(packed);
  return { body: w.finish(), out };
}

/** Decodes what {@link kiviEncode} wrote. */
export function kiviDecode(
  r: ByteReader,
  dtype: Dtype,
  rows: number,
  cols: number,
  bits: 2 | 4 | 8,
): { out: Float32Array | Uint16Array; role: "key" | "value"; exceptions: number } {
  r.tag(KIVI_TAG, "kivi");
  const n = rows * cols;
  const at = r.pos;
  const roleId = r.u8("role");
  const pw = r.u8("param width");
  if (roleId > 1 || (pw !== 2 && pw !== 4)) r.fail(`bad kivi role ${roleId} or param width ${pw}`, at);
  const role = roleId === 0 ? "key" : "value";
  const ne = r.varint("exception count", n);
  const excIdx = new Int32Array(ne);
  const excBits = new Uint32Array(ne);
  let prev = -1;
  for (let e = 0; e < ne; e++) {
    const i = prev + 1 + r.varint("exception index", n);
    if (i >= n) r.fail(`exception index ${i} out of range`);
    excIdx[e] = prev = i;
    excBits[e] = dtype === "f32" ? r.u32() : r.u8() | (r.u8() << 8);
  }
  const ng = groupCount(role, rows, cols);
  const params = r.bytes(ng * 2 * pw, "kivi group parameters").slice();
  const mins = new Float32Array(ng), scales = new Float32Array(ng);
  if (pw === 4) {
    const f = new Float32Array(params.buffer);
    for (let g = 0; g < ng; g++) [mins[g], scales[g]] = [f[2 * g], f[2 * g + 1]];
  } else {
    const h = new Uint16Array(params.buffer), t = f16Table32();
    for (let g = 0; g < ng; g++) [mins[g], scales[g]] = [t[h[2 * g]], t[h[2 * g + 1]]];
  }
  const per = 8 / bits;
  const packed = r.bytes(Math.ceil(n / per), "kivi codes");
  if (r.pos !== r.end) r.fail(`${r.end - r.pos} stray bytes after kivi codes`);
  const gid = groupOf(role, cols);
  const round = rounderFor(dtype);
  const mask = (1 << bits) - 1;
  const recon = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = (packed[(i / per) | 0] >>> ((i % per) * bits)) & mask;
    const g = gid(i);
    recon[i] = round(mins[g] + c * scales[g]);
  }
  return { out: assemble(recon, dtype, excIdx, excBits), role, exceptions: ne };
}
