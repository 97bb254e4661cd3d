"""alexnet_lib: the library of the course "AlexNet, hands-on / AlexNet 动手学".

Modules, one concern each: ``profiles`` (quick vs full), ``models``, ``data``, ``augment``, ``train``, ``trace``,
``plot``, ``widgets``, ``runs`` (recorded runs), ``experiments`` (named runs), ``gpu_data`` (GPU-resident data path),
``grads`` (gradient norms), ``inspect_net`` (feature maps, confusion matrix), ``bench``, ``dist`` (DDP)
and ``cli`` (``python -m alexnet_lib``).
"""
__version__ = "0.1.0"
