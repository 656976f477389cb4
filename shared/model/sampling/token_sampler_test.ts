import { assert, assertAlmostEquals, assertEquals, assertNotEquals } from "@std/assert";
import { processLogits } from "./logits_processors.ts";
import { tokenLogprobs } from "./logprobs.ts";
import { TokenSampler } from "./token_sampler.ts";
import { sampleToken } from "../sample.ts";
import { seededRng } from "./rng.ts";

const logits = () => Float32Array.of(0.5, 3, 1, 2.5, -1);

Deno.test("TokenSampler.pick() with a -100 logit bias never picks the greedy token", () => {
  const s = new TokenSampler({ temperature: 0, topP: 1, logitBias: [{ id: 1, bias: -100 }] }, {
    endIds: [4],
  });
  assertEquals(s.pick(logits()).id, 3);
  const hot = new TokenSampler({ temperature: 2, topP: 1, logitBias: [{ id: 1, bias: -100 }] }, {
    endIds: [4],
    rng: () => 0.4,
  });
  for (let i = 0; i < 20; i++) assertNotEquals(hot.pick(logits()).id, 1);
});

Deno.test("processLogits() applies the penalties in vLLM's way", () => {
  const out = processLogits(logits(), {
    params: { frequencyPenalty: 0.5, presencePenalty: 0.25, repetitionPenalty: 2 },
    outputCounts: new Map([[1, 2], [4, 1]]),
    promptIds: new Set([2]),
    generated: 3,
    endIds: [],
  });
  assertAlmostEquals(out[1], 3 / 2 - 0.5 * 2 - 0.25);
  assertAlmostEquals(out[2], 1 / 2);
  assertAlmostEquals(out[4], -1 * 2 - 0.5 - 0.25);
  assertEquals(out[0], 0.5);
});

Deno.test("TokenSampler bans ending tokens until min_tokens, and ends on stop_token_ids", () => {
  const s = new TokenSampler({ temperature: 0, topP: 1, minTokens: 2, stopTokenIds: [3] }, { endIds: [1] });
  assertEquals(s.pick(logits()).id, 2); // 1 (EOS) and 3 (stop id) banned
  assertEquals(s.pick(logits()).id, 2);
  assertEquals(s.pick(logits()).id, 1);
  assert(s.ends(1) && s.ends(3) && !s.ends(2));
  assert(!new TokenSampler({ temperature: 0, topP: 1, ignoreEos: true }, { endIds: [1] }).ends(1));
});

Deno.test("tokenLogprobs() reports a normalised chosen log-probability and the k best, best first", () => {
  const lp = tokenLogprobs(logits(), 3, 3);
  assertEquals(lp.top.map((t) => t.id), [1, 3, 2]);
  const total = Array.from(logits()).reduce((n, x) => n + Math.exp(x), 0);
  assertAlmostEquals(lp.logprob, 2.5 - Math.log(total), 1e-6);
  assertEquals(tokenLogprobs(Float32Array.of(0, -Infinity), 1, 0).logprob, -9999);
});

Deno.test("sampleToken() at top_p samples only the smallest most-likely set that reaches top_p", () => {
  const rng = seededRng(7);
  const logits = Float32Array.from({ length: 300 }, () => rng() * 6);
  const probs = Array.from(logits, (x) => Math.exp(x));
  const z = probs.reduce((a, b) => a + b, 0);
  const order = probs.map((p, i) => [p / z, i]).sort((a, b) => b[0] - a[0]);
  const nucleus = new Set<number>();
  let cum = 0;
  for (const [p, i] of order) {
    if (cum >= 0.7) break;
    nucleus.add(i);
    cum += p;
  }
  const seen = new Set<number>();
  for (let k = 0; k < 5000; k++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.7, rng }));
  for (const id of seen) assert(nucleus.has(id), `token ${id} is outside the nucleus`);
  assert(seen.size > nucleus.size / 2, `${seen.size} of ${nucleus.size} nucleus tokens drawn`);
});

Deno.test("TokenSampler.pick() with topK samples among the k most likely only", () => {
  const rng = seededRng(5);
  const one = new TokenSampler({ temperature: 2, topP: 1, topK: 1 }, { endIds: [], rng });
  for (let i = 0; i < 50; i++) assertEquals(one.pick(logits()).id, 1);
  const two = new TokenSampler({ temperature: 2, topP: 1, topK: 2 }, { endIds: [], rng });
  const seen = new Set(Array.from({ length: 200 }, () => two.pick(logits()).id));
  assertEquals([...seen].sort(), [1, 3]);
});

Deno.test("TokenSampler.pick() with minP drops tokens below minP × the top probability", () => {
  const rng = seededRng(9);
  // At temperature 1, p(3)/p(1) = e^-0.5 ≈ 0.61 and p(2)/p(1) = e^-2 ≈ 0.14.
  const s = new TokenSampler({ temperature: 1, topP: 1, minP: 0.5 }, { endIds: [], rng });
  const seen = new Set(Array.from({ length: 300 }, () => s.pick(logits()).id));
  assertEquals([...seen].sort(), [1, 3]);
});
