/**
 * Entropy coding per channel group, for frames kept in channel order (the linear predictors):
 * channels whose residuals spread alike share one Huffman table. The channels are ranked by
 * their mean |code| and cut into `groups` equal runs; each group's symbols (row-major within
 * the group) get their own table. The encoder tries 1, 4 and 8 groups and keeps the smallest,
 * so a frame whose channels all look alike pays nothing for the option.
 *
 * ```
 * tag 'G' | groups u8 (2..16) | channel → group map, 4 bits a channel | one Huffman section a group
 * ```
 * (one group is written as the plain Huffman stage, tag 'H').
 * @module
 */
import { ByteWriter } from "../bytes.ts";
import type { ByteReader } from "../bytes.ts";
import { huffmanDecode, huffmanEncode, type HuffmanInfo } from "./huffman.ts";
import { RADIUS } from "../quantize/linear.ts";

/** Stage tag of the grouped entropy section. */
export const GROUPED_TAG = 0x47; // 'G'
const MAX_GROUPS = 16;
const TRIED = [4, 8];

/** Writes `syms` (`rows` × `cols`, row-major) with the cheapest grouping tried. */
export function groupedEncode(syms: Uint16Array, rows: number, cols: number, w: ByteWriter): void {
  let best = new ByteWriter(64 + (syms.length >> 1));
  huffmanEncode(syms, best);
  if (cols >= 2 * TRIED[0] && rows > 0) {
    const order = channelsBySpread(syms, rows, cols);
    for (const g of TRIED) {
      if (g > cols) break;
      const map = new Uint8Array(cols);
      order.forEach((c, rank) => map[c] = Math.floor((rank * g) / cols));
      const trial = new ByteWriter(64 + (syms.length >> 1));
      writeGroups(syms, rows, cols, map, g, trial);
      if (trial.pos < best.pos) best = trial;
    }
  }
  w.bytes(best.buf.subarray(0, best.pos));
}

/** Channels in ascending mean |code| (exceptions left out). */
function channelsBySpread(syms: Uint16Array, rows: number, cols: number): number[] {
  const sum = new Float64Array(cols), cnt = new Float64Array(cols);
  for (let t = 0; t < rows; t++) {
    for (let c = 0; c < cols; c++) {
      const s = syms[t * cols + c];
      if (s === 0) continue;
      sum[c] += Math.abs(s - RADIUS);
      cnt[c]++;
    }
  }
  const mean = Array.from(sum, (s, c) => cnt[c] ? s / cnt[c] : 0);
  return Array.from({ length: cols }, (_, c) => c).sort((a, b) => mean[a] - mean[b] || a - b);
}

function writeGroups(
  syms: Uint16Array,
  rows: number,
  cols: number,
  map: Uint8Array,
  groups: number,
  w: ByteWriter,
): void {
  w.u8(GROUPED_TAG);
  w.u8(groups);
  for (let c = 0; c < cols; c += 2) w.u8(map[c] | ((c + 1 < cols ? map[c + 1] : 0) << 4));
  for (let g = 0; g < groups; g++) {
    const chans = channelsOf(map, g);
    const sub = new Uint16Array(rows * chans.length);
    let i = 0;
    for (let t = 0; t < rows; t++) for (const c of chans) sub[i++] = syms[t * cols + c];
    huffmanEncode(sub, w);
  }
}

function channelsOf(map: Uint8Array, g: number): number[] {
  const out: number[] = [];
  map.forEach((m, c) => m === g && out.push(c));
  return out;
}

/**
 * Reads what {@link groupedEncode} wrote (the grouped section or a plain Huffman one) into
 * `out` (`rows` × `cols`).
 */
export function groupedDecode(
  r: ByteReader,
  rows: number,
  cols: number,
  info: HuffmanInfo,
  out: Uint16Array,
): Uint16Array {
  if (r.pos >= r.end || r.buf[r.pos] !== GROUPED_TAG) return huffmanDecode(r, rows * cols, info, out);
  r.tag(GROUPED_TAG, "grouped entropy");
  const at = r.pos;
  const groups = r.u8("group count");
  if (groups < 2 || groups > MAX_GROUPS || groups > cols) {
    r.fail(`${groups} channel groups for ${cols} channels`, at);
  }
  const packed = r.bytes(Math.ceil(cols / 2), "channel groups");
  const map = Uint8Array.from({ length: cols }, (_, c) => (packed[c >> 1] >> (4 * (c & 1))) & 15);
  if (map.some((g) => g >= groups)) r.fail(`a channel in a group past ${groups}`, at + 1);
  for (let g = 0; g < groups; g++) {
    const chans = channelsOf(map, g);
    const part: HuffmanInfo = { tableBytes: 0, bitstreamBytes: 0, distinctSymbols: 0 };
    const sub = huffmanDecode(r, rows * chans.length, part);
    info.tableBytes += part.tableBytes;
    info.bitstreamBytes += part.bitstreamBytes;
    info.distinctSymbols += part.distinctSymbols;
    let i = 0;
    for (let t = 0; t < rows; t++) for (const c of chans) out[t * cols + c] = sub[i++];
  }
  return out;
}
