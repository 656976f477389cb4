/**
 * Debian's Chromium for the browser tests, driven by playwright-core. `findChromium()` gives
 * its path, installing the `chromium` package first when it is missing and this process may
 * (root with apt-get, as infra/bootstrap.sh does), or the reason it cannot: a test then skips
 * and prints that reason. `openBrowser()` starts it headless on a fresh, empty profile with
 * everything that would reach outside the machine turned off.
 * @module
 */
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** Chromium's path, or why there is none. */
export async function findChromium(): Promise<{ path: string } | { why: string }> {
  if (await exists(CHROMIUM_PATH)) return { path: CHROMIUM_PATH };
  if (Deno.uid() !== 0) return { why: `no ${CHROMIUM_PATH}, and only root may 'apt-get install chromium'` };
  try {
    const out = await new Deno.Command("apt-get", {
      args: ["install", "-y", "-qq", "chromium"],
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      return {
        why: `'apt-get install chromium' failed: ${new TextDecoder().decode(out.stderr).trim().slice(-300)}`,
      };
    }
  } catch (err) {
    return { why: `no ${CHROMIUM_PATH}, and apt-get could not run: ${(err as Error).message}` };
  }
  return (await exists(CHROMIUM_PATH))
    ? { path: CHROMIUM_PATH }
    : { why: `'apt-get install chromium' left no ${CHROMIUM_PATH}` };
}

/** A headless browser on a new empty profile; `close()` stops it and removes the profile. */
export async function openBrowser(
  path: string,
): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await Deno.makeTempDir({ prefix: "kvrelay-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: path,
    headless: true,
    args: ARGS,
  });
  return {
    context,
    close: async () => {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
