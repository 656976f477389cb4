/**
 * `deno task plots`: draws every figure of tests/bench/plot/figures.ts from the JSON in
 * tests/bench/results/ as SVG and PNG under docs/plots/ (docs/RESULTS.md shows them).
 *
 *   deno task plots [--results DIR] [--out DIR]
 * @module
 */
import { REPO_DIR } from "../_harness/paths.ts";
import { exitOnHelp } from "./_cli.ts";
import { FIGURES } from "./plot/figures.ts";
import { renderSvg, svgToPng } from "./plot/render.ts";

const USAGE = "usage: deno task plots [--results DIR] [--out DIR]";

function parseArgs(args: string[]): { results: string; out: string } {
  const o = { results: `${REPO_DIR}/tests/bench/results`, out: `${REPO_DIR}/docs/plots` };
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    if ((args[i] === "--results" || args[i] === "--out") && v && !v.startsWith("--")) {
      o[args[i] === "--results" ? "results" : "out"] = v;
      i++;
    } else throw new Error(`unknown or incomplete option '${args[i]}'\n${USAGE}`);
  }
  return o;
}

if (import.meta.main) {
  exitOnHelp(import.meta.url);
  let parsed: { results: string; out: string };
  try {
    parsed = parseArgs(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const { results, out } = parsed;
  await Deno.mkdir(out, { recursive: true });
  let failed = 0;
  for (const f of FIGURES) {
    const built = await f.build(results);
    if ("skipped" in built) {
      console.log(`${f.name}: skipped, ${built.skipped}`);
      continue;
    }
    try {
      const svg = await renderSvg(built.spec);
      await Deno.writeTextFile(`${out}/${f.name}.svg`, svg);
      const png = await svgToPng(svg);
      if (png instanceof Uint8Array) await Deno.writeFile(`${out}/${f.name}.png`, png);
      const pngNote = png instanceof Uint8Array ? " and .png" : ` (no PNG: ${png.why})`;
      console.log(
        `${f.name}: ${built.rows} points from ${built.sources.join(", ")} -> ${out}/${f.name}.svg${pngNote}`,
      );
    } catch (err) {
      failed++;
      console.error(`${f.name}: failed: ${(err as Error).message}`);
    }
  }
  if (failed) Deno.exit(1);
}
