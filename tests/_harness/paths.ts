/** Paths tests and benchmarks use. `../shared` sits beside the checkout; the product never reads it. */
export const REPO_DIR = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const SHARED_DIR = `${REPO_DIR}/../shared`;
export const STORIES260K = {
  model: `${SHARED_DIR}/models/stories260K/stories260K.bin`,
  tokenizer: `${SHARED_DIR}/models/stories260K/tok512.bin`,
};
export const KV_SAMPLES_DIR = `${SHARED_DIR}/kv-samples`;
/**
 * Whether the KV samples are there: they live beside the repository (../shared), which CI always
 * has and a GPU host, sent the repository alone, does not.
 */
export const HAVE_KV_SAMPLES = (() => {
  try {
    return Deno.statSync(`${KV_SAMPLES_DIR}/stories260K`).isDirectory;
  } catch {
    return false;
  }
})();
/** Greedy text from BOS alone, from ../shared/models/README.md. */
export const STORIES260K_GREEDY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.";
