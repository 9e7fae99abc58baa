"""Tokenizers without a hub: train a small byte-level BPE offline, or load one from a local model folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lorabench.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["MIN_VOCAB_SIZE", "SPECIAL_TOKENS", "build_tokenizer", "load_tokenizer"]

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")
# A byte-level BPE always holds the 256 byte symbols, plus the special tokens.
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)
# Vocabulary files whose presence means a folder holds a Hugging Face tokenizer. A tokenizer_config.json alone
# is not enough: transformers 5 then builds a tokenizer that knows only its special tokens.
_VOCAB_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def build_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` (offline, deterministic) and wrap it for transformers.

    Special tokens ``<pad>``, ``<s>``, ``</s>`` and ``<unk>`` get ids 0-3 and are set as the pad, bos, eos
    and unk tokens. Every byte is in the alphabet, so any text can be encoded, and the vocabulary never
    exceeds ``vocab_size``, so token ids fit a model whose embedding has that many rows. No special tokens
    are added when encoding: callers add bos/eos themselves.

    Args:
        texts: Training corpus (at least one non-empty text).
        vocab_size: Upper bound on the vocabulary, at least :data:`MIN_VOCAB_SIZE`.

    Returns:
        The trained tokenizer.

    Raises:
        DataError: No non-empty text, or ``vocab_size`` below :data:`MIN_VOCAB_SIZE`.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise DataError(
            f"tokenizer vocab_size must be at least {MIN_VOCAB_SIZE} (256 bytes + {len(SPECIAL_TOKENS)} special "
            f"tokens) (got {vocab_size})"
        )
    corpus = [text for text in texts if text]
    if not corpus:
        raise DataError("cannot train a tokenizer: no non-empty texts given")

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size > vocab_size:  # the trainer's contract; checked because ids beyond the embedding would crash training
        raise DataError(f"trained tokenizer has {size} tokens, more than vocab_size {vocab_size}")
    pad, bos, eos, unk = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=pad, bos_token=bos, eos_token=eos, unk_token=unk
    )


def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerFast | None:
    """Load the Hugging Face tokenizer stored in a local model folder, if it has one.

    Nothing is downloaded (``local_files_only``) and no repository code runs (``trust_remote_code=False``).
    A tokenizer without a pad token gets its eos token as pad.

    Args:
        model_dir: A local folder (e.g. one holding ``config.json`` and ``tokenizer.json``).

    Returns:
        The fast tokenizer, or None when the folder holds no vocabulary file (``tokenizer.json``,
        ``tokenizer.model``, ``vocab.json``, ``vocab.txt`` or ``spiece.model``).

    Raises:
        DataError: The tokenizer files cannot be loaded, are not a fast tokenizer, or there is neither a pad
            nor an eos token.
    """
    if not model_dir.is_dir() or not any((model_dir / name).is_file() for name in _VOCAB_FILES):
        return None

    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # OSError, ValueError, KeyError, and tokenizers' bare Exception for a bad tokenizer.json
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{model_dir}: cannot load its tokenizer ({message})") from None
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise DataError(f"{model_dir}: tokenizer is {type(tokenizer).__name__}, not a fast (tokenizers) tokenizer")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise DataError(f"{model_dir}: tokenizer has neither a pad token nor an eos token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
