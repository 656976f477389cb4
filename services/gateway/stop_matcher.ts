/**
 * Stop strings over a stream of text pieces: what is safe to send now, and where a stop string
 * cut the text.
 *
 * @example
 * ```ts
 * import { StopMatcher } from "./stop_matcher.ts";
 * const s = new StopMatcher(["END"]);
 * s.push("abcE"); // { text: "abc", stopped: false }
 * s.push("ND!"); // { text: "", stopped: true }
 * ```
 * @module
 */

/** Holds back text that could still grow into a stop string. */
export class StopMatcher {
  #stops: string[];
  #pending = "";
  constructor(stops: string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }
  /** Returns the text safe to emit now, and whether a stop string was hit. */
  push(piece: string): { text: string; stopped: boolean } {
    this.#pending += piece;
    let cut = -1;
    for (const s of this.#stops) {
      const i = this.#pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const text = this.#pending.slice(0, cut);
      this.#pending = "";
      return { text, stopped: true };
    }
    let keep = 0;
    for (const s of this.#stops) {
      for (let k = Math.min(s.length - 1, this.#pending.length); k > keep; k--) {
        if (this.#pending.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    const text = this.#pending.slice(0, this.#pending.length - keep);
    this.#pending = this.#pending.slice(this.#pending.length - keep);
    return { text, stopped: false };
  }
  flush(): string {
    const t = this.#pending;
    this.#pending = "";
    return t;
  }
}
