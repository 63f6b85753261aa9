"""Tiny GGUF files written with the ``gguf`` package (llama.cpp's writer): a Gemma 3 text model small enough to
de-quantise in a second, and files that are no text model, for the GGUF text-encoder tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Korean and Latin characters of the tiny vocabulary (any other character falls back to its UTF-8 bytes).
_CHARACTERS = "▁abcdefghijklmnopqrstuvwxyz.?!오늘정말기분이좋아왜그래요네화가났어슬퍼"


def write_gguf(path: Path, architecture: str = "gemma3", tokenizer: bool = True, hidden: int = 16,
               layers: int = 2) -> Path:
    """A random fp32 GGUF of ``architecture`` with Gemma 3's tensors and header keys (2 heads of 8, one KV
    head) and, with ``tokenizer``, a SentencePiece-style vocabulary with byte fallback."""
    import gguf

    rng = np.random.default_rng(0)
    heads, kv_heads, head_dim, ffn = 2, 1, 8, 32
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_sliding_window(64)
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)] + list(_CHARACTERS)
    if tokenizer:
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores([0.0] * 260 + [-float(i) for i in range(len(_CHARACTERS))])
        writer.add_token_types([3, 3, 3, 2] + [6] * 256 + [1] * len(_CHARACTERS))  # control, unknown, byte, normal
        writer.add_bos_token_id(2)
        writer.add_eos_token_id(1)
        writer.add_unk_token_id(3)
        writer.add_pad_token_id(0)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(False)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(len(tokens), hidden))
    writer.add_tensor("output_norm.weight", weight(hidden))
    shapes = {"attn_q": (heads * head_dim, hidden), "attn_k": (kv_heads * head_dim, hidden),
              "attn_v": (kv_heads * head_dim, hidden), "attn_output": (hidden, heads * head_dim),
              "ffn_gate": (ffn, hidden), "ffn_up": (ffn, hidden), "ffn_down": (hidden, ffn),
              "attn_q_norm": (head_dim,), "attn_k_norm": (head_dim,), "attn_norm": (hidden,),
              "post_attention_norm": (hidden,), "ffn_norm": (hidden,), "post_ffw_norm": (hidden,)}
    for layer in range(layers):
        for name, shape in shapes.items():
            writer.add_tensor(f"blk.{layer}.{name}.weight", weight(*shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
