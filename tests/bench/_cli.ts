/**
 * What every bench and eval does with its command line before any work: `--help` (or `-h`)
 * prints the script's opening comment, which is its usage, and exits 0; results go by default
 * to `out/bench/` (ignored by git), so a run never overwrites the tracked results in
 * tests/bench/results/ unless `--out` names them.
 * @module
 */
import { REPO_DIR } from "../_harness/paths.ts";

/** Where a bench writes `name` when no `--out` is given; the folder is made. */
export function defaultOut(name: string): string {
  const dir = `${REPO_DIR}/out/bench`;
  Deno.mkdirSync(dir, { recursive: true });
  return `${dir}/${name}`;
}

/** Prints the opening comment of the script at `url` and exits 0 when the arguments ask for help. */
export function exitOnHelp(url: string, args: string[] = Deno.args): void {
  if (!args.includes("--help") && !args.includes("-h")) return;
  const src = Deno.readTextFileSync(new URL(url));
  const doc = src.match(/\/\*\*([\s\S]*?)\*\//)?.[1] ?? "";
  const text = doc.split("\n").map((l) => l.replace(/^\s*\* ?/, "")).filter((l) => !l.startsWith("@module"))
    .join("\n").trim();
  console.log(text || "no usage written for this script");
  Deno.exit(0);
}
