/**
 * A Hugging Face chat template (`chat_template` in `tokenizer_config.json`, or a
 * `chat_template.jinja` file beside it) rendered with `@huggingface/jinja`, the way
 * transformers' `apply_chat_template` renders it: the special tokens of the config
 * (`bos_token`, `eos_token`, ...) as variables, `add_generation_prompt`, and
 * `raise_exception(msg)`, which fails the request with the template's message. Knows
 * nothing about token ids: turning the text into ids is `chatPromptIds` in
 * shared/pipeline/chat.ts.
 * @module
 */
import { Template } from "@huggingface/jinja";
import { KvrelayError } from "../errors.ts";

/** A function call an assistant turn made (OpenAI's `tool_calls[]`). */
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** One chat turn, with OpenAI's tool fields under the names templates use. */
export interface ChatTurn {
  role: string;
  content: string;
  tool_calls?: ToolCall[];
  /** A `tool` turn: the call it answers. */
  tool_call_id?: string;
}

/** A token in `tokenizer_config.json`: a string or an AddedToken object `{ content }`. */
function tokenString(tok: unknown): string | undefined {
  if (typeof tok === "string") return tok;
  const content = (tok as { content?: unknown } | null | undefined)?.content;
  return typeof content === "string" ? content : undefined;
}

/** The template source of a `chat_template` field: a string, or a list of `{ name, template }`. */
function pickSource(field: unknown, name: string): string | undefined {
  if (field === undefined || field === null) return undefined;
  if (typeof field === "string") return field;
  if (Array.isArray(field)) {
    const named = field.find((t) => t?.name === name);
    if (typeof named?.template === "string") return named.template;
    const names = field.map((t) => t?.name).join(", ");
    throw new KvrelayError(
      "bad_request",
      `chat_template has no template named "${name}" (it has: ${names})`,
      {
        param: "modelPath",
      },
    );
  }
  throw new KvrelayError("bad_request", "chat_template must be a string or a list of {name, template}", {
    param: "modelPath",
  });
}

/** A parsed chat template with the special tokens it is rendered with. */
export class ChatTemplate {
  /** The Jinja source. */
  readonly source: string;
  /** `bos_token` as text ("" when the config has none). */
  readonly bosToken: string;
  /** `eos_token` as text ("" when the config has none). */
  readonly eosToken: string;
  readonly #template: Template;
  readonly #specials: Record<string, string>;

  /**
   * Parses `source`; a syntax error is a `bad_request` naming the template.
   *
   * @example
   * ```ts
   * import { ChatTemplate } from "./chat_template.ts";
   * const t = new ChatTemplate("{{ bos_token }}{% for m in messages %}Q: {{ m.content }}\n{% endfor %}A:", {
   *   specialTokens: { bos_token: "<s>" },
   * });
   * t.render([{ role: "user", content: "Hi" }]); // "<s>Q: Hi\nA:"
   * ```
   */
  constructor(source: string, opts: { specialTokens?: Record<string, string> } = {}) {
    this.source = source;
    this.#specials = { ...opts.specialTokens };
    this.bosToken = this.#specials.bos_token ?? "";
    this.eosToken = this.#specials.eos_token ?? "";
    try {
      this.#template = new Template(source);
    } catch (err) {
      throw new KvrelayError("bad_request", `chat template does not parse: ${(err as Error).message}`, {
        param: "modelPath",
        cause: err,
      });
    }
  }

  /**
   * The template of a parsed `tokenizer_config.json`, or undefined when it has none. A list
   * of named templates gives the one called `name` (default "default").
   */
  static fromTokenizerConfig(
    config: Record<string, unknown>,
    opts: { name?: string; source?: string } = {},
  ): ChatTemplate | undefined {
    const source = pickSource(config.chat_template, opts.name ?? "default") ?? opts.source;
    if (source === undefined) return undefined;
    const specialTokens: Record<string, string> = {};
    for (const [k, v] of Object.entries(config)) {
      const s = k.endsWith("_token") ? tokenString(v) : undefined;
      if (s !== undefined) specialTokens[k] = s;
    }
    return new ChatTemplate(source, { specialTokens });
  }

  /**
   * Reads the template of a Hugging Face folder: `tokenizer_config.json`'s `chat_template`,
   * else `chat_template.jinja`. Undefined when the folder has neither.
   */
  static async load(dir: string, opts: { name?: string } = {}): Promise<ChatTemplate | undefined> {
    const base = dir.replace(/\/+$/, "");
    const config = await readOptional(`${base}/tokenizer_config.json`);
    let parsed: Record<string, unknown> = {};
    if (config !== undefined) {
      try {
        parsed = JSON.parse(config);
      } catch (err) {
        throw new KvrelayError("bad_request", `${base}/tokenizer_config.json: ${(err as Error).message}`, {
          param: "modelPath",
          cause: err,
        });
      }
    }
    const jinja = parsed.chat_template === undefined
      ? await readOptional(`${base}/chat_template.jinja`)
      : undefined;
    return ChatTemplate.fromTokenizerConfig(parsed, { name: opts.name, source: jinja });
  }

  /**
   * The prompt text of `messages`. The template's `raise_exception(msg)` (the jinja
   * runtime's own, which throws `msg`), or any other failure while rendering these
   * messages, is a `bad_request` on `messages` with that message, as transformers raises
   * a `TemplateError` and OpenAI-compatible servers answer 400.
   */
  render(messages: ChatTurn[], opts: { addGenerationPrompt?: boolean } = {}): string {
    try {
      return this.#template.render({
        ...this.#specials,
        messages: messages.map((m) => ({
          role: m.role,
          content: m.content,
          ...(m.tool_calls ? { tool_calls: m.tool_calls } : {}),
          ...(m.tool_call_id !== undefined ? { tool_call_id: m.tool_call_id } : {}),
        })),
        add_generation_prompt: opts.addGenerationPrompt ?? true,
      });
    } catch (err) {
      throw new KvrelayError("bad_request", (err as Error).message, { param: "messages", cause: err });
    }
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new KvrelayError("bad_request", `${path} cannot be read: ${(err as Error).message}`, {
      param: "modelPath",
      cause: err,
    });
  }
}
