"""Dataset formats: detect a record's format by its fields and render it into trainable text segments.

A rendered record is a tuple of ``(text, trainable)`` segments; the loss is taken on the trainable ones only,
as the trainers do:

- ``finlora``: ``context`` (no loss) then ``target`` (loss), as FinLoRA trains.
- ``alpaca``: the standard Alpaca prompt (with or without ``input``) then ``output`` (loss).
- ``completion``: ``prompt`` (no loss) then ``completion`` (loss), TRL's prompt-completion format.
- ``text``: the whole ``text`` (loss on every token), TRL's language-modeling format.
- ``chat``: ``messages`` of ``{"role", "content"}`` (OpenAI's upload format); loss on assistant turns only, as
  TRL's SFT with ``assistant_only_loss``. Rendered with the tokenizer's chat template when it has one
  (transformers' ``apply_chat_template``), else with a ChatML-style fallback that the rendering names.
- ``sharegpt``: ``conversations`` of ``{"from", "value"}`` (human/gpt/system), mapped to chat roles.

``fields`` renames a format's fields (``{"output": "answer"}`` reads ``answer`` as Alpaca's ``output``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from lorabench.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "ALPACA_PROMPT",
    "ALPACA_PROMPT_NO_INPUT",
    "CHATML_FALLBACK",
    "FORMATS",
    "DataFormat",
    "Rendered",
    "detect_format",
    "parse_fields",
    "render_records",
]

DataFormat = Literal["finlora", "alpaca", "completion", "text", "chat", "sharegpt"]
FORMATS: tuple[str, ...] = get_args(DataFormat)

# The prompt of Stanford Alpaca's train.py (PROMPT_DICT), with and without an input.
ALPACA_PROMPT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
CHATML_FALLBACK = "ChatML-style fallback (<|im_start|>role ... <|im_end|>; the tokenizer has no chat template)"

# Each format's fields: (required, optional).
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "finlora": (("context", "target"), ()),
    "alpaca": (("instruction", "output"), ("input",)),
    "completion": (("prompt", "completion"), ()),
    "text": (("text",), ()),
    "chat": (("messages",), ()),
    "sharegpt": (("conversations",), ()),
}
# Detection order: the most specific field set first.
_DETECT = ("chat", "sharegpt", "alpaca", "completion", "finlora", "text")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
_CHAT_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Rendered:
    """One record rendered for training.

    Attributes:
        segments: ``(text, trainable)`` pieces in order; the loss is on trainable pieces.
        bos: Whether a bos token goes first (False when a chat template wrote its own).
        eos: Whether an eos token ends the example (trainable; False when a chat template closes its turns).
        keep_end: When too long, cut the prompt from the left (one response at the end, as FinLoRA) rather than
            keep the first tokens (TRL's default ``keep_start`` for text and multi-turn chat).
    """

    segments: tuple[tuple[str, bool], ...]
    bos: bool = True
    eos: bool = True
    keep_end: bool = True

    @property
    def text(self) -> str:
        """The whole rendered text."""
        return "".join(text for text, _ in self.segments)


def parse_fields(value: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse a ``--fields`` mapping ``canonical=column,...`` (or take a mapping as given).

    Raises:
        DataError: An entry without ``=`` or with an empty side.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        pairs = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            key, sep, column = item.partition("=")
            if not sep:
                raise DataError(f"--fields: {item!r} is not NAME=COLUMN (e.g. output=answer,instruction=question)")
            pairs.append((key.strip(), column.strip()))
    known = {f for required, optional in _FIELDS.values() for f in (*required, *optional)}
    result: dict[str, str] = {}
    for key, column in pairs:
        if not key or not column or not isinstance(key, str) or not isinstance(column, str):
            raise DataError(f"--fields: {key}={column} needs a field name and a column name")
        if key not in known:
            raise DataError(f"--fields: unknown field {key!r} (known: {', '.join(sorted(known))})")
        result[key] = column
    return result


def detect_format(columns: Sequence[str], fields: Mapping[str, str] | None = None) -> DataFormat:
    """The format whose required fields the columns hold (after ``fields`` renaming).

    Columns holding some of exactly one format's fields choose that format (rendering then names the record
    missing the others).

    Raises:
        DataError: No format matches; the message lists the columns and each format's fields.
    """
    mapping = dict(fields or {})
    present = set(columns)
    for name in _DETECT:
        required, _ = _FIELDS[name]
        if all(mapping.get(f, f) in present for f in required):
            return name  # type: ignore[return-value]
    # columns that hold part of one format's fields: that format, so the record missing the rest is named
    partial = [n for n in _DETECT if any(mapping.get(f, f) in present for f in _FIELDS[n][0])]
    if len(partial) == 1:
        return partial[0]  # type: ignore[return-value]
    wanted = "; ".join(f"{n}: {', '.join(_FIELDS[n][0])}" for n in _DETECT)
    raise DataError(
        f"no known format in columns {', '.join(sorted(present)) or '(none)'} ({wanted}); "
        "name one with --format and map columns with --fields"
    )


def required_columns(data_format: DataFormat, fields: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The columns a format reads (required ones), after ``fields`` renaming."""
    mapping = dict(fields or {})
    return tuple(mapping.get(f, f) for f in _FIELDS[data_format][0])


def _string(record: Mapping[str, Any], column: str, where: str, optional: bool = False) -> str:
    value = record.get(column)
    if value is None and optional:
        return ""
    if value is None:
        raise DataError(f"{where}: field {column} is missing")
    if not isinstance(value, str):
        raise DataError(f"{where}: field {column} must be a string (got {type(value).__name__})")
    return value


def _messages(record: Mapping[str, Any], data_format: str, column: str, where: str) -> list[dict[str, str]]:
    turns = record.get(column)
    if not isinstance(turns, list):
        raise DataError(f"{where}: field {column} must be a list of turns (got {type(turns).__name__})")
    if not turns:
        raise DataError(f"{where}: field {column} is an empty conversation")
    role_key, text_key = ("from", "value") if data_format == "sharegpt" else ("role", "content")
    messages = []
    for index, turn in enumerate(turns):
        at = f"{where}: {column}[{index}]"
        if not isinstance(turn, Mapping):
            raise DataError(f"{at} must be an object with {role_key} and {text_key} (got {type(turn).__name__})")
        role, text = turn.get(role_key), turn.get(text_key)
        if not isinstance(role, str) or not role:
            raise DataError(f"{at}: missing role ({role_key})")
        if not isinstance(text, str):
            raise DataError(f"{at}: {text_key} must be a string (got {type(text).__name__})")
        if data_format == "sharegpt":
            if role not in _SHAREGPT_ROLES:
                raise DataError(f"{at}: unknown role {role!r} (allowed: {', '.join(_SHAREGPT_ROLES)})")
            role = _SHAREGPT_ROLES[role]
        elif role not in _CHAT_ROLES:
            raise DataError(f"{at}: unknown role {role!r} (allowed: {', '.join(_CHAT_ROLES)})")
        messages.append({"role": role, "content": text})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: field {column} has no assistant turn to train on")
    return messages


def _chatml(messages: Sequence[Mapping[str, str]]) -> Rendered:
    segments: list[tuple[str, bool]] = []
    for message in messages:
        head = f"<|im_start|>{message['role']}\n"
        if message["role"] == "assistant":
            segments += [(head, False), (f"{message['content']}<|im_end|>\n", True)]
        else:
            segments.append((f"{head}{message['content']}<|im_end|>\n", False))
    return Rendered(tuple(segments), bos=True, eos=True, keep_end=False)


def _template(messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase, where: str) -> Rendered:
    """Render with the chat template; assistant spans found by rendering each prefix of the conversation."""

    def render(turns: list[dict[str, str]], prompt: bool) -> str:
        try:
            text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=prompt)
        except Exception as exc:  # jinja2's TemplateError and the template's own raise_exception
            raise DataError(f"{where}: the chat template refused this conversation ({exc})") from None
        return str(text)

    full = render(messages, False)
    segments: list[tuple[str, bool]] = []
    done = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(messages[:index], True) if index else ""
        upto = render(messages[: index + 1], False)
        start, end = len(before), len(upto)
        if not (done <= start <= end and full.startswith(upto) and upto.startswith(before)):
            raise DataError(f"{where}: the chat template does not render turn {index} as a prefix of the conversation")
        segments += [(full[done:start], False), (full[start:end], True)]
        done = end
    segments.append((full[done:], False))
    return Rendered(tuple((t, trainable) for t, trainable in segments if t), bos=False, eos=False, keep_end=False)


def render_records(
    records: Sequence[Mapping[str, Any]],
    data_format: DataFormat,
    fields: Mapping[str, str] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    source: str = "dataset",
    lines: Sequence[int] | None = None,
) -> tuple[list[Rendered], str | None]:
    """Render every record of one format.

    Args:
        records: The rows (e.g. from :func:`lorabench.data.read.read_records`).
        data_format: One of :data:`FORMATS`.
        fields: Column renaming (canonical field -> column).
        tokenizer: A tokenizer whose chat template renders chat and ShareGPT records; None or one without a
            template uses the ChatML-style fallback.
        source: The file name, for messages.
        lines: The line of each record in a JSON Lines file (messages say ``file:line``); else ``record N``
            (1-based).

    Returns:
        The rendered records, and how chat records were templated (None for other formats).

    Raises:
        DataError: Unknown format, or a record that does not fit it (file, record index and field named).
    """
    if data_format not in FORMATS:
        raise DataError(f"unknown format {data_format!r} (choose one of: {', '.join(FORMATS)})")
    mapping = dict(fields or {})

    def col(name: str) -> str:
        return mapping.get(name, name)

    template = None
    if data_format in ("chat", "sharegpt"):
        has = tokenizer is not None and getattr(tokenizer, "chat_template", None)
        template = "the tokenizer's chat template (apply_chat_template)" if has else CHATML_FALLBACK
    rendered: list[Rendered] = []
    for index, record in enumerate(records):
        where = f"{source}:{lines[index]}" if lines is not None else f"{source}: record {index + 1}"
        if not isinstance(record, Mapping):
            raise DataError(f"{where}: expected an object, got {type(record).__name__}")
        if data_format == "finlora":
            parts = (_string(record, col("context"), where), _string(record, col("target"), where))
            rendered.append(Rendered(((parts[0], False), (parts[1], True))))
        elif data_format == "completion":
            parts = (_string(record, col("prompt"), where), _string(record, col("completion"), where))
            rendered.append(Rendered(((parts[0], False), (parts[1], True))))
        elif data_format == "alpaca":
            instruction = _string(record, col("instruction"), where)
            extra = _string(record, col("input"), where, optional=True)
            output = _string(record, col("output"), where)
            prompt = (ALPACA_PROMPT if extra else ALPACA_PROMPT_NO_INPUT).format(instruction=instruction, input=extra)
            rendered.append(Rendered(((prompt, False), (output, True))))
        elif data_format == "text":
            rendered.append(Rendered(((_string(record, col("text"), where), True),), keep_end=False))
        else:
            messages = _messages(record, data_format, col(_FIELDS[data_format][0][0]), where)
            if template == CHATML_FALLBACK or tokenizer is None:
                rendered.append(_chatml(messages))
            else:
                rendered.append(_template(messages, tokenizer, where))
    return rendered, template
