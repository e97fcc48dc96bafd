"""Turn an instruction dataset (Dolly-style JSON lines) into the NxD Training SFT format.

NxD Training's SFT data module reads JSON lines with an ``input`` (the prompt) and an
``output`` (the answer it learns to produce); the loss covers ``output`` only. This script
writes ``training.jsonl`` and ``validation.jsonl`` into an output directory, typically on
the shared file system (``/fsx/data/...``), with a deterministic split.

    python prepare_data.py --source dolly.jsonl --output-dir /fsx/data/llama-sft/dataset

Input records need ``instruction`` and ``response``; ``context`` is optional.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROMPT_WITH_CONTEXT = "### Instruction:\n{instruction}\n\n### Context:\n{context}\n\n### Response:\n"
PROMPT = "### Instruction:\n{instruction}\n\n### Response:\n"


class DataError(Exception):
    """A problem with the input the user must fix (printed as one line)."""


@dataclass(frozen=True)
class Split:
    training: int
    validation: int


def to_sft_record(record: dict[str, object], line: int) -> dict[str, str]:
    """One ``{"input", "output"}`` record from an instruction record."""
    missing = [k for k in ("instruction", "response") if not str(record.get(k) or "").strip()]
    if missing:
        raise DataError(f"line {line}: missing or empty {', '.join(missing)}")
    instruction = str(record["instruction"]).strip()
    context = str(record.get("context") or "").strip()
    template = PROMPT_WITH_CONTEXT if context else PROMPT
    return {
        "input": template.format(instruction=instruction, context=context),
        "output": str(record["response"]).strip(),
    }


def read_records(source: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with source.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"line {number}: not JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"line {number}: expected a JSON object")
            yield number, record


def is_validation(record: dict[str, str], fraction: float) -> bool:
    """Stable split by content hash: re-running never moves a record between splits."""
    digest = hashlib.sha256((record["input"] + record["output"]).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def prepare(source: Path, output_dir: Path, *, validation_fraction: float = 0.05) -> Split:
    if not 0 < validation_fraction < 1:
        raise DataError(f"--validation-fraction: got {validation_fraction}; allowed: between 0 and 1")
    if not source.is_file():
        raise DataError(f"{source}: file not found")
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {"training": 0, "validation": 0}
    with (
        (output_dir / "training.jsonl").open("w", encoding="utf-8") as training,
        (output_dir / "validation.jsonl").open("w", encoding="utf-8") as validation,
    ):
        for number, record in read_records(source):
            sft = to_sft_record(record, number)
            split = "validation" if is_validation(sft, validation_fraction) else "training"
            (validation if split == "validation" else training).write(json.dumps(sft, ensure_ascii=False) + "\n")
            counts[split] += 1
    if counts["training"] == 0 or counts["validation"] == 0:
        raise DataError(
            f"{source}: {counts['training']} training and {counts['validation']} validation records; need both"
        )
    return Split(**counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="JSON lines with instruction/context/response")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--validation-fraction", type=float, default=0.05)
    args = parser.parse_args(argv)
    try:
        split = prepare(args.source, args.output_dir, validation_fraction=args.validation_fraction)
    except DataError as err:
        print(f"prepare_data: {err}", file=sys.stderr)
        return 2
    print(f"wrote {split.training} training and {split.validation} validation records to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
