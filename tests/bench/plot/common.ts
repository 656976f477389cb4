/**
 * What every figure shares: the `Figure` interface `deno task plots` draws, the Vega-Lite schema
 * and look, reading a results file (missing: undefined; unreadable: an error naming it) and
 * checking its rows.
 * @module
 */
import type { TopLevelSpec } from "vega-lite";

/** What a figure gives: its spec and rows, or why it has none. */
export type Built =
  | { spec: TopLevelSpec; rows: number; sources: string[] }
  | { skipped: string };

export interface Figure {
  /** File name without extension, under the output directory. */
  name: string;
  title: string;
  build(resultsDir: string): Promise<Built>;
}

export const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";
export const CONFIG = {
  font: "DejaVu Sans",
  view: { stroke: "#ddd" },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelLimit: 320 },
  title: { anchor: "start", subtitleColor: "#555" },
};

/** The parsed JSON of `dir/file`, or undefined when there is no such file. */
export async function readJson(dir: string, file: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/${file}`));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`${dir}/${file}: ${(err as Error).message}`);
  }
}

/** The fields each row must have, by type (`typeof`). */
type RowShape = Partial<Record<"number" | "string" | "boolean", string[]>>;

/** `rows` checked against `shape`: a row without a field of its type is refused, by file, row and field. */
export function checkRows<T>(file: string, rows: unknown, shape: RowShape): T[] {
  if (!Array.isArray(rows)) throw new Error(`${file}: no 'rows' array`);
  rows.forEach((r: Record<string, unknown>, i) => {
    for (const [type, keys] of Object.entries(shape)) {
      for (const k of keys) {
        const got: string = typeof r?.[k];
        if (got !== type) throw new Error(`${file}: rows[${i}].${k} is not a ${type}`);
      }
    }
  });
  return rows as T[];
}

/** The JSON files of `dir` whose names match `re`, newest first (modification time, then name). */
export async function filesMatching(dir: string, re: RegExp): Promise<string[]> {
  const found: { name: string; mtime: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !re.test(e.name)) continue;
    found.push({ name: e.name, mtime: (await Deno.stat(`${dir}/${e.name}`)).mtime?.getTime() ?? 0 });
  }
  return found.sort((a, b) => b.mtime - a.mtime || b.name.localeCompare(a.name)).map((f) => f.name);
}
