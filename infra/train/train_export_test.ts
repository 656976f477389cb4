/**
 * infra/train/train.py against the runtime: a two-step training run on the second model's layer
 * shape (8 query heads and 4 KV heads of head_dim 128 over hidden 512, SwiGLU 1536; 2 layers, the
 * byte tokenizer), on a small corpus in the large corpus' train/ + heldout/ layout, exported as
 * train.py exports, loaded by the runtime: its next-token logits must equal those of train.py's own
 * PyTorch model on the exported (fp16) weights.
 *
 * Needs a python3 with PyTorch (Debian's python3-torch will do); where there is none the test is
 * reported as ignored, not passed.
 */
import { assert, assertEquals } from "@std/assert";
import { loadHfCheckpoint } from "../../shared/model/hf_checkpoint.ts";
import { Model } from "../../shared/model/model.ts";
import type { Tokenizer } from "../../shared/tokenizer/mod.ts";
import { REPO_DIR } from "../../tests/_harness/paths.ts";

async function pythonWithTorch(): Promise<string | undefined> {
  for (const py of ["python3", "/usr/bin/python3"]) {
    try {
      const r = await new Deno.Command(py, { args: ["-c", "import torch"], stdout: "null", stderr: "null" })
        .output();
      if (r.success) return py;
    } catch { /* not installed */ }
  }
  return undefined;
}

const PY = await pythonWithTorch();

/** train.py's ByteTok: UTF-8 bytes shifted past the three specials (bos 0, eos 1, pad 2). */
const byteTokenizer: Tokenizer = {
  vocabSize: 259,
  bosId: 0,
  eosId: 1,
  encode: (
    text,
    opts,
  ) => [...(opts?.bos === false ? [] : [0]), ...new TextEncoder().encode(text).map((b) => b + 3)],
  decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids.filter((i) => i >= 3), (i) => i - 3)),
  decodePiece: (_, id) => (id >= 3 ? String.fromCharCode(id - 3) : ""),
};

/** Last-position logits of train.py's Llama on an exported folder (its fp16 weights, in fp32). */
const TORCH_LOGITS = `
import json, struct, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
import train
d, ids = sys.argv[2], json.loads(sys.argv[3])
cfg = json.load(open(f"{d}/config.json"))
keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "max_position_embeddings", "rope_theta", "rms_norm_eps")
model = train.Llama(train.Config(**{k: cfg[k] for k in keys}))
raw = open(f"{d}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
sd = {}
for k, v in json.loads(raw[8:8 + n]).items():
    if k != "__metadata__":
        a, b = v["data_offsets"]
        sd[k] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], np.float16).reshape(v["shape"]).astype(np.float32))
sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
model.load_state_dict(sd)
model.eval()
with torch.no_grad():
    print(json.dumps(model(torch.tensor([ids]))[0, -1].tolist()))
`;

Deno.test({
  name: "train.py's export of the second model's layer shape gives the runtime PyTorch's logits",
  ignore: PY === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kvrelay-train-" });
    try {
      // the corpus: this checkout's own prose, one paragraph a line, in the large corpus' layout
      const paras = (await Deno.readTextFile(`${REPO_DIR}/README.md`)).split(/\n\s*\n/)
        .map((p) => p.replace(/\s+/g, " ").trim()).filter((p) => p.length > 40);
      for (const split of ["train", "heldout"]) {
        const mine = paras.filter((_, i) => (i % 8 === 0) === (split === "heldout"));
        await Deno.mkdir(`${dir}/corpus/${split}`, { recursive: true });
        await Deno.writeTextFile(`${dir}/corpus/${split}/readme.txt`, mine.join("\n\n"));
      }
      // 256 byte-tokens a row: the task documents of the mix need more than 128
      const shape = "--hidden 512 --layers 2 --heads 8 --kv-heads 4 --head-dim 128 --intermediate 1536";
      const run = "--seq 256 --batch 2 --steps 2 --workers 0 --mix text --probe-every 0";
      const train = await new Deno.Command(PY!, {
        args: [
          `${REPO_DIR}/infra/train/train.py`,
          ...`--corpus ${dir}/corpus --tokenizer bytes ${shape} ${run} --out ${dir}/model`.split(" "),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(train.stdout) + new TextDecoder().decode(train.stderr);
      assert(train.success, `train.py failed:\n${log}`);
      assert(/trained 2 steps/.test(log), log);

      const { config, weights } = await loadHfCheckpoint(`${dir}/model`);
      assertEquals(
        [config.nLayers, config.nHeads, config.nKvHeads, config.headDim, config.dim, config.hiddenDim],
        [2, 8, 4, 128, 512, 1536],
      );
      const ids = byteTokenizer.encode("kvrelay hands the KV cache from prefill to decode, made small.");
      const ref = await new Deno.Command(PY!, {
        args: ["-c", TORCH_LOGITS, `${REPO_DIR}/infra/train`, `${dir}/model`, JSON.stringify(ids)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(ref.success, new TextDecoder().decode(ref.stderr));
      const want: number[] = JSON.parse(new TextDecoder().decode(ref.stdout));
      const model = await Model.fromWeights(config, weights, { tokenizer: byteTokenizer });
      try {
        const got = (await model.prefill(ids)).logits;
        assertEquals(got.length, want.length);
        let diff = 0, range = 0;
        for (let i = 0; i < got.length; i++) {
          diff = Math.max(diff, Math.abs(got[i] - want[i]));
          range = Math.max(range, Math.abs(want[i]));
        }
        // both run fp32 over the same fp16 weights: only summation order differs
        assert(diff <= 1e-4 * Math.max(1, range), `max |logit diff| ${diff} (largest |logit| ${range})`);
      } finally {
        await model.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
