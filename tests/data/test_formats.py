from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lorabench.data import IGNORE_INDEX, build_tokenizer, encode_rendered, render_records
from lorabench.data.formats import ALPACA_PROMPT, ALPACA_PROMPT_NO_INPUT, CHATML_FALLBACK
from tests.data.conftest import CHAT, CHAT_TEMPLATE, ROWS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    texts = [str(r) for rows in ROWS.values() for r in rows]
    tokenizer = build_tokenizer(texts, 600)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _trained_text(tok: PreTrainedTokenizerFast, ids: list[int], labels: list[int]) -> str:
    return str(tok.decode([t for t, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]))


def test_alpaca_uses_the_standard_prompt_and_trains_on_the_response(tok: PreTrainedTokenizerFast) -> None:
    rendered, template = render_records(ROWS["alpaca"][:2], "alpaca")
    assert template is None
    no_input, with_input = rendered
    assert no_input.segments[0] == (ALPACA_PROMPT_NO_INPUT.format(instruction=ROWS["alpaca"][0]["instruction"]), False)
    assert with_input.segments[0][0] == ALPACA_PROMPT.format(
        instruction=ROWS["alpaca"][1]["instruction"], input="Great product."
    )
    encoded = encode_rendered(rendered, tok, 256)
    assert _trained_text(tok, encoded[0].input_ids, encoded[0].labels) == "positive</s>"


def test_chat_with_the_tokenizers_template_trains_on_assistant_turns_only(tok: PreTrainedTokenizerFast) -> None:
    rendered, template = render_records(CHAT[:1], "chat", tokenizer=tok)
    assert template is not None and "apply_chat_template" in template
    [record] = rendered
    # the template's own text, unchanged, and no extra bos/eos
    assert record.text == tok.apply_chat_template(CHAT[0]["messages"], tokenize=False)
    assert (record.bos, record.eos) == (False, False)
    [example] = encode_rendered(rendered, tok, 256)
    assert _trained_text(tok, example.input_ids, example.labels) == "0.<|im_end|>\n0.<|im_end|>\n"
    assert "Answer briefly" not in _trained_text(tok, example.input_ids, example.labels)


def test_chat_without_a_template_says_which_fallback_rendered_it(tok: PreTrainedTokenizerFast) -> None:
    rendered, template = render_records(CHAT[:1], "chat", tokenizer=None)
    assert template == CHATML_FALLBACK
    trained = "".join(text for text, trainable in rendered[0].segments if trainable)
    assert trained == "0.<|im_end|>\n0.<|im_end|>\n"


def test_sharegpt_roles_map_to_chat_roles(tok: PreTrainedTokenizerFast) -> None:
    [sharegpt], _ = render_records(ROWS["sharegpt"][:1], "sharegpt", tokenizer=tok)
    as_chat = [{"role": "user", "content": "Say 0."}, {"role": "assistant", "content": "0"}]
    assert sharegpt.text == tok.apply_chat_template(as_chat, tokenize=False)


def test_text_trains_on_every_token_and_keeps_the_start_when_too_long(tok: PreTrainedTokenizerFast) -> None:
    rendered, _ = render_records(ROWS["text"][:1], "text")
    [full] = encode_rendered(rendered, tok, 256)
    assert full.labels[0] == IGNORE_INDEX and all(label != IGNORE_INDEX for label in full.labels[1:])
    cut = encode_rendered(rendered, tok, 6)
    assert cut.truncated == 1 and cut[0].input_ids == full.input_ids[:6]


def test_completion_trains_on_the_completion(tok: PreTrainedTokenizerFast) -> None:
    rendered, _ = render_records(ROWS["completion"][:1], "completion")
    [example] = encode_rendered(rendered, tok, 256)
    assert _trained_text(tok, example.input_ids, example.labels) == " C0</s>"
