"""`make help` lists every target of the Makefile, and every target is phony (none makes a file
of its name, so a stray file called `test` or `demo` cannot make it a no-op)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()


def _targets() -> set[str]:
    # Rules and target-specific variables alike ("demo: export ..."); not $(PY) or the stamps.
    return set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", MAKEFILE, re.M))


def _phony() -> set[str]:
    declared = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", MAKEFILE, re.M)
    assert declared, "the Makefile declares its phony targets"
    return set(declared.group(1).replace("\\\n", " ").split())


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_lists_every_target():
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"^\s+make ([a-z0-9-]+)\s", shown, re.M))
    assert listed == _targets() - {"help"}


def test_every_target_is_phony():
    assert _phony() == _targets()
