"""Every answer in corpus/ goes through the real pipeline; each file says what must happen."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.llm_server import FakeLLMServer
from tests.hostile.harness import Case, CaseRun, load_cases

CASES = load_cases()


def _param(case: Case) -> Any:
    marks = [pytest.mark.slow] if case.get("slow") else []
    if reason := case.skip_reason():
        marks.append(pytest.mark.skip(reason=reason))
    return pytest.param(case, id=case.name, marks=marks)


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 20
    assert all(case.expect["logged"] for case in CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_answer(case: Case, tmp_path: Path, fake_llm: FakeLLMServer, write_config: Callable[..., Path],
                        build: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    run = CaseRun(case, tmp_path, fake_llm, write_config, build, monkeypatch)
    try:
        outcome = run.run()
    finally:
        run.stop()
    print(outcome.line())
    if report := os.environ.get("HOSTILE_REPORT"):
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(outcome.line() + "\n")
