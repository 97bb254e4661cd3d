import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# The tests always run the quick profile on the CPU, whatever the machine has.
os.environ["ALEXNET_PROFILE"] = "quick"
# Under pytest-xdist (`pytest` runs `-n auto --dist loadfile`, see pyproject.toml) each worker, and every notebook
# kernel or subprocess it starts, uses one thread: the workers share the cores instead of fighting over them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
# glibc malloc hands every block above 32 MB back to the OS when it is freed, so each training step of an AlexNet
# (the gradients and Adam's temporaries of its dense layers, up to 105 MB each) faults its memory in again: a quarter
# of a quick run's time, in the kernel. Keeping freed memory in the process made a step about a third faster (with
# Adam's foreach step), with the same results to the bit. Read by each new process (the xdist workers, notebook
# kernels, subprocesses), not this one.
os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(2**28))  # 256 MB: above any tensor of the quick runs
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(2**28))  # at most 256 MB free kept at the top of the heap
# The zh and en twins of a page show one measurement (alexnet_lib.prose.shared), as in the built book: a folder for
# this test run, made here in the first process (the pytest-xdist workers it starts inherit the variable) and removed
# when that process exits.
if not os.environ.get("ALEXNET_SHARE"):
    os.environ["ALEXNET_SHARE"] = tempfile.mkdtemp(prefix="alexnet-share-")
    atexit.register(shutil.rmtree, os.environ["ALEXNET_SHARE"], ignore_errors=True)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# ... and so does every subprocess a test starts (a run through the command line, torchrun's workers, a notebook
# kernel): the library of this checkout, whether or not it is installed, and not another copy that is.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.fixture
def one_thread():
    """Tiny models train as fast on one thread, and much faster when the CPU is shared with other work."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder, so a test can damage data without touching the real cache."""
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
