"""The README and the docs name only files and folders that exist.

After ``server/`` was regrouped by capability, a doc that still pointed at
``server/ratings_service.py`` would send a newcomer nowhere.  A path counts
when it starts at one of the project's top-level folders and names a file
(it has an extension) or a folder (it ends with ``/``); examples inside fenced
code blocks (error messages about a user's own files) are not paths of ours.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = "agent|broker|vision|sensors|server|tests|config|bench|docs|\\.ci"
PATH = re.compile(rf"(?<![\w/.-])((?:{TOP})/[\w./-]*)(?![<{{])")  # bench/baseline/<topic> is an MQTT topic
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("bench/*.md"), *ROOT.glob("config/**/*.md"), *ROOT.glob("tests/**/*.md")])


def _named_paths(doc: Path) -> list[tuple[int, str]]:
    found, fenced = [], False
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        for match in PATH.finditer(line):
            path = match.group(1).rstrip(".,:;")
            if path.endswith("/") or Path(path).suffix:
                found.append((number, path))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_only_paths_that_exist(doc: Path):
    missing = [f"{doc.relative_to(ROOT)}:{n}: {p}" for n, p in _named_paths(doc) if not (ROOT / p).exists()]
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_docs_paths_check_finds_the_server_modules_the_docs_name():
    named = {p for doc in DOCS for _, p in _named_paths(doc)}
    assert "server/rules/supervision.py" in named  # the check reads the docs at all
