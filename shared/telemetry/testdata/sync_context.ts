/**
 * A synchronous stack context manager for in-process tests: without `OTEL_DENO` no context
 * manager is registered and `context.with` does nothing. Good for sync code only.
 */
import { type Context, context, type ContextManager, ROOT_CONTEXT } from "@opentelemetry/api";

class StackContextManager implements ContextManager {
  #stack: Context[] = [ROOT_CONTEXT];
  active(): Context {
    return this.#stack[this.#stack.length - 1];
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.#stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#stack = [ROOT_CONTEXT];
    return this;
  }
}

/** Runs `fn` with the stack context manager registered globally. */
export function withSyncContext<T>(fn: () => T): T {
  context.setGlobalContextManager(new StackContextManager());
  try {
    return fn();
  } finally {
    context.disable();
  }
}
