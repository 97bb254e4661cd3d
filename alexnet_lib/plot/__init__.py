"""Plots of the course, by topic: ``common`` (fonts, the zh/en label table, page language, provenance), ``curves``
(training curves, recorded runs), ``images`` (image grids, augmentation), ``activations`` (activation functions,
gradient norms, dropout), ``seeing`` (filters, feature maps, confusion matrix), ``seeds`` (replicated runs: every
seed, mean and range), ``bench`` (throughput, roofline),
``two_gpus`` (the 2012 split, data parallelism). Every name is importable from here: ``from alexnet_lib.plot import
plot_runs``.
"""
from .activations import *  # noqa: F401,F403
from .architecture import *  # noqa: F401,F403
from .bench import *  # noqa: F401,F403
from .common import *  # noqa: F401,F403
from .curves import *  # noqa: F401,F403
from .images import *  # noqa: F401,F403
from .seeing import *  # noqa: F401,F403
from .seeds import *  # noqa: F401,F403
from .two_gpus import *  # noqa: F401,F403
from . import activations, architecture, bench, common, curves, images, seeds, seeing, two_gpus

__all__ = [*common.__all__, *curves.__all__, *images.__all__, *activations.__all__, *architecture.__all__,
           *seeing.__all__, *seeds.__all__, *bench.__all__, *two_gpus.__all__]

setup_fonts()
