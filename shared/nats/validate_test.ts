import { assertEquals, assertThrows } from "@std/assert";
import { KvrelayError } from "../errors.ts";
import { arr, either, int, num, obj, oneOf, optional, str, tagged } from "./validate.ts";

function rejects(f: () => unknown, param: string) {
  const e = assertThrows(f, KvrelayError);
  assertEquals([e.code, e.param], ["bad_request", param]);
}

Deno.test("obj() keeps the declared fields only and names the failing path", () => {
  const point = obj({
    name: str({ max: 4 }),
    xs: arr(int(0, 9), { max: 3 }),
    tag: optional(oneOf(["a", "b"])),
  });
  assertEquals(point({ name: "p", xs: [1, 2], extra: { deep: 1 } }, "body"), { name: "p", xs: [1, 2] });
  assertEquals(point({ name: "p", xs: [], tag: null }, "body"), { name: "p", xs: [] });
  rejects(() => point(null, "body"), "body");
  rejects(() => point([], "body"), "body");
  rejects(() => point({}, "body"), "body.name");
  rejects(() => point({ name: "toolong", xs: [] }, "body"), "body.name");
  rejects(() => point({ name: "p", xs: [1, 10] }, "body"), "body.xs[1]");
  rejects(() => point({ name: "p", xs: [1, 2, 3, 4] }, "body"), "body.xs");
  rejects(() => point({ name: "p", xs: [], tag: "c" }, "body"), "body.tag");
});

Deno.test("num() and int() refuse NaN, infinities, strings and out-of-range values", () => {
  for (const bad of [NaN, Infinity, -1, 11, "3", null, undefined, true]) {
    rejects(() => num(0, 10)(bad, "n"), "n");
  }
  rejects(() => int(0, 10)(2.5, "i"), "i");
  assertEquals(num(0, 10)(2.5, "n"), 2.5);
  assertEquals(either(int(1, 8), oneOf(["auto"]))("auto", "k"), "auto");
  rejects(() => either(int(1, 8), oneOf(["auto"]))("8", "k"), "k");
});

Deno.test("tagged() picks the variant by its tag and refuses an unknown one", () => {
  const ev = tagged("type", {
    a: obj({ type: oneOf(["a"]), n: int(0, 9) }),
    b: obj({ type: oneOf(["b"]), s: str() }),
  });
  assertEquals(ev({ type: "a", n: 1, s: "x" }, "ev"), { type: "a", n: 1 });
  rejects(() => ev({ type: "c" }, "ev"), "ev.type");
  rejects(() => ev({ type: "b", n: 1 }, "ev"), "ev.s");
  rejects(() => ev(null, "ev"), "ev.type");
});
