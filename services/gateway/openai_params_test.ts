import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { KvrelayError } from "../../shared/errors.ts";
import { OPENAI_PARAMS, paramsMarkdown, refuseUnsupported } from "./openai_params.ts";

Deno.test("refuseUnsupported() names the parameter, and passes values that ask for nothing missing", () => {
  const refused = (body: Record<string, unknown>, kind: "text" | "chat") => {
    const e = assertThrows(() => refuseUnsupported(body, kind), KvrelayError);
    return [e.status, e.param];
  };
  assertEquals(refused({ tools: [{ type: "function" }] }, "chat"), [400, "tools"]);
  assertEquals(refused({ tool_choice: "auto" }, "chat"), [400, "tool_choice"]);
  assertEquals(refused({ response_format: { type: "json_schema" } }, "chat"), [400, "response_format"]);
  assertEquals(refused({ best_of: 3, n: 2, stream: true }, "text"), [400, "best_of"]);
  assertEquals(refused({ echo: true }, "chat"), [400, "echo"]);
  assertEquals(refused({ top_logprobs: 2 }, "text"), [400, "top_logprobs"]);
  refuseUnsupported({ tools: [], tool_choice: "none", response_format: { type: "text" }, user: "u" }, "chat");
  refuseUnsupported({ best_of: 2, n: 2, suffix: "", echo: true, some_unknown_key: 1 }, "text");
  refuseUnsupported({ tools: null, audio: null }, "chat");
});

Deno.test("every parameter of the table has a note, and the README shows the table", () => {
  for (const [name, r] of Object.entries(OPENAI_PARAMS)) {
    assertEquals(r.note.length > 3, true, name);
    if (r.handling === "refused") {
      assertEquals(typeof r.refuse, "function", `${name}: a refusal needs its rule`);
    }
  }
  const readme = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
  assertStringIncludes(readme, paramsMarkdown());
});
