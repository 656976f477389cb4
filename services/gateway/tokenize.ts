/**
 * vLLM's `POST /tokenize` (`{prompt}` or `{messages}` → `{tokens, count, max_model_len}`) and
 * `POST /detokenize` (`{tokens}` → `{prompt}`), answered by prefill, which holds the tokenizer
 * and chat template the completions use. `GET /v1/models/{id}` is here too: the one model.
 * @module
 */
import type { Hono } from "hono";
import { badRequest, KvrelayError } from "../../shared/errors.ts";
import type { Backend } from "./backend.ts";
import { parseJsonBody, parseMessages } from "./validate.ts";

export const TOKENIZER_PATHS = ["/tokenize", "/detokenize"] as const;

const isIds = (v: unknown): v is number[] =>
  Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 0);

/** A `model` in the body, as vLLM takes it, must be the served one. */
async function checkModel(b: Record<string, unknown>, backend: Backend): Promise<void> {
  if (b.model === undefined || b.model === null) return;
  const m = await backend.model();
  if (b.model !== m.id) {
    throw new KvrelayError("not_found", `the model '${b.model}' does not exist; this server has '${m.id}'`, {
      param: "model",
    });
  }
}

export function tokenizerRoutes(app: Hono, backend: Backend): void {
  app.post("/tokenize", async (c) => {
    const b = parseJsonBody(await c.req.text());
    await checkModel(b, backend);
    const add = b.add_special_tokens;
    if (add !== undefined && typeof add !== "boolean") {
      throw badRequest("'add_special_tokens' must be a boolean", "add_special_tokens");
    }
    let r;
    if (b.messages !== undefined) r = await backend.tokenize({ messages: parseMessages(b.messages) });
    else if (typeof b.prompt === "string") {
      r = await backend.tokenize({
        prompt: b.prompt,
        ...(add === undefined ? {} : { addSpecialTokens: add }),
      });
    } else throw badRequest("'prompt' (a string) or 'messages' is required", "prompt");
    return c.json({ count: r.tokens.length, max_model_len: r.maxModelLen, tokens: r.tokens });
  });
  app.post("/detokenize", async (c) => {
    const b = parseJsonBody(await c.req.text());
    await checkModel(b, backend);
    if (!isIds(b.tokens)) throw badRequest("'tokens' must be an array of token ids", "tokens");
    return c.json({ prompt: await backend.detokenize(b.tokens) });
  });
}

/** `/v1/models` and `/v1/models/{id}`, with the context length as vLLM gives it (`max_model_len`). */
export function modelRoutes(app: Hono, backend: Backend): void {
  const card = (m: { id: string; maxSeqLen: number }) => ({
    id: m.id,
    object: "model",
    created: 0,
    owned_by: "kvrelay",
    ...(m.maxSeqLen > 0 ? { max_model_len: m.maxSeqLen } : {}),
  });
  app.get("/v1/models", async (c) => c.json({ object: "list", data: [card(await backend.model())] }));
  app.get("/v1/models/:id{.+}", async (c) => {
    const m = await backend.model();
    const id = c.req.param("id");
    if (id !== m.id) {
      throw new KvrelayError("not_found", `The model '${id}' does not exist`, { param: "model" });
    }
    return c.json(card(m));
  });
}
