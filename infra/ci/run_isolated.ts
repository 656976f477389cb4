/**
 * Runs the tests that drive onnxruntime's WebGPU provider on Mesa's software adapter in a
 * `deno test` process of their own, after the main suite. A crash of that native stack (one
 * clean-clone CI run died with exit 139, a segfault, which 20 reruns did not reproduce) then
 * costs only this process, and a run that died by a signal is run again, at most 3 times in
 * all. A test that fails is a failure at once: only a crash is retried, never an assertion.
 * Writes its JUnit report to `.test-report-isolated.xml`, which .ci/run adds to the count.
 * @module
 */
export const ISOLATED_TESTS = [
  "shared/model/webgpu_test.ts",
  "shared/model/fused_graph_test.ts",
  "shared/model/device_test.ts",
];
const REPORT = ".test-report-isolated.xml";
const ATTEMPTS = 3;

if (import.meta.main) {
  const root = new URL("../../", import.meta.url).pathname;
  let code = 1;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--cached-only", `--junit-path=${REPORT}`, ...ISOLATED_TESTS],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    code = status.code;
    const crashed = status.signal !== null || status.code >= 128;
    if (!crashed) break;
    console.error(
      `[isolated tests] attempt ${attempt} crashed (exit ${status.code}, signal ${status.signal}); ` +
        (attempt < ATTEMPTS ? "running them again" : "giving up"),
    );
  }
  Deno.exit(code);
}
