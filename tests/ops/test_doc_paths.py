"""Every file and folder README.md and docs/*.md name in backticks exists.

Modules were split and moved; a document that still names `tracking/views.py` for the click
redirect sends a reader to the wrong place. A path with a slash (`tracking/redirect.py`,
`commissions/fraud/`) is checked from the project folder; a bare name (`signups.py`,
`fastpath/`) must be some file's or folder's name in the project; `path.py::name` (or
`path.py:name`) must also define ``name``. Folders the project makes at run time and
git-ignores (`staticfiles/`, `var/click-spool/`) count as existing. docs/reliability.md is
checked up to its table of defects found, which is history: it names files as they were.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HISTORY_HEADING = "## Defects these tests found"
# A backticked span that ends in .py (optionally ::name or :name) or in a slash.
CITED = re.compile(r"`([\w.\-/]*(?:\.py(?:::?\w+)?|/))`")
SKIPPED_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def documents() -> dict[str, str]:
    texts = {"README.md": (ROOT / "README.md").read_text()}
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        if path.name == "reliability.md":
            text = text.split(HISTORY_HEADING, 1)[0]
        texts[f"docs/{path.name}"] = text
    return texts


def _project_names() -> tuple[set[str], set[str]]:
    files, folders = set(), set()
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if SKIPPED_DIRS & set(parts):
            continue
        (folders if path.is_dir() else files).add(path.name)
    return files, folders


def _ignored_folders() -> set[str]:
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return {line.strip().strip("/") for line in lines if line.strip().endswith("/")}


def _defines(path: Path, name: str) -> bool:
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pattern, path.read_text(), flags=re.MULTILINE) is not None


def missing_paths(text: str, *, files: set[str], folders: set[str], ignored: set[str]) -> list[str]:
    """The cited paths of ``text`` that name nothing in the project."""
    missing = []
    for cited in CITED.findall(text):
        if cited.startswith("/"):  # a URL path or a system path (/etc/nginx/...)
            continue
        path, _, name = cited.partition(":")
        name = name.lstrip(":")
        folder = path.endswith("/")
        bare = path.strip("/")
        if "/" not in bare:
            exists = bare in (folders if folder else files) or bare in ignored
        else:
            exists = (ROOT / path).exists() or bare.split("/")[0] in ignored
        if exists and name:
            exists = "/" in bare and _defines(ROOT / path, name)
        if not exists:
            missing.append(cited)
    return missing


@pytest.fixture(scope="module")
def project():
    files, folders = _project_names()
    return {"files": files, "folders": folders, "ignored": _ignored_folders()}


@pytest.mark.parametrize("document", sorted(documents()))
def test_every_path_a_document_cites_exists(document, project):
    text = documents()[document]
    assert missing_paths(text, **project) == []


def test_the_documents_cite_paths_at_all():
    cited = [path for text in documents().values() for path in CITED.findall(text)]
    assert len(cited) > 40
    assert "tracking/ids.py" in cited


def test_a_path_that_moved_is_reported(project):
    text = (
        "The redirect is in `tracking/clickviews.py`, the fast path in `commissions/fastpath.py`, "
        "the rebuild is `tracking/rebuild.py::rebuild_rollups_nowhere`, the handlers live in `nowhere/`; "
        "`tracking/redirect.py`, `tracking/rebuild.py::rebuild_rollups`, `signups.py`, `fastpath/`, "
        "`var/click-spool/`, `/r/<code>/` and `commissions/fraud/` are fine."
    )
    assert missing_paths(text, **project) == [
        "tracking/clickviews.py",
        "commissions/fastpath.py",
        "tracking/rebuild.py::rebuild_rollups_nowhere",
        "nowhere/",
    ]
