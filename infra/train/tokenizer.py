"""Trains the byte-level BPE tokenizer of kvrelay-tiny with the `tokenizers` package.

Pre-tokenizer: Digits(individual_digits=True) then ByteLevel (GPT-2 regex, no prefix space),
so every digit is its own token (helps arithmetic and 5-digit retrieval).
Specials: <bos>=0, <eos>=1, <pad>=2. Post-processor prepends <bos> (TemplateProcessing),
decoder ByteLevel. Loadable by @huggingface/tokenizers (JS) and transformers.

usage: python tokenizer.py CORPUS_DIR OUT/tokenizer.json [VOCAB] [MODEL_MAX_LENGTH]

bpe_train.py trains the same tokenizer without `tokenizers` (pure Python); both take their texts
from training_texts() and their config files from write_tokenizer_config(), which need only the
standard library.
"""
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import data  # noqa: E402

SPECIALS = ["<bos>", "<eos>", "<pad>"]


def training_texts(corpus_dir: str, seed: int = 1234) -> list[str]:
    """The training paragraphs, then a slice of generated documents so the task vocabulary gets
    merges too."""
    corpus = data.load_corpus(corpus_dir)
    rng = random.Random(seed)
    texts = [p for s in corpus.train for p in corpus.train[s]]
    for kind in ("passkey", "multikey", "arith", "drill"):
        for _ in range({"passkey": 40, "multikey": 300, "arith": 6000, "drill": 300}[kind]):
            texts.append(data.sample_doc(kind, rng, corpus))
    return texts


def build(corpus_dir: str, out_path: str, vocab: int = 4096, seed: int = 1234):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    texts = training_texts(corpus_dir, seed)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", 0)])
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    tok.save(out_path)
    return tok


def write_tokenizer_config(out_dir: str, model_max_length: int = 2048):
    chat = ("{{ bos_token }}{% for message in messages %}"
            "{% if message['role'] == 'user' %}Question: {{ message['content'] }}\n"
            "{% elif message['role'] == 'assistant' %}Solution:{% if message['content'] %} {{ message['content'] | trim }}{% endif %}"
            "{% if message['tool_calls'] %}{% for call in message['tool_calls'] %} {{ call['function']['name'] }}"
            "({{ call['function']['arguments'] }}){% endfor %}{% endif %}{{ eos_token }}\n"
            "{% else %}{{ message['content'] }}\n{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}Solution:{% endif %}")
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": None,
        "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length, "chat_template": chat,
    }
    Path(out_dir, "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    Path(out_dir, "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"}, indent=2) + "\n")


if __name__ == "__main__":
    out = sys.argv[2]
    t = build(sys.argv[1], out, int(sys.argv[3]) if len(sys.argv) > 3 else 4096)
    write_tokenizer_config(str(Path(out).parent), int(sys.argv[4]) if len(sys.argv) > 4 else 2048)
    s = "Question: Tom has 12 apples.\nSolution: 12 + 7 = 19.\nAnswer: 19"
    e = t.encode(s)
    print("vocab", t.get_vocab_size(), e.tokens)
    assert t.decode(e.ids, skip_special_tokens=True) == s

