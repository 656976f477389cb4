/**
 * Charts for the benchmark results: a Vega-Lite spec compiled by `vega-lite`, laid out and drawn
 * to SVG by `vega` (headless, no canvas: text widths are estimated), then rasterised to PNG by
 * resvg (WebAssembly) with a system font. Dev-only: nothing in the product imports this.
 * @module
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { initWasm, Resvg } from "@resvg/resvg-wasm";

/** Fonts tried for PNG text, first found wins (Debian's fonts-dejavu-core, fonts-liberation). */
const FONTS = [
  { path: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", family: "DejaVu Sans" },
  { path: "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", family: "Liberation Sans" },
];

/** The chart of `spec` as a standalone SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let wasmReady: Promise<void> | undefined;
let font: Promise<{ bytes: Uint8Array; family: string } | undefined> | undefined;

async function firstFont(): Promise<{ bytes: Uint8Array; family: string } | undefined> {
  for (const f of FONTS) {
    try {
      return { bytes: await Deno.readFile(f.path), family: f.family };
    } catch { /* next */ }
  }
  return undefined;
}

/**
 * `svg` as PNG at `scale`× its size, or the reason there is none (no font to draw its text:
 * a PNG without its labels would mislead).
 */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array | { why: string }> {
  wasmReady ??=
    (async () =>
      await initWasm(await Deno.readFile(new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm")))))();
  font ??= firstFont();
  await wasmReady;
  const f = await font;
  if (!f) {
    return {
      why: `no font among ${FONTS.map((x) => x.path).join(", ")} (apt-get install fonts-dejavu-core)`,
    };
  }
  return new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    font: { fontBuffers: [f.bytes], defaultFontFamily: f.family, sansSerifFamily: f.family },
  }).render().asPng();
}
