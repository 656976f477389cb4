/**
 * GET /dashboard in a real browser (Debian's headless Chromium driven by playwright-core)
 * against the real services: after real completions the page shows their count in
 * `data-metric="requests_total"`, lists them with their `usage.kv`, says why there is no span
 * waterfall (no trace receiver runs here), and is kept as a screenshot, out/dashboard.png.
 * Every wait is for a condition on the page, never a fixed time.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { findChromium, openBrowser } from "../_harness/chromium.ts";

const ENV = { KVRELAY_MODEL: STORIES260K.model, KVRELAY_TOKENIZER: STORIES260K.tokenizer };
const SCREENSHOT = `${REPO_DIR}/out/dashboard.png`;

const chromium = await findChromium();
if ("why" in chromium) console.log(`dashboard browser test skipped: ${chromium.why}`);

Deno.test({
  name: "e2e: /dashboard in headless Chromium shows the completed requests and their usage.kv",
  ignore: "why" in chromium,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if ("why" in chromium) return;
    const nats = await startNatsServer();
    const svc = await startServices(nats.url, ENV);
    const browser = await openBrowser(chromium.path);
    try {
      const ids: string[] = [];
      const ask = async (path: string, body: Record<string, unknown>) => {
        const r = await fetch(`${svc.baseUrl}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "stories260K", max_tokens: 8, temperature: 0, ...body }),
        });
        assertEquals(r.status, 200);
        ids.push((await r.json()).id);
      };
      await ask("/v1/completions", { prompt: "Once upon a time" });
      await ask("/v1/completions", {
        prompt: "The little dog ran to the park to play with the ball",
        kv_compression: { eviction_rate: 2, protected_window: 2, block_size: 2 },
      });
      await ask("/v1/chat/completions", { messages: [{ role: "user", content: "Hello" }] });

      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${svc.baseUrl}/dashboard?poll_ms=250`);
      const total = page.locator('[data-metric="requests_total"]');
      await total.filter({ hasText: /^3$/ }).waitFor({ timeout: 30_000 });
      assertEquals(await total.textContent(), String(ids.length));
      // each request is listed, newest first, with its usage.kv
      const rows = page.locator("#recent tbody tr");
      await rows.nth(2).waitFor({ timeout: 30_000 });
      assertEquals(
        await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-request"))),
        [...ids].reverse(),
      );
      const codec = await rows.first().locator("td").nth(5).textContent();
      assertEquals(codec !== "–" && codec !== "", true, "usage.kv's codec is shown");
      // the services' metrics reached the page: hand-off percentiles and decode gauges
      await page.locator("#handoff dd").nth(4).filter({ hasText: /^3$/ }).waitFor({ timeout: 30_000 });
      await page.locator("#decode tbody tr").first().waitFor({ timeout: 30_000 });
      // no trace receiver here: the page says so, and how to start one
      const traceStatus = page.locator('#trace-status[data-running="false"]');
      await traceStatus.waitFor({ timeout: 30_000 });
      assertStringIncludes(await traceStatus.textContent() ?? "", "tracing is off");
      // a second poll gives a request rate
      await page.locator("#rate").filter({ hasText: /^\d/ }).waitFor({ timeout: 30_000 });
      await Deno.mkdir(`${REPO_DIR}/out`, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      console.log(`dashboard screenshot: ${SCREENSHOT}`);
      assertEquals(errors, [], "no script error on the page");
    } finally {
      await browser.close();
      await svc.stop();
      await nats.stop();
    }
  },
});
