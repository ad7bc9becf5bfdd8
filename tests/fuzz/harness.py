"""What every fuzz target shares: the budget, the seed corpora and the mutation strategies.

Budget: `FUZZ_EXAMPLES` examples per target (default 200, so the whole folder stays well under a
minute in CI; `FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/fuzz` for a long run) and a deadline of
`FUZZ_DEADLINE_MS` per example (default 2000: generous for a loaded CI box, but a parser that goes
quadratic on a few kilobytes blows it). Corpus entries run first, every run, as explicit examples.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
DEADLINE_MS = int(os.environ.get("FUZZ_DEADLINE_MS", "2000"))
CORPUS = Path(__file__).resolve().parent / "corpus"

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(milliseconds=DEADLINE_MS),
    # Inputs are big and strategies nested on purpose; the deadline is the check that matters.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
    print_blob=True,
)

F = TypeVar("F", bound=Callable[..., Any])


def corpus(component: str) -> list[bytes]:
    """The seed files of one component, in name order (stable example order across runs)."""
    return [path.read_bytes() for path in sorted((CORPUS / component).iterdir()) if path.is_file()]


def with_seeds(seeds: list[Any]) -> Callable[[F], F]:
    """Run each seed as an explicit example (a one-argument target) before the generated ones."""

    def decorate(test: F) -> F:
        for seed in reversed(seeds):
            test = example(seed)(test)
        return test

    return decorate


# Tokens worth splicing in: the bytes parsers branch on.
XML_TOKENS = (
    b"<", b">", b"/>", b"</", b'"', b"'", b"=", b"&", b"&amp;", b"&#0;", b"&#x10FFFF;", b"&#xD;",
    b"<![CDATA[", b"]]>", b"<!--", b"-->", b"<?", b"?>", b"<?GOREALLYSLOW?>", b"<!DOCTYPE",
    b"<!ENTITY", b"\x00", b"{", b"}", b"\r\n", b"{99999999999}", b"xmlns:a=\"u\"", b"a:b",
    b"\xff", b"\xc3", b"\xed\xa0\x80", b"<?xml version=\"1.0\" encoding=\"UTF-7\"?>",
)  # fmt: skip


@st.composite
def mutated(
    draw: st.DrawFn, seeds: list[bytes], tokens: tuple[bytes, ...] = (), max_steps: int = 6
) -> bytes:
    """A seed changed by a few random edits: byte flips, inserts of random bytes or tokens,
    deletions, truncation, duplication of a range, splicing with another seed."""
    data = bytearray(draw(st.sampled_from(seeds)) if seeds else b"")
    for _ in range(draw(st.integers(0, max_steps))):
        op = draw(st.integers(0, 6))
        at = draw(st.integers(0, len(data)))
        if op == 0 and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == 2 and tokens:
            data[at:at] = draw(st.sampled_from(tokens))
        elif op == 3:
            data[at : at + draw(st.integers(1, 32))] = b""
        elif op == 4:
            del data[at:]
        elif op == 5:
            end = draw(st.integers(at, len(data)))
            data[at:at] = data[at:end] * draw(st.integers(1, 4))
        elif op == 6 and seeds:
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[at:] = other[start:]
    return bytes(data)


def fuzz_bytes(seeds: list[bytes], tokens: tuple[bytes, ...] = ()) -> st.SearchStrategy[bytes]:
    """Mutated seeds most of the time, plain random bytes (and token soup) the rest."""
    soup = st.lists(st.sampled_from(tokens) | st.binary(max_size=8), max_size=40).map(b"".join)
    return st.one_of(
        mutated(seeds, tokens), st.binary(max_size=512), soup if tokens else st.binary()
    )


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at random places (also into single bytes and empty pieces)."""
    if not data:
        return [b""]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=min(len(data), 24))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
