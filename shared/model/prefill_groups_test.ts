/**
 * Prefill run as consecutive layer groups (`prefillGroups`): the same logits, KV and metric as
 * one graph, on both test models and for the fused graphs too, and each group's layers are
 * final when `onLayers` says so.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { KvrelayError } from "../errors.ts";
import { loadCheckpoint } from "./load.ts";
import { layerGroups, Model } from "./model.ts";
import { assertClose, TEST_MODELS } from "./_testing.ts";
import { buildPrefillGraph } from "./llama_graph.ts";

Deno.test("layerGroups() splits the layers into consecutive groups as even as they divide", () => {
  assertEquals(layerGroups(8, 1), [{ from: 0, to: 8 }]);
  assertEquals(layerGroups(8, 4), [{ from: 0, to: 2 }, { from: 2, to: 4 }, { from: 4, to: 6 }, {
    from: 6,
    to: 8,
  }]);
  assertEquals(layerGroups(5, 2), [{ from: 0, to: 3 }, { from: 3, to: 5 }]); // round half up
  assertEquals(layerGroups(3, 9).length, 3); // at most one layer a group
  assertEquals(layerGroups(3, 0).length, 1);
});

for (const m of TEST_MODELS) {
  const { config, weights, tokenizer } = await loadCheckpoint(m.load.modelPath, m.load.tokenizerPath);

  Deno.test(`a layer group outside the model is refused (${m.name})`, () => {
    for (const layers of [{ from: 0, to: config.nLayers + 1 }, { from: 2, to: 2 }, { from: -1, to: 1 }]) {
      assertThrows(() => buildPrefillGraph(config, weights, { layers }), RangeError);
    }
  });

  for (const fused of [false, true]) {
    Deno.test(`prefill in layer groups equals one graph (${m.name}${fused ? ", fused" : ""})`, async () => {
      const ids = tokenizer.encode(
        "Once upon a time, there was a cat who liked to sit in the sun all day long.",
      );
      const one = await Model.fromWeights(config, weights, { tokenizer, fused });
      const want = await one.prefill(ids);
      await one.close();
      for (const n of [2, config.nLayers]) {
        const grouped = await Model.fromWeights(config, weights, { tokenizer, fused, prefillGroups: n });
        assertEquals(grouped.prefillGroups, Math.min(n, config.nLayers));
        const heard: number[] = [];
        const got = await grouped.prefill(ids, {
          onLayers: (upTo, partial) => {
            heard.push(upTo);
            // what is announced is final: equal to the one-graph result now, not only at the end
            for (let l = 0; l < upTo; l++) {
              assertClose(partial.layers[l].keys, want.layers[l].keys, {
                tol: 1e-5,
                scaled: true,
                what: `K ${l}`,
              });
            }
            const rows = partial.metric.subarray(0, upTo * config.nKvHeads * ids.length);
            assertClose(rows, want.metric.subarray(0, rows.length), {
              tol: 1e-5,
              scaled: true,
              what: "metric",
            });
          },
        });
        await grouped.close();
        assertEquals(heard, layerGroups(config.nLayers, n).map((g) => g.to));
        assertClose(got.logits, want.logits, { tol: 1e-5, scaled: true, what: `logits, ${n} groups` });
        assertClose(got.metric, want.metric, { tol: 1e-5, scaled: true, what: `metric, ${n} groups` });
        for (let l = 0; l < config.nLayers; l++) {
          assertClose(got.layers[l].values, want.layers[l].values, {
            tol: 1e-5,
            scaled: true,
            what: `V ${l}`,
          });
        }
        assert(got.nPos === ids.length);
      }
    });
  }
}

Deno.test("prefill in layer groups stops between groups once its signal is aborted", async () => {
  const { config, weights, tokenizer } = await loadCheckpoint(TEST_MODELS[1].load.modelPath);
  const model = await Model.fromWeights(config, weights, { tokenizer, prefillGroups: config.nLayers });
  try {
    const stop = new AbortController();
    const heard: number[] = [];
    const err = await assertRejects(
      () =>
        model.prefill(tokenizer.encode("Once upon a time"), {
          signal: stop.signal,
          onLayers: (upTo) => (heard.push(upTo), upTo === 2 && stop.abort()),
        }),
      KvrelayError,
    );
    assertEquals([err.code, heard], ["unavailable", [1, 2]]);
  } finally {
    await model.close();
  }
});

Deno.test("prefillGroups other than auto or 1..layers is refused, naming it", async () => {
  const { config, weights, tokenizer } = await loadCheckpoint(TEST_MODELS[1].load.modelPath);
  for (const prefillGroups of [0, 1.5, NaN, config.nLayers + 1]) {
    await assertRejects(
      () => Model.fromWeights(config, weights, { tokenizer, prefillGroups }),
      RangeError,
      "prefillGroups",
    );
  }
});
