/**
 * A local stand-in for `jsr:@std/assert@1`, built on `node:assert`, because JSR is not
 * reachable from our machines. It keeps the same names and call shapes, so pointing the
 * `@std/assert` entry of deno.json at `jsr:@std/assert@1` switches back with no other change.
 * @module
 */
import nodeAssert from "node:assert";
import { isDeepStrictEqual } from "node:util";

/** Thrown by every assertion here, like std's `AssertionError`. */
export class AssertionError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AssertionError";
  }
}

function suffix(msg?: string): string {
  return msg ? `: ${msg}` : "";
}

function show(v: unknown): string {
  try {
    return Deno.inspect(v, { depth: 6, iterableLimit: 40, strAbbreviateSize: 200 });
  } catch {
    return String(v);
  }
}

/** Deep equality the way std defines it (structural, NaN equals NaN, same prototypes). */
export function equal(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b);
}

/** Asserts that `expr` is truthy. */
export function assert(expr: unknown, msg = ""): asserts expr {
  if (!expr) throw new AssertionError(msg || "Expected expression to be true");
}

/** Asserts that `expr` is falsy. */
export function assertFalse(expr: unknown, msg = ""): void {
  if (expr) throw new AssertionError(msg || "Expected expression to be false");
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  try {
    nodeAssert.deepStrictEqual(actual, expected);
  } catch (cause) {
    throw new AssertionError(
      `Values are not equal${suffix(msg)}\n  actual:   ${show(actual)}\n  expected: ${show(expected)}`,
      { cause },
    );
  }
}

/** Asserts deep inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  if (equal(actual, expected)) {
    throw new AssertionError(`Expected actual: ${show(actual)} not to be equal${suffix(msg)}`);
  }
}

/** Asserts `Object.is` equality. */
export function assertStrictEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  if (!Object.is(actual, expected)) {
    throw new AssertionError(
      `Values are not strictly equal${suffix(msg)}\n  actual:   ${show(actual)}\n  expected: ${
        show(expected)
      }`,
    );
  }
}

/** Asserts `!Object.is` equality. */
export function assertNotStrictEquals<T>(actual: T, expected: T, msg?: string): void {
  if (Object.is(actual, expected)) {
    throw new AssertionError(
      `Expected "actual" to not be strictly equal to: ${show(expected)}${suffix(msg)}`,
    );
  }
}

/** Asserts `|actual - expected| <= tolerance` (std's default tolerance is 1e-7). */
export function assertAlmostEquals(actual: number, expected: number, tolerance = 1e-7, msg?: string): void {
  if (Object.is(actual, expected)) return;
  const delta = Math.abs(expected - actual);
  if (!(delta <= tolerance)) {
    throw new AssertionError(
      `Expected actual: "${actual}" to be close to "${expected}": delta "${delta}" is greater than "${tolerance}"${
        suffix(msg)
      }`,
    );
  }
}

/** Asserts that a value is neither null nor undefined. */
export function assertExists<T>(actual: T, msg?: string): asserts actual is NonNullable<T> {
  if (actual === undefined || actual === null) {
    throw new AssertionError(`Expected actual: "${actual}" to not be null or undefined${suffix(msg)}`);
  }
}

/** Asserts `actual > expected`. */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual > expected)) throw new AssertionError(msg ?? `Expect ${show(actual)} > ${show(expected)}`);
}

/** Asserts `actual >= expected`. */
export function assertGreaterOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual >= expected)) throw new AssertionError(msg ?? `Expect ${show(actual)} >= ${show(expected)}`);
}

/** Asserts `actual < expected`. */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual < expected)) throw new AssertionError(msg ?? `Expect ${show(actual)} < ${show(expected)}`);
}

/** Asserts `actual <= expected`. */
export function assertLessOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual <= expected)) throw new AssertionError(msg ?? `Expect ${show(actual)} <= ${show(expected)}`);
}

// deno-lint-ignore no-explicit-any
type AnyConstructor = abstract new (...args: any[]) => any;

/** Asserts that `obj` is an instance of `type`. */
export function assertInstanceOf<T extends AnyConstructor>(
  actual: unknown,
  expectedType: T,
  msg = "",
): asserts actual is InstanceType<T> {
  if (actual instanceof expectedType) return;
  const name = (actual as { constructor?: { name?: string } })?.constructor?.name ?? typeof actual;
  throw new AssertionError(
    msg || `Expected object to be an instance of "${expectedType.name}" but was "${name}"`,
  );
}

/** Asserts that `actual` matches `expected`. */
export function assertMatch(actual: string, expected: RegExp, msg?: string): void {
  if (!expected.test(actual)) {
    throw new AssertionError(`Expected actual: "${actual}" to match: "${expected}"${suffix(msg)}`);
  }
}

/** Asserts that `actual` contains `expected`. */
export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  if (!actual.includes(expected)) {
    throw new AssertionError(`Expected actual: "${actual}" to contain: "${expected}"${suffix(msg)}`);
  }
}

/** Asserts that `actual` includes every value of `expected` (deep equality). */
export function assertArrayIncludes<T>(actual: ArrayLike<T>, expected: ArrayLike<T>, msg?: string): void {
  const missing: T[] = [];
  for (let i = 0; i < expected.length; i++) {
    let found = false;
    for (let j = 0; j < actual.length; j++) {
      if (equal(expected[i], actual[j])) {
        found = true;
        break;
      }
    }
    if (!found) missing.push(expected[i]);
  }
  if (missing.length) {
    throw new AssertionError(
      `Expected actual: "${show(actual)}" to include: "${show(expected)}"${suffix(msg)}`,
    );
  }
}

/** Asserts that `actual` deeply contains the properties of `expected`. */
export function assertObjectMatch(
  actual: Record<PropertyKey, unknown>,
  expected: Record<PropertyKey, unknown>,
  msg?: string,
): void {
  for (const key of Object.keys(expected)) {
    const e = expected[key];
    const a = actual?.[key];
    if (e && typeof e === "object" && !Array.isArray(e) && a && typeof a === "object") {
      assertObjectMatch(a as Record<PropertyKey, unknown>, e as Record<PropertyKey, unknown>, msg);
    } else {
      assertEquals(a, e, msg ?? `property ${String(key)}`);
    }
  }
}

function checkError(
  e: unknown,
  ErrorClass?: AnyConstructor,
  msgIncludes?: string,
  msg?: string,
): void {
  if (ErrorClass && !(e instanceof ErrorClass)) {
    throw new AssertionError(
      `Expected error to be instance of "${ErrorClass.name}", but was "${
        (e as Error)?.constructor?.name ?? typeof e
      }"${suffix(msg)}: ${show(e)}`,
    );
  }
  if (msgIncludes !== undefined) {
    const m = (e as Error)?.message ?? "";
    if (!m.includes(msgIncludes)) {
      throw new AssertionError(
        `Expected error message to include "${msgIncludes}", but got "${m}"${suffix(msg)}`,
      );
    }
  }
}

/** Asserts that `fn` throws; returns the error. */
export function assertThrows(fn: () => unknown, msg?: string): unknown;
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: abstract new (...args: any[]) => E,
  msgIncludes?: string,
  msg?: string,
): E;
export function assertThrows(
  fn: () => unknown,
  errorClassOrMsg?: AnyConstructor | string,
  msgIncludes?: string,
  msg?: string,
): unknown {
  const ErrorClass = typeof errorClassOrMsg === "function" ? errorClassOrMsg : undefined;
  if (typeof errorClassOrMsg === "string") msg = errorClassOrMsg;
  try {
    fn();
  } catch (e) {
    checkError(e, ErrorClass, msgIncludes, msg);
    return e;
  }
  throw new AssertionError(`Expected function to throw${suffix(msg)}`);
}

/** Asserts that the promise returned by `fn` rejects; resolves to the error. */
export function assertRejects(fn: () => PromiseLike<unknown>, msg?: string): Promise<unknown>;
export function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass: abstract new (...args: any[]) => E,
  msgIncludes?: string,
  msg?: string,
): Promise<E>;
export async function assertRejects(
  fn: () => PromiseLike<unknown>,
  errorClassOrMsg?: AnyConstructor | string,
  msgIncludes?: string,
  msg?: string,
): Promise<unknown> {
  const ErrorClass = typeof errorClassOrMsg === "function" ? errorClassOrMsg : undefined;
  if (typeof errorClassOrMsg === "string") msg = errorClassOrMsg;
  try {
    await fn();
  } catch (e) {
    checkError(e, ErrorClass, msgIncludes, msg);
    return e;
  }
  throw new AssertionError(`Expected function to reject${suffix(msg)}`);
}

/** Always throws. */
export function fail(msg?: string): never {
  throw new AssertionError(`Failed assertion${suffix(msg)}`);
}

/** Marks code that must not be reached. */
export function unreachable(msg?: string): never {
  throw new AssertionError(msg ?? "Unreachable");
}
