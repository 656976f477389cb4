/**
 * bench:two-gpu run small on this machine's CPU, with the services pinned as on a two-GPU host
 * (KVRELAY_GPU=0 and 1 through the GPU-select layer; the model stays on the CPU, so the pins
 * change nothing but must not stop anything): both layouts serve every configuration without an
 * error, the compressed hand-off moves fewer bytes than fp16, and decode generates the same
 * greedy text whichever layout it ran in. Timings are the bench's to report, not checked here.
 */
import { assert, assertEquals } from "@std/assert";
import { REPO_DIR } from "../_harness/paths.ts";
import { canBuildGpuSelectLayer } from "../../shared/webgpu/gpu_select/_testing.ts";

interface Row {
  layout: string;
  config: string;
  phase: string;
  requests: number;
  errors: number;
  ratio: number;
  wire_mb: number;
  decode_tok_s: number | null;
  same_text_as_first_layout: boolean | null;
}

Deno.test({
  name: "bench:two-gpu: split and shared layouts serve every configuration and generate the same text",
  ignore: !canBuildGpuSelectLayer,
  async fn() {
    // services look for the layer in the repository's .vulkan/ (git-ignored), as deployed
    const build = await new Deno.Command("bash", { args: [`${REPO_DIR}/infra/gpu/build_gpu_select.sh`] })
      .output();
    assert(build.success, new TextDecoder().decode(build.stderr));
    const dir = await Deno.makeTempDir();
    try {
      const out = `${dir}/two_gpu_ci.json`;
      const run = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--cached-only",
          `${REPO_DIR}/tests/bench/two_gpu.ts`,
          ...["--gpus", "0,1", "--device", "cpu", "--codec-device", "cpu", "--codecs", "fp16,fast"],
          ...[
            "--evict",
            "1",
            "--prompt-tokens",
            "256",
            "--max-tokens",
            "8",
            "--reps",
            "1",
            "--concurrent",
            "2",
          ],
          ...["--out", out],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(run.success, new TextDecoder().decode(run.stderr).slice(-2000));
      const result = JSON.parse(await Deno.readTextFile(out)) as {
        rows: Row[];
        placement: Record<string, { pids: Record<string, number> }>;
      };
      assertEquals(Object.keys(result.placement), ["split", "shared"]);
      assertEquals(result.rows.length, 2 * 2 * 2); // layouts × configs × phases
      for (const r of result.rows) {
        assertEquals(r.errors, 0, `${r.layout} ${r.config} ${r.phase}`);
        assert(r.decode_tok_s !== null && r.decode_tok_s > 0);
      }
      const seq = (layout: string, config: string) =>
        result.rows.find((r) => r.layout === layout && r.config === config && r.phase === "sequential")!;
      for (const config of ["fp16", "fast"]) {
        assertEquals(seq("shared", config).same_text_as_first_layout, true);
      }
      assert(seq("split", "fast").wire_mb < seq("split", "fp16").wire_mb / 2);
      assert(await Deno.stat(out.replace(/\.json$/, ".svg")));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
