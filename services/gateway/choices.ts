/**
 * One request's choices: the runs it fans out to (each prompt × `n`, in OpenAI's index order,
 * choice `i` of `n` sampled with `seed + i`), their events merged as they come, each choice as
 * it is built, and the usage over all of them.
 * @module
 */
import type { Backend, ChatMessage, CompletionEvent, CompletionInput, TokenOut, Usage } from "./backend.ts";
import type { PromptInput } from "./validate.ts";

export interface Run {
  index: number;
  /** Which prompt of the request. */
  prompt: number;
  input: CompletionInput;
}

/** What every run of a request shares. */
export type RunBase = Omit<CompletionInput, "requestId" | "prompt" | "promptIds" | "messages">;

/** The runs of `prompts` × `n`: choice `p * n + j` is prompt `p`'s `j`-th. */
export function planRuns(
  requestId: string,
  prompts: (PromptInput | { messages: ChatMessage[] })[],
  n: number,
  base: RunBase,
): Run[] {
  return prompts.flatMap((p, pi) =>
    Array.from({ length: n }, (_, j) => {
      const index = pi * n + j;
      return {
        index,
        prompt: pi,
        input: {
          ...base,
          requestId: index === 0 ? requestId : `${requestId}-c${index}`,
          sampling: { ...base.sampling, seed: choiceSeed(base.sampling.seed, j) },
          ...p,
        },
      };
    })
  );
}

/** One choice as it is built. */
export interface Choice {
  index: number;
  prompt: number;
  /** So far (the echoed prompt first, when asked). */
  text: string;
  tokens: TokenOut[];
  wantLogprobs: boolean;
  /** Streaming: where the next piece starts in the choice's text. */
  offset?: number;
  done?: Extract<CompletionEvent, { type: "done" }>;
}

/** A choice for each run; `echoes[p]` starts the text of prompt `p`'s choices. */
export function newChoices(runs: Run[], echoes: string[], wantLogprobs: boolean): Choice[] {
  return runs.map((r) => ({
    index: r.index,
    prompt: r.prompt,
    text: echoes[r.prompt] ?? "",
    tokens: [],
    wantLogprobs,
  }));
}

/** Choice j of n: the request's seed plus j, so the choices differ and each repeats. */
function choiceSeed(seed: number | undefined, j: number): number | undefined {
  if (j === 0) return seed;
  const s = (seed ?? 0x5eed) + j;
  return s > Number.MAX_SAFE_INTEGER ? (seed ?? 0) - j : s;
}

/** `echo`'s text of a prompt: the prompt itself, or its token ids' text. */
export async function echoText(
  backend: Backend,
  p: PromptInput | { messages: ChatMessage[] },
): Promise<string> {
  if ("messages" in p) return "";
  return p.prompt ?? await backend.detokenize(p.promptIds ?? []);
}

/** Events of every run as they come, tagged with the run's index; a failure aborts the rest. */
export async function* merged(
  streams: AsyncIterable<CompletionEvent>[],
  abort: AbortController,
): AsyncIterable<{ index: number; ev: CompletionEvent }> {
  const iters = streams.map((s) => s[Symbol.asyncIterator]());
  const pulls = new Map<number, Promise<{ index: number; r: IteratorResult<CompletionEvent> }>>();
  const pull = (index: number) => {
    const p = iters[index].next().then((r) => ({ index, r }));
    p.catch(() => {});
    pulls.set(index, p);
  };
  iters.forEach((_, i) => pull(i));
  try {
    while (pulls.size) {
      const { index, r } = await Promise.race(pulls.values());
      if (r.done) {
        pulls.delete(index);
        continue;
      }
      pull(index);
      yield { index, ev: r.value };
    }
  } catch (err) {
    abort.abort();
    throw err;
  }
}

/** Usage over every choice: each prompt's tokens once, every choice's completion tokens. */
export function sumUsage(choices: Choice[]): Usage {
  const first = new Map<number, Usage>();
  let completion = 0;
  for (const ch of choices) {
    const u = ch.done!.usage;
    if (!first.has(ch.prompt)) first.set(ch.prompt, u);
    completion += u.completion_tokens;
  }
  let prompt = 0;
  for (const u of first.values()) prompt += u.prompt_tokens;
  // usage.kv describes the first choice's hand-off (every choice of a prompt hands off alike).
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    kv: choices[0].done!.usage.kv,
  };
}

/**
 * `best_of`: of each prompt's candidates, the `n` with the highest log-probability per token
 * (OpenAI's rule), best first, indexed as OpenAI orders choices.
 */
export function bestChoices(choices: Choice[], n: number): Choice[] {
  const perToken = (ch: Choice) => {
    if (!ch.tokens.length) return -Infinity;
    return ch.tokens.reduce((a, t) => a + t.logprob, 0) / ch.tokens.length;
  };
  const byPrompt = new Map<number, Choice[]>();
  for (const ch of choices) byPrompt.set(ch.prompt, [...(byPrompt.get(ch.prompt) ?? []), ch]);
  return [...byPrompt.entries()].sort(([a], [b]) => a - b).flatMap(([p, cands]) =>
    cands.map((ch) => ({ ch, score: perToken(ch) })).sort((a, b) => b.score - a.score).slice(0, n)
      .map(({ ch }, j) => ({ ...ch, index: p * n + j }))
  );
}
