"""The gate's files for CI: every number as JSON (``--json``) and JUnit XML (``--junit``), one testsuite
``s3eval.gate`` with one testcase per task and check, which CI systems show as passed, failed or skipped tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping, Sequence

from .gate import FAIL, SKIP, GateResult
from .storage import atomic_write_json, atomic_write_text

SUITE = "s3eval.gate"


def write_json(path: Path, results: Sequence[GateResult], context: Mapping[str, Any]) -> None:
    """``context``: what was gated against what (runs, baseline, alpha, margin, …)."""
    atomic_write_json(Path(path), {
        **context, "passed": all(r.passed for r in results),
        "results": [{"task": r.task, "check": r.check, "status": r.status, "reason": r.reason, **r.numbers}
                    for r in results],
    })  # fmt: skip


def junit_xml(results: Sequence[GateResult]) -> str:
    suite = ET.Element("testsuite", name=SUITE, tests=str(len(results)), errors="0",
                       failures=str(sum(r.status == FAIL for r in results)),
                       skipped=str(sum(r.status == SKIP for r in results)))  # fmt: skip
    for result in results:
        # The check in the class name keeps a task's non-inferiority and media-gain cases apart in CI listings.
        case = ET.SubElement(suite, "testcase", classname=f"{SUITE}.{result.check.replace(' ', '_')}",
                             name=result.task)  # fmt: skip
        if result.status == FAIL:
            ET.SubElement(case, "failure", message=result.reason, type="GateFailure").text = result.line()
        elif result.status == SKIP:
            ET.SubElement(case, "skipped", message=result.reason)
        ET.SubElement(case, "system-out").text = result.line()
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(path: Path, results: Sequence[GateResult]) -> None:
    atomic_write_text(Path(path), junit_xml(results))
