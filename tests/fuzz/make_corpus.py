#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, tests/fuzz/corpus/<target>/, from scratch.

Every seed is generated here (nothing copied from third-party models), small, and valid,
so the fuzzers start from inputs that reach deep into each parser. Usage:

    tests/fuzz/make_corpus.py [--grinqh build/server/grinqh]

With --grinqh, the .grinqh seeds include two tiny quantized models (rtn and grinqh) written
by the real `grinqh quantize` from a generated 1-layer checkpoint; without, only the
hand-written structural seed. Regression inputs for fixed crashes live beside the seeds
(named regression-*) and are kept.
"""
import argparse
import json
import random
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


def clear(target):
    folder = CORPUS / target
    if folder.is_dir():
        for f in folder.iterdir():
            if not f.name.startswith("regression-"):
                f.unlink()


# --- tokenizer.json: GPT-2's byte-to-unicode map, a byte vocabulary, merges, added tokens.

def byte_level(b):
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in printable:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in printable].index(b))


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def tokenizer_json(merges_as_pairs=True, split=True, nfc=False, post_processor=True):
    vocab = {byte_level(b): b for b in range(256)}
    merges = [("l", "l"), ("h", "e"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("b", "c")]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    added = []
    for i, (content, special, extra) in enumerate([("<|bos|>", True, {}), ("<|eos|>", True, {}),
                                                   ("<tool>", False, {}), ("[M]", False, {"lstrip": True, "rstrip": True}),
                                                   ("XY", False, {"single_word": True})]):
        token = {"id": 300 + i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": special}
        token.update(extra)
        added.append(token)
    byte_step = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": not split}
    pre = byte_step
    if split:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False}, byte_step]}
    post = None
    if post_processor:
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<|bos|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<|bos|>": {"id": "<|bos|>", "ids": [300], "tokens": ["<|bos|>"]}}}
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"} if nfc else None, "pre_tokenizer": pre, "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab,
                  "merges": [[l, r] if merges_as_pairs else f"{l} {r}" for l, r in merges]},
    }, ensure_ascii=False)


def tokenizer_seeds():
    clear("tokenizer_json")
    config = json.dumps({"bos_token": "<|bos|>", "eos_token": "<|eos|>", "add_bos_token": True,
                         "chat_template": "<|im_start|>{{ m }}<|im_end|>"})
    write("tokenizer_json", "split-pairs.json", tokenizer_json())
    write("tokenizer_json", "bytelevel-strings-nfc.json", tokenizer_json(False, split=False, nfc=True))
    write("tokenizer_json", "no-post-with-config", tokenizer_json(post_processor=False) + "\0" + config)

    clear("tokenizer_encode")
    for i, text in enumerate(["Hello world, it's 2024!\n", "def fibonacci(n):\n    return n if n < 2 else fibonacci(n-1)\n",
                              "<|begin_of_text|>caf\u00e9 \u4f60\u597d \U0001F600\r\n\t  x", "e\u0301 \u00e9\u00e9",
                              "  multiple   spaces\n\n\nand 12345678 digits", "<|pad|><|end_of_text|>'s'LL"]):
        write("tokenizer_encode", f"text-{i}", text)
    write("tokenizer_encode", "invalid-utf8", b"\xff\xfe\xc3(\xe2\x82\xf0\x9f\x98")
    write("tokenizer_encode", "ids", struct.pack("<8i", 0, 1, 100, 8191, 8192, -1, 0x7fffffff, 260))

    clear("chat_template")
    write("chat_template", "llama3", b"\x01user\x00Hello there\x00\x01assistant\x00 Hi! \x00\x00")
    write("chat_template", "chatml", b"\x01system\x00be brief\x00\x01user\x00<think>x</think>y\x00\x01")
    write("chat_template", "template", b"<|im_start|>{% for m in messages %}<|im_end|>\x02")


# --- safetensors: an 8-byte header length, a JSON header padded with spaces, the data.

def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    clear("safetensors")
    write("safetensors", "two-tensors", safetensors(
        {"a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "b": ("BF16", [3], b"\x80\x3f" * 3)}, {"format": "pt"}))
    write("safetensors", "scalar-and-empty", safetensors(
        {"s": ("F16", [], b"\x00\x3c"), "e": ("F32", [0, 4], b"")}))
    write("safetensors", "empty", safetensors({}))


# --- .grinqh: docs/FORMAT.md. A hand-written structural seed, and real quantized models.

def grinqh_file(tensors, sections):
    meta = {"format_version": 2, "tensors": {}}
    blobs, offset = [], None
    # The data start depends on the metadata length, which depends on the offsets: two passes.
    for _ in range(2):
        start = (24 + len(json.dumps(meta).encode()) + 4095) // 4096 * 4096
        offset, blobs = start, []
        for name, (dtype, shape, payload) in tensors.items():
            meta["tensors"][name] = {"dtype": dtype, "shape": shape, "offset": offset, "nbytes": len(payload),
                                     "crc32": zlib.crc32(payload)}
            blobs.append((offset, payload))
            offset = (offset + len(payload) + 255) // 256 * 256
        meta.update(sections)
    text = json.dumps(meta).encode()
    out = bytearray(b"\x89GRINQH\n" + struct.pack("<IIQ", 2, 0, len(text)) + text)
    for at, payload in blobs:
        out += b"\0" * (at - len(out)) + payload
    return bytes(out)


def tiny_config():
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
            "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "vocab_size": 32, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 1, "hidden_act": "silu",
            "torch_dtype": "bfloat16"}


def tiny_checkpoint(folder):
    rng = random.Random(14)
    c = tiny_config()
    h, i, v, hd = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["hidden_size"] // c["num_attention_heads"]
    shapes = {"model.embed_tokens.weight": [v, h], "model.norm.weight": [h], "lm_head.weight": [v, h],
              "model.layers.0.input_layernorm.weight": [h], "model.layers.0.post_attention_layernorm.weight": [h],
              "model.layers.0.self_attn.q_proj.weight": [h, h], "model.layers.0.self_attn.k_proj.weight": [hd, h],
              "model.layers.0.self_attn.v_proj.weight": [hd, h], "model.layers.0.self_attn.o_proj.weight": [h, h],
              "model.layers.0.mlp.gate_proj.weight": [i, h], "model.layers.0.mlp.up_proj.weight": [i, h],
              "model.layers.0.mlp.down_proj.weight": [h, i]}
    tensors = {}
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        values = [1.0] * n if name.endswith("norm.weight") else [rng.gauss(0, 0.1) for _ in range(n)]
        tensors[name] = ("BF16", shape, b"".join(struct.pack("<f", x)[2:] for x in values))
    (folder / "model.safetensors").write_bytes(safetensors(tensors))
    (folder / "config.json").write_text(json.dumps(c))


def grinqh_seeds(grinqh_binary):
    clear("grinqh_file")
    planes = bytes(range(256)) * 2
    write("grinqh_file", "structure.grinqh", grinqh_file(
        {"x.planes": ("U8", [1, 4, 2, 32], planes[:256]), "x.scales": ("F16", [4, 1], b"\x00\x3c" * 4),
         "x.zeros": ("U8", [4, 1], b"\x02" * 4), "t": ("U16", [2], b"\x01\x00\x02\x00"), "f": ("F32", [], b"\0\0\x80\x3f")},
        {"config": tiny_config(), "tokenizer": tokenizer_json(),
         "quantization": {"method": "rtn", "bits": 2, "code_bits": 2, "group_size": 4, "max_bits": 2},
         "schedules": {"model_targets": [1.0, 2.0], "layers": {"x": [1.0, 2.0]}}}))
    if grinqh_binary is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tiny_checkpoint(Path(tmp))
        for name, args in [("rtn2", ["--method", "rtn", "--bits", "2"]), ("grinqh", ["--max-bits", "2"])]:
            out = Path(tmp) / f"{name}.grinqh"
            subprocess.run([grinqh_binary, "quantize", "--model", tmp, "--out", str(out), "--group-size", "16",
                            "--threads", "1", *args], check=True, stderr=subprocess.DEVNULL)
            write("grinqh_file", f"{name}.grinqh", out.read_bytes())


# --- config.json (+ NUL + generation_config.json), and the server's YAML config.

def config_seeds():
    clear("model_config")
    write("model_config", "llama", json.dumps(tiny_config()) + "\0" + json.dumps({"eos_token_id": [1, 2]}))
    llama31 = dict(tiny_config(), rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    write("model_config", "llama31-rope", json.dumps(llama31))
    qwen3 = dict(tiny_config(), architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=16,
                 tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    del qwen3["rope_theta"]
    write("model_config", "qwen3-transformers5", json.dumps(qwen3))

    clear("server_config")
    write("server_config", "empty.yaml", "")
    write("server_config", "small.yaml", "model:\n  path: /tmp/m.grinqh\n  threads: 2\nbackend: cpu\n"
          "server: {host: 127.0.0.1, port: 0}\nbatching:\n  max_batch_size: 4\n  prefill_chunk: 64\n")
    write("server_config", "tiers.yaml", "tiers:\n  quality: full\n  fast: 3\n"
          "  auto: auto\ndefault_tier: fast\nlog_level: debug\nlog_format: json\n"
          "metrics: {enabled: false}\nhttp: {host: '::1', port: 8080}\n")
    write("server_config", "grinqh.yaml", (ROOT / "config" / "grinqh.yaml").read_text())


# --- GenerateRequest (proto/grinqh/v1/inference.proto), in the protobuf wire format.

def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, float):
        return varint(number << 3 | 5) + struct.pack("<f", value)
    value = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(value)) + value


def request_seeds():
    clear("generate_request")
    write("generate_request", "prompt", field(3, "def fibonacci(n):") + field(6, 16) + field(7, 0.0))
    write("generate_request", "ids-sampling", field(1, "req-1") + field(2, "tiny-llama3")
          + field(4, field(1, 0) + field(1, 42) + field(1, 8191)) + field(6, 8) + field(7, 0.7) + field(8, 40)
          + field(9, 0.9) + field(10, 1234) + field(11, "\n\n") + field(12, "fast") + field(14, 2.0)
          + field(15, 0.05) + field(16, 1.1) + field(17, 0.5) + field(18, 0.25)
          + field(19, field(1, 5) + field(2, -100.0)) + field(20, 2) + field(21, 1) + field(22, 1)
          + field(23, 1) + field(24, 5))
    write("generate_request", "chat", field(5, field(1, field(1, "system") + field(2, "be brief"))
                                             + field(1, field(1, "user") + field(2, "hi"))) + field(13, 3.5))
    write("generate_request", "auto-tier", field(3, "import os") + field(12, "auto") + field(6, 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grinqh", help="the grinqh binary, for quantized .grinqh seeds")
    args = parser.parse_args()
    tokenizer_seeds()
    safetensors_seeds()
    grinqh_seeds(args.grinqh)
    config_seeds()
    request_seeds()
    for folder in sorted(CORPUS.iterdir()):
        files = list(folder.iterdir())
        print(f"{folder.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
