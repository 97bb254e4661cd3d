"""alexnet_lib: the library of the course "AlexNet, hands-on / AlexNet 动手学".

Modules, one concern each: ``config`` (the typed ``TrainConfig``), ``profiles`` (quick vs full), ``models``,
``data``, ``augment``, ``train``, ``trace``, ``plot`` (a package by topic), ``widgets``, ``runs`` (recorded runs),
``experiments`` (named runs), ``gpu_data`` (GPU-resident data path), ``grads`` (gradient norms), ``inspect_net``
(feature maps, confusion matrix), ``bench`` (throughput, also under DDP), ``dist`` (DDP) and ``cli``
(``python -m alexnet_lib``).
"""
__version__ = "0.1.0"
