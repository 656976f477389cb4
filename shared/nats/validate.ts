/**
 * Checks for message bodies that crossed a trust boundary: each check takes a parsed JSON value
 * and the path it sits at, and returns the value typed, or throws a 400 `KvrelayError` naming
 * the path. An object check copies only the fields it knows, so a receiver holds exactly the
 * declared shape after one parse. shared/handoff/contract.ts builds every message's check
 * from these.
 *
 * @example
 * ```ts
 * import { int, obj, str } from "./validate.ts";
 * const point = obj({ name: str({ max: 16 }), x: int(0, 10) });
 * point({ name: "a", x: 3, extra: true }, "body"); // { name: "a", x: 3 }
 * ```
 * @module
 */
import { KvrelayError } from "../errors.ts";

/** Checks `value` (found at `path`) and returns it typed; throws a 400 otherwise. */
export type Check<T> = (value: unknown, path: string) => T;

/** The type a check returns. */
export type Checked<C> = C extends Check<infer T> ? T : never;

/** The 400 every failed check throws: the path is the `param`. */
export function invalid(path: string, what: string): KvrelayError {
  return new KvrelayError("bad_request", `${path} ${what}`, { param: path });
}

/** A string of `min`..`max` characters (default 1..1024) matching `pattern` when given. */
export function str(opts: { min?: number; max?: number; pattern?: RegExp } = {}): Check<string> {
  const min = opts.min ?? 1, max = opts.max ?? 1024;
  return (v, path) => {
    if (typeof v !== "string") throw invalid(path, "must be a string");
    if (v.length < min || v.length > max) throw invalid(path, `must have ${min} to ${max} characters`);
    if (opts.pattern && !opts.pattern.test(v)) throw invalid(path, `does not match ${opts.pattern}`);
    return v;
  };
}

/** An integer in [min, max]. */
export function int(min: number, max: number): Check<number> {
  return (v, path) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw invalid(path, `must be an integer in [${min}, ${max}]`);
    }
    return v;
  };
}

/** A finite number in [min, max]. */
export function num(min: number, max: number): Check<number> {
  return (v, path) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      throw invalid(path, `must be a number in [${min}, ${max}]`);
    }
    return v;
  };
}

export const bool: Check<boolean> = (v, path) => {
  if (typeof v !== "boolean") throw invalid(path, "must be a boolean");
  return v;
};

/** One of the listed strings or numbers. */
export function oneOf<const T extends readonly (string | number)[]>(values: T): Check<T[number]> {
  return (v, path) => {
    if (!values.includes(v as T[number])) throw invalid(path, `must be one of ${values.join(", ")}`);
    return v as T[number];
  };
}

/** `null` or what `check` accepts. */
export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, path) => v === null ? null : check(v, path);
}

/** Absent (undefined) or what `check` accepts; `null` counts as absent. */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, path) => v === undefined || v === null ? undefined : check(v, path);
}

/** Either check: the first that passes. */
export function either<A, B>(a: Check<A>, b: Check<B>): Check<A | B> {
  return (v, path) => {
    try {
      return a(v, path);
    } catch {
      return b(v, path);
    }
  };
}

/** An array of at most `max` items, each checked. */
export function arr<T>(item: Check<T>, opts: { min?: number; max: number }): Check<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) throw invalid(path, "must be an array");
    if (v.length < (opts.min ?? 0) || v.length > opts.max) {
      throw invalid(path, `must have ${opts.min ?? 0} to ${opts.max} items`);
    }
    return v.map((x, i) => item(x, `${path}[${i}]`));
  };
}

type Shape = Record<string, Check<unknown>>;
type Required<S extends Shape> = { [K in keyof S]: undefined extends Checked<S[K]> ? never : K }[keyof S];
type Optional<S extends Shape> = Exclude<keyof S, Required<S>>;
/** The object a shape describes: fields whose check may give `undefined` are optional. */
export type ObjectOf<S extends Shape> =
  & { [K in Required<S>]: Checked<S[K]> }
  & { [K in Optional<S>]?: Exclude<Checked<S[K]>, undefined> };

/** A plain object with the shape's fields (others are dropped). */
export function obj<S extends Shape>(shape: S): Check<ObjectOf<S>> {
  return (v, path) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(path, "must be an object");
    const src = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, check] of Object.entries(shape)) {
      const got = check(Object.hasOwn(src, k) ? src[k] : undefined, `${path}.${k}`);
      if (got !== undefined) out[k] = got;
    }
    return out as ObjectOf<S>;
  };
}

/** A union told apart by the string field `tag`: one object check per tag value. */
export function tagged<K extends string, M extends Record<string, Check<unknown>>>(
  tag: K,
  variants: M,
): Check<Checked<M[keyof M]>> {
  return (v, path) => {
    const t = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[tag] : undefined;
    if (typeof t !== "string" || !Object.hasOwn(variants, t)) {
      throw invalid(`${path}.${tag}`, `must be one of ${Object.keys(variants).join(", ")}`);
    }
    return { ...(variants[t](v, path) as object), [tag]: t } as Checked<M[keyof M]>;
  };
}

/** A JSON object whose fields are not checked (served as is, e.g. stats). */
export const anyObject: Check<Record<string, unknown>> = (v, path) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(path, "must be an object");
  return v as Record<string, unknown>;
};
