/**
 * The FFI declarations of ./library.ts against the C ABI they call (./kvrelay_cuda.h), read from
 * the header itself: every prototype declared with its argument count, integer widths and pointers
 * in place, the table words (`EI`, `EO`, `DI`, `TM`) at the header's enum positions, and the frame
 * dtype codes (`ED`) at theirs. A mismatch would pass the type checker and corrupt memory at the
 * first call on a GPU host; this needs neither the library nor a device.
 */
import { assertEquals } from "@std/assert";
import { DI, ED, EI, EO, SYMBOLS, TM } from "./library.ts";

const HEADER = (await Deno.readTextFile(new URL("./kvrelay_cuda.h", import.meta.url)))
  .replace(/\/\/[^\n]*/g, "");

/** A C type as the FFI kind it must be declared with ("ptr" for any pointer). */
function kindOf(cType: string): string {
  const t = cType.replace(/\bconst\b/g, "").trim();
  if (t.includes("*")) return "ptr";
  const ints: Record<string, string> = { int32_t: "i32", uint32_t: "u32", uint64_t: "u64", void: "void" };
  if (!(t in ints)) throw new TypeError(`kvrelay_cuda.h: no FFI kind for ${cType}`);
  return ints[t];
}

/** `[result, parameters]` of each `kvr_*` prototype in the header. */
function prototypes(): Record<string, [string, string[]]> {
  const out: Record<string, [string, string[]]> = {};
  for (const m of HEADER.matchAll(/([\w*\s]+?)\s*\b(kvr_\w+)\s*\(([^)]*)\)\s*;/g)) {
    const params = m[3].split(",").map((p) => p.trim().replace(/\w+$/, "")).filter((p) => p !== "");
    out[m[2]] = [kindOf(m[1]), params.map(kindOf)];
  }
  return out;
}

/** The enum's names in order, as the TS tables key them (`EO_BODY_AT` → `bodyAt`). */
function enumWords(name: string): Record<string, number> {
  const body = HEADER.match(new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`))![1];
  return Object.fromEntries(
    body.split(",").map((w) => w.trim()).filter((w) => w !== "").map((w, i) => [
      w.replace(/^[A-Z]+_/, "").toLowerCase().replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase()),
      i,
    ]),
  );
}

Deno.test("SYMBOLS declares every kvr_* prototype of kvrelay_cuda.h with its arguments and result", () => {
  const asKind = (t: string) => t === "buffer" || t === "pointer" ? "ptr" : t;
  const declared: Record<string, [string, string[]]> = Object.fromEntries(
    Object.entries(SYMBOLS).map(([name, s]) => [name, [asKind(s.result), s.parameters.map(asKind)]]),
  );
  assertEquals(declared, prototypes());
});

Deno.test("EI, EO, DI and TM are the words of kvrelay_cuda.h's tables, ED its frame dtypes", () => {
  assertEquals({ ...EI }, enumWords("EncIn"));
  assertEquals({ ...EO }, enumWords("EncOut"));
  assertEquals({ ...DI }, enumWords("DecIn"));
  assertEquals({ ...TM }, enumWords("Timing"));
  assertEquals({ ...ED }, enumWords("EncDtype"));
});
