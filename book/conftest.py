"""nbval over the notebooks of book/zh and book/en, set up the same way whichever paths pytest is given
(`pytest`, `pytest book/en/04_activations.ipynb`, ...)."""
import os
from pathlib import Path

import nbval.kernel

# Every notebook kernel imports the library of this checkout, installed or not (and not another copy that is).
_ROOT = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join([_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])

# The notebooks always run the quick profile on the CPU, whatever the machine has (their outputs were stored so).
os.environ["ALEXNET_PROFILE"] = "quick"
# Under pytest-xdist each worker's notebook kernels use one thread: the workers share the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


def _execute_like_jupyter(self, cell_input, allow_stdin=None):
    """nbval runs cells with store_history=False, and then IPython does not honour a trailing ';' (a cell ending in
    ';' would print its value, unlike in Jupyter where the stored outputs were made). Run cells as Jupyter does."""
    return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)


nbval.kernel.RunningKernel.execute_cell_input = _execute_like_jupyter
