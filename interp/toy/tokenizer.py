"""Word-level tokenizers: one token per lowercase word or punctuation mark.

The built-in model and the tiny test models use the same builder, so a tokenizer is always a
folder that `transformers.PreTrainedTokenizerFast.from_pretrained` loads offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<bos>", "<eos>", "<pad>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)


def build_tokenizer(words: Iterable[str], folder: str | Path) -> PreTrainedTokenizerFast:
    """Build a word-level tokenizer over `words`, save it to `folder` and load it back.

    Ids 0-3 are `<pad>`, `<bos>`, `<eos>`, `<unk>`; the words follow in sorted order, so the
    same word set always gives the same ids. Text is lowercased and split on whitespace and
    punctuation; words outside the vocabulary become `<unk>`.

    Example:
        >>> tok = build_tokenizer(["the", "cat", "sat"], tmp_path)
        >>> tok("the cat sat")["input_ids"]
        [4, 5, 6]
    """
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in sorted(set(words) - set(SPECIAL_TOKENS)):
        if not word or any(ch.isspace() for ch in word):
            raise ValueError(f"vocabulary entry {word!r} is empty or contains whitespace")
        vocab[word] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=10**6,
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(folder)
    return PreTrainedTokenizerFast.from_pretrained(folder)
