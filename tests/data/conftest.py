from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# A ChatML template as Qwen's and many chat models' (the assistant turn closes with <|im_end|>).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

ALPACA = [
    {
        "instruction": f"Name the sentiment of review {i}.",
        "input": "Great product." if i % 2 else "",
        "output": "positive",
    }
    for i in range(8)
]
CHAT = [
    {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{2 * i}."},
            {"role": "user", "content": "And times two?"},
            {"role": "assistant", "content": f"{4 * i}."},
        ]
    }
    for i in range(8)
]
SHAREGPT = [
    {"conversations": [{"from": "human", "value": f"Say {i}."}, {"from": "gpt", "value": f"{i}"}]} for i in range(8)
]
TEXT = [{"text": f"The quarterly revenue of company {i} rose by {i} percent."} for i in range(8)]
COMPLETION = [{"prompt": f"Ticker of company {i}:", "completion": f" C{i}"} for i in range(8)]
FINLORA = [{"context": f"Instruction: sentiment? Input: item {i}. Answer: ", "target": "neutral"} for i in range(8)]

ROWS: dict[str, list[dict[str, Any]]] = {
    "alpaca": ALPACA,
    "chat": CHAT,
    "sharegpt": SHAREGPT,
    "text": TEXT,
    "completion": COMPLETION,
    "finlora": FINLORA,
}


def write_with_datasets(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write rows in the file type ``path`` names, with the datasets library."""
    import json

    import datasets

    data = datasets.Dataset.from_list(rows)
    suffix = path.suffix
    if suffix == ".jsonl":
        data.to_json(str(path), lines=True)
    elif suffix == ".json":  # a JSON array, as json.dump writes one
        path.write_text(json.dumps(data.to_list()))
    elif suffix == ".csv":
        data.to_csv(str(path), index=False)
    elif suffix == ".parquet":
        data.to_parquet(str(path))
    else:
        data.save_to_disk(str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def _quiet_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()
