import os
import sys
from pathlib import Path

import pytest

# The tests always run the quick profile on the CPU, whatever the machine has.
os.environ["ALEXNET_PROFILE"] = "quick"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder, so a test can damage data without touching the real cache."""
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
