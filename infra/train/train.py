"""Trains kvrelay-tiny: a small Llama-style decoder (RMSNorm, RoPE rotate_half, SwiGLU, GQA)
whose state_dict names match transformers' LlamaForCausalLM, and exports it in Hugging Face
layout (config.json, model.safetensors fp16, tokenizer files, generation_config.json).

usage (device):  python3 infra/train/train.py --corpus .cache/text/corpus \
                     --tokenizer infra/model/kvrelay-tiny/tokenizer.json --out $OUT/model --seconds 400
usage (CPU toy): python3 infra/train/train.py --corpus .cache/text/corpus --tokenizer bytes \
                     --toy --steps 3 --out /tmp/toy
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # FlexAttention (torch >= 2.5): document masks as block masks (--attn flex)
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
except ImportError:  # older CPU torch of local tests
    create_block_mask = flex_attention = None

sys.path.insert(0, str(Path(__file__).parent))
import data  # noqa: E402


# ---------------------------------------------------------------- model

@dataclass
class Config:
    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 8
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = True
    bos_token_id: int = 0
    eos_token_id: int = 1
    pad_token_id: int = 2


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):  # as LlamaRMSNorm: normalise in fp32, scale in the input dtype
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(cfg: Config, T: int, device, dtype):
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.int64,
                                                 device=device).float() / cfg.head_dim))
    t = torch.arange(T, device=device).float()
    freqs = torch.outer(t, inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def sdpa(q, k, v, mask=None):
    """Causal attention; `mask` (B, 1, T, T) bool, True = may attend, keeps packed documents
    apart (the eval sees one document per sequence)."""
    if hasattr(F, "scaled_dot_product_attention"):
        if mask is not None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]  # plain fallback for old CPU torch (local tests only)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    allowed = torch.ones(T, T, dtype=torch.bool, device=q.device).tril() if mask is None else mask
    att = att.masked_fill(~allowed, float("-inf"))
    return att.softmax(-1) @ v


def doc_block_mask(doc):
    """Causal attention within each packed document as a FlexAttention BlockMask: blocks of
    128x128 positions with no pair in one document are skipped, unlike a dense (B,1,T,T) mask,
    which also rules out SDPA's flash kernel."""
    B, T = doc.shape

    def same_doc_causal(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (doc[b, q_idx] == doc[b, kv_idx])

    return create_block_mask(same_doc_causal, B=B, H=None, Q_LEN=T, KV_LEN=T, device=doc.device,
                             _compile=True)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg.hidden_size, cfg.head_dim
        self.q_proj = nn.Linear(d, cfg.num_attention_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.num_key_value_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.num_key_value_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.num_attention_heads * hd, d, bias=False)

    def forward(self, x, cos, sin, mask=None):
        B, T, _ = x.shape
        c = self.cfg
        q = self.q_proj(x).view(B, T, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if mask is not None and not isinstance(mask, torch.Tensor):  # a FlexAttention BlockMask
            # RoPE in fp32 tables promotes q, k under autocast; flex_attention wants one dtype
            y = flex_attention(q.to(v.dtype), k.to(v.dtype), v, block_mask=mask, enable_gqa=True)
            return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))
        rep = c.num_attention_heads // c.num_key_value_heads
        k = k.repeat_interleave(rep, dim=1)  # q head h uses kv head h // rep (HF repeat_kv)
        v = v.repeat_interleave(rep, dim=1)
        y = sdpa(q, k, v, mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, mask=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class Llama(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.apply(self._init)
        std = 0.02 / math.sqrt(2 * cfg.num_hidden_layers)
        for layer in self.model.layers:
            nn.init.normal_(layer.self_attn.o_proj.weight, std=std)
            nn.init.normal_(layer.mlp.down_proj.weight, std=std)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, doc=None):
        """doc: (B, T) document number of each position, a FlexAttention BlockMask of the same
        documents, or None for plain causal attention."""
        T = idx.shape[1]
        x = self.model.embed_tokens(idx)
        cos, sin = rope_cos_sin(self.cfg, T, idx.device, x.dtype)
        mask = None
        if doc is not None and not isinstance(doc, torch.Tensor):
            mask = doc  # a BlockMask from doc_block_mask(), built outside the compiled model
        elif doc is not None:
            causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
            mask = (doc[:, :, None] == doc[:, None, :]) & causal
            mask = mask[:, None]
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ---------------------------------------------------------------- tokenizer

class ByteTok:
    """CPU-test stand-in for the BPE tokenizer: bytes shifted past 3 specials."""
    vocab = 259

    def encode_batch(self, texts):
        return [[b + 3 for b in t.encode("utf-8")] for t in texts]


class HFTok:
    def __init__(self, path: str):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(path)
        self.vocab = self.tok.get_vocab_size()

    def encode_batch(self, texts):
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]


def load_tok(spec: str):
    return ByteTok() if spec == "bytes" else HFTok(spec)


# ---------------------------------------------------------------- data stream

class Stream(torch.utils.data.IterableDataset):
    """Infinite stream of packed rows of T+1 tokens. Documents are <bos> doc <eos>; a task
    document never straddles two rows (the gap is filled with a truncated text document)."""

    def __init__(self, corpus, tok_spec: str, T: int, seed: int, mix: dict, progress=None):
        self.corpus, self.tok_spec, self.T, self.seed, self.mix = corpus, tok_spec, T, seed, mix
        self.progress = progress  # multiprocessing.Value('d') the training loop sets; workers read it

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        rng = random.Random(self.seed * 1000 + wid)
        tok = load_tok(self.tok_spec)
        BOS, EOS = 0, 1
        # calibrate characters per token of the two passkey fillers
        cal = random.Random(7)
        flat = data._flat(self.corpus)
        cpt = {}
        for name, classic in (("classic", True), ("prose", False)):
            s = [data.filler_text(cal, flat, 4000, classic) for _ in range(8)]
            ids = tok.encode_batch(s)
            cpt[name] = sum(map(len, s)) / sum(map(len, ids))
        kinds = list(self.mix)
        made = {k: 1.0 for k in kinds}
        row, wrow, drow, pending = [], [], [], None
        overlong = {}  # consecutive task items too long for a row, by kind
        R = self.T + 1
        while True:
            if pending is None:
                kind = min(kinds, key=lambda k: made[k] / self.mix[k])
                prog = self.progress.value if self.progress is not None else 1.0
                parts = data.sample_parts(kind, rng, self.corpus, cpt, max_tokens=self.T - 8,
                                          progress=prog)
                doc, wts = [BOS], [1.0]
                for (_, w), ids in zip(parts, tok.encode_batch([t for t, _ in parts])):
                    doc += ids
                    wts += [w] * len(ids)
                doc.append(EOS)
                wts.append(wts[-1])  # <eos> after an answer is part of the answer
                doc = (doc, wts)
                if len(doc[0]) > R and kind not in ("text", "drill"):
                    overlong[kind] = overlong.get(kind, 0) + 1
                    if overlong[kind] >= 1000:  # would draw forever: say so instead of hanging
                        raise ValueError(f"no {kind} item fits a row of {R} tokens; raise --seq")
                    continue  # overlong task item: draw again
                overlong[kind] = 0
                made[kind] += len(doc[0])
            else:
                kind, doc, pending = pending[0], pending[1], None
            room = R - len(row)
            if len(doc[0]) <= room:
                drow += [len(drow) and drow[-1] + 1] * len(doc[0])
                row += doc[0]
                wrow += doc[1]
            elif kind in ("text", "drill"):
                drow += [len(drow) and drow[-1] + 1] * room
                row += doc[0][:room]
                wrow += doc[1][:room]
            else:
                pending = (kind, doc)
                while len(row) < R:
                    fill = [BOS] + tok.encode_batch([data.text_doc(rng, self.corpus.train,
                                                                   (R - len(row)) * 5)])[0] + [EOS]
                    made["text"] += min(len(fill), R - len(row))
                    fill = fill[:R - len(row)]
                    drow += [len(drow) and drow[-1] + 1] * len(fill)
                    row += fill
                    wrow += [1.0] * len(fill)
            if len(row) == R:
                yield (torch.tensor(row, dtype=torch.int64), torch.tensor(wrow, dtype=torch.float32),
                       torch.tensor(drow, dtype=torch.int32))
                row, wrow, drow = [], [], []


# ---------------------------------------------------------------- export

def hf_config(cfg: Config) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
        "hidden_act": "silu", "max_position_embeddings": cfg.max_position_embeddings,
        "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta, "rope_scaling": None,
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
        "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": True,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id, "torch_dtype": "float16",
    }


def save_safetensors(sd: dict, path: str, metadata: dict | None = None):
    """Minimal safetensors writer (fp16 only), same layout as safetensors.torch.save_file."""
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for k in sorted(sd):
        b = sd[k].numpy().tobytes()
        header[k] = {"dtype": "F16", "shape": list(sd[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h)
        for b in blobs:
            f.write(b)


def export(model: Llama, out: str, tok_path: str | None):
    try:
        from safetensors.torch import save_file
    except ImportError:  # local CPU tests without the package
        save_file = save_safetensors
    cfg = model.cfg
    os.makedirs(out, exist_ok=True)
    sd = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    sd = {k.replace("_orig_mod.", ""): v for k, v in sd.items()}
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    Path(out, "config.json").write_text(json.dumps(hf_config(cfg), indent=2) + "\n")
    Path(out, "generation_config.json").write_text(json.dumps({
        "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id, "do_sample": False, "max_new_tokens": 128,
    }, indent=2) + "\n")
    if tok_path and tok_path != "bytes":
        src = Path(tok_path).parent
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (src / f).exists() and (src / f).resolve() != (Path(out) / f).resolve():
                shutil.copy(src / f, Path(out) / f)


def verify_hf(model: Llama, out: str, device) -> float:
    """Loads the exported folder with transformers and compares logits (fp32, fp16-rounded
    weights on our side) on a random sequence. Returns the max abs difference."""
    from transformers import LlamaForCausalLM
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ref = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32).to(device).eval()
    ours = Llama(model.cfg).to(device)
    sd = {k.replace("_orig_mod.", ""): v.detach().half().float() for k, v in model.state_dict().items()}
    ours.load_state_dict(sd)
    ours.eval()
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(3, model.cfg.vocab_size, (2, 512), generator=g).to(device)
    with torch.no_grad():
        a = ours(idx).float()
        b = ref(idx).logits.float()
    torch.backends.cuda.matmul.allow_tf32 = True
    return (a - b).abs().max().item()


# ---------------------------------------------------------------- training

def lr_at(frac: float, peak: float, warm: float = 0.03, floor: float = 0.1) -> float:
    if frac < warm:
        return peak * frac / warm
    p = min(1.0, (frac - warm) / (1 - warm))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def text_loss(model, tok, corpus, device, T, n=64):
    docs = data.eval_text(corpus, n)
    ids = tok.encode_batch(docs)
    tot, cnt = 0.0, 0
    model.eval()
    for d in ids:
        x = torch.tensor([[0] + d[:T - 1]], device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                               reduction="sum")
        tot += loss.item()
        cnt += x.shape[1] - 1
    model.train()
    return tot / cnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".cache/text/corpus")
    ap.add_argument("--tokenizer", default="infra/model/kvrelay-tiny/tokenizer.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=0, help="wall-clock training budget")
    ap.add_argument("--steps", type=int, default=0, help="step budget (if no --seconds)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--toy", action="store_true", help="tiny model for CPU tests")
    ap.add_argument("--bench", action="store_true", help="time eager vs compiled steps, then exit")
    ap.add_argument("--log", default=None)
    ap.add_argument("--no-doc-mask", action="store_true", help="attend across packed documents")
    ap.add_argument("--probe-every", type=float, default=60, help="seconds between retrieval probes")
    # model shape (defaults: kvrelay-tiny); see infra/train/CORPUS.md for the second model's
    ap.add_argument("--hidden", type=int, default=Config.hidden_size)
    ap.add_argument("--layers", type=int, default=Config.num_hidden_layers)
    ap.add_argument("--heads", type=int, default=Config.num_attention_heads)
    ap.add_argument("--kv-heads", type=int, default=Config.num_key_value_heads)
    ap.add_argument("--head-dim", type=int, default=Config.head_dim)
    ap.add_argument("--intermediate", type=int, default=Config.intermediate_size)
    ap.add_argument("--rope-theta", type=float, default=Config.rope_theta)
    ap.add_argument("--untied", action="store_true", help="separate lm_head (default: tied)")
    ap.add_argument("--mix", default="run3", choices=sorted(data.MIXES), help="document-kind mix")
    ap.add_argument("--attn", default="sdpa", choices=("sdpa", "flex"),
                    help="document masks: dense boolean mask to SDPA, or FlexAttention block masks")
    args = ap.parse_args()
    if args.heads % args.kv_heads:
        ap.error(f"--heads {args.heads} is not a multiple of --kv-heads {args.kv_heads}")

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    tok = load_tok(args.tokenizer)
    cfg = Config(vocab_size=tok.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                 num_hidden_layers=args.layers, num_attention_heads=args.heads,
                 num_key_value_heads=args.kv_heads, head_dim=args.head_dim,
                 max_position_embeddings=args.seq, rope_theta=args.rope_theta,
                 tie_word_embeddings=not args.untied)
    if args.toy:
        cfg = Config(vocab_size=tok.vocab, hidden_size=128, intermediate_size=256,
                     num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1)
    corpus = data.load_corpus(args.corpus)
    model = Llama(cfg).to(device)
    print(f"params {n_params(model):,} config {asdict(cfg)}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    kw = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **kw)
    import multiprocessing
    progress = multiprocessing.Value("d", 0.0, lock=False)
    ds = Stream(corpus, args.tokenizer, args.seq, args.seed, data.MIXES[args.mix], progress)
    dlkw = {"prefetch_factor": 4, "persistent_workers": True} if args.workers else {}
    if args.workers:  # workers inherit the shared progress value: fork, whatever the default
        dlkw["multiprocessing_context"] = "fork"
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch, num_workers=args.workers,
                                     pin_memory=device.type == "cuda", **dlkw)
    it = iter(dl)
    fwd = torch.compile(model) if args.compile else model

    def step_fn(m, batch, lr):
        for g in opt.param_groups:
            g["lr"] = lr
        ids, wts, doc = batch
        x = ids[:, :-1].to(device, non_blocking=True)
        d = None if args.no_doc_mask else doc[:, :-1].to(device, non_blocking=True)
        if d is not None and args.attn == "flex":
            d = doc_block_mask(d)
        y = ids[:, 1:].to(device, non_blocking=True)
        w = wts[:, 1:].to(device, non_blocking=True).reshape(-1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = m(x, d)
        ce = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        loss = (ce * w).sum() / w.sum()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss, gn

    if args.bench:
        def timed(m, n):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.time()
            for _ in range(n):
                step_fn(m, next(it), 1e-4)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.time() - t
        for _ in range(3):  # warm the loader
            next(it)
        print(f"loader: {args.batch * args.seq * 10 / timed_loader(it, 10):,.0f} tok/s", flush=True)
        timed(model, 2)
        te = timed(model, 10)
        print(f"eager: {args.batch * args.seq * 10 / te:,.0f} tok/s", flush=True)
        cm = torch.compile(model)
        tc0 = timed(cm, 1)
        tc = timed(cm, 10)
        print(f"compile first step {tc0:.1f}s; compiled: {args.batch * args.seq * 10 / tc:,.0f} tok/s",
              flush=True)
        return

    t0 = time.time()
    last_probe = 0.0
    step, tokens, ema = 0, 0, None
    log = open(args.log, "w") if args.log else None
    while True:
        el = time.time() - t0
        frac = el / args.seconds if args.seconds else step / max(1, args.steps)
        if frac >= 1.0:
            break
        progress.value = frac
        lr = lr_at(frac, args.lr)
        loss, gn = step_fn(fwd, next(it), lr)
        if args.probe_every and el - last_probe >= args.probe_every:
            last_probe = el
            print(f"probe t {el:.0f}s frac {frac:.3f} " + probe(model, tok, corpus, device), flush=True)
        step += 1
        tokens += args.batch * args.seq
        if step % 25 == 0 or step <= 3:
            lv = loss.item()
            ema = lv if ema is None else 0.9 * ema + 0.1 * lv
            line = (f"step {step} t {el:.0f}s frac {frac:.3f} lr {lr:.2e} loss {lv:.4f} "
                    f"ema {ema:.4f} gnorm {gn.item():.2f} tok {tokens / 1e6:.1f}M "
                    f"tok/s {tokens / max(el, 1e-9):,.0f}")
            print(line, flush=True)
            if log:
                log.write(line + "\n")
    el = time.time() - t0
    print(f"trained {step} steps, {tokens / 1e6:.1f}M tokens in {el:.0f}s", flush=True)
    tl = text_loss(model, tok, corpus, device, args.seq)
    print(f"heldout text loss {tl:.4f} ppl {math.exp(tl):.2f}", flush=True)
    export(model, args.out, args.tokenizer)
    summary = {"steps": step, "tokens": tokens, "seconds": el, "final_loss_ema": ema,
               "heldout_text_loss": tl, "params": n_params(model), "config": asdict(cfg),
               "args": vars(args)}
    Path(args.out).parent.joinpath("train_summary.json").write_text(json.dumps(summary, indent=2))
    try:
        d = verify_hf(model, args.out, device)
        print(f"transformers LlamaForCausalLM logits max |diff| = {d:.2e}", flush=True)
    except ImportError as e:
        print("transformers not available:", e)
    if log:
        log.close()


@torch.no_grad()
def probe(model, tok, corpus, device, n=24) -> str:
    """Teacher-forced exact-answer rate on small fixed retrieval sets (all answer tokens must be
    the argmax): a cheap view of whether look-up is being learned, printed during training."""
    rng = random.Random(4242)
    flat = data._flat(corpus)
    sets = {
        "mk8": [data.multikey_item(rng, 8) for _ in range(n)],
        "mk64": [data.multikey_item(rng, 64) for _ in range(n)],
        "pk256": [data.passkey_item(rng, flat, 800, True) for _ in range(n)],
        "pk1500": [data.passkey_item(rng, flat, 5500, True) for _ in range(n)],
    }
    model.eval()
    out = []
    for name, items in sets.items():
        ok = 0
        for p, c, _ in items:
            pi, ci = tok.encode_batch([p, c])
            x = torch.tensor([[0] + pi + ci], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x[:, :-1])
            pred = logits[0, len(pi):].argmax(-1).tolist()
            ok += pred == ci
        out.append(f"{name} {ok}/{len(items)}")
    model.train()
    return " ".join(out)


def timed_loader(it, n):
    t = time.time()
    for _ in range(n):
        next(it)
    return time.time() - t


if __name__ == "__main__":
    main()
