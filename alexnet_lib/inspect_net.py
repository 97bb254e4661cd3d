"""Looking inside a network: feature maps through forward hooks, predictions, the confusion matrix, and the most
confident mistakes.

    maps = feature_maps(net, x)                     # {"features.0": (N, 96, 54, 54), "features.3": ..., ...}
    pred = predict(net, test_iter)                  # labels, predicted classes and probabilities, in loader order
    cm = confusion_matrix(pred.labels, pred.preds)  # rows: true class, columns: predicted class
    worst = most_confident_mistakes(pred, k=16)     # indices into the test set

The plots are in :mod:`.plot` (``plot_filters``, ``plot_feature_maps``, ``plot_confusion_matrix``) and the
explorer widget in :mod:`.widgets` (``feature_map_explorer``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn

__all__ = ["ACTIVATION_TYPES", "conv_layers", "recorded_outputs", "feature_maps", "Predictions", "predict", "confusion_matrix",
           "most_confident_mistakes", "mistakes_report"]

ACTIVATION_TYPES = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.LeakyReLU)


def conv_layers(net: nn.Module) -> list[str]:
    """Names of the ``nn.Conv2d`` modules of ``net`` in forward order, e.g. ``["features.0", "features.3", ...]``."""
    return [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]


def _followed_by_activation(net: nn.Module, name: str) -> str:
    """The name of the activation right after conv ``name`` in the same ``nn.Sequential``, else ``name`` itself."""
    parent_name, _, child = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    if isinstance(parent, nn.Sequential) and child.isdigit() and int(child) + 1 < len(parent):
        nxt = parent[int(child) + 1]
        if isinstance(nxt, ACTIVATION_TYPES):
            return f"{parent_name}.{int(child) + 1}" if parent_name else str(int(child) + 1)
    return name


@contextmanager
def recorded_outputs(modules: dict[str, nn.Module]):
    """While open, every forward pass stores each module's output in the dict it yields, under the module's name.

    A forward hook is a function PyTorch calls after a module's ``forward`` with ``(module, inputs, output)``; the
    hooks are removed on exit, also after an error.
    """
    out: dict[str, torch.Tensor] = {}

    def keep(name: str, y: torch.Tensor) -> None:
        if y.device.type != "meta":  # the models' input check runs them on the meta device first
            out[name] = y.detach().float().cpu().clone()

    hooks = [m.register_forward_hook(lambda mod, args, y, n=n: keep(n, y)) for n, m in modules.items()]
    try:
        yield out
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def feature_maps(net: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None, *,
                 activated: bool = True) -> dict[str, torch.Tensor]:
    """The output of each layer in ``layers`` for the batch ``x``, collected with forward hooks.

    Args:
        net: any model; put in eval mode for the call and restored afterwards.
        x: a batch (N, C, H, W); moved to ``net``'s device (a trained net may be on the GPU, the images not).
        layers: module names (default: every convolution, see :func:`conv_layers`).
        activated: for a convolution followed by an activation (ReLU, ...), return what the activation outputs,
            i.e. what the next layer sees; ``False`` returns the raw convolution output.

    Returns:
        ``{layer name: tensor (N, C, H', W')}`` on the CPU, in the order of ``layers``. If every layer lies inside
        ``net.features``, only ``net.features`` runs, so any input size the convolutions accept works.
    """
    layers = list(layers) if layers is not None else conv_layers(net)
    known = dict(net.named_modules())
    missing = [n for n in layers if n not in known]
    if missing:
        raise ValueError(f"no layer(s) {missing} in {type(net).__name__}; convolutions are {conv_layers(net)}")
    source = {n: _followed_by_activation(net, n) if activated else n for n in layers}
    param = next(net.parameters(), None)
    x = x.to(param.device) if param is not None else x
    was_training = net.training
    net.eval()
    try:
        with recorded_outputs({n: known[src] for n, src in source.items()}) as out:
            features = getattr(net, "features", None)
            if features is not None and all(src.startswith("features.") for src in source.values()):
                features(x)
            else:
                net(x)
    finally:
        net.train(was_training)
    return {n: out[n] for n in layers}


@dataclass
class Predictions:
    """What a model says about every image of a data set, in the loader's order.

    ``labels`` (N,) true classes, ``preds`` (N,) predicted classes, ``probs`` (N, K) softmax probabilities.
    """

    labels: torch.Tensor
    preds: torch.Tensor
    probs: torch.Tensor

    @property
    def confidence(self) -> torch.Tensor:
        """Probability the model gives to its own prediction, (N,)."""
        return self.probs.max(dim=1).values

    @property
    def accuracy(self) -> float:
        return (self.preds == self.labels).float().mean().item()

    def __len__(self) -> int:
        return len(self.labels)


@torch.no_grad()
def predict(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None) -> Predictions:
    """Run ``net`` (in eval mode) over ``data_iter`` and keep labels, predictions and probabilities on the CPU.

    Use a loader that does not shuffle (test loaders don't), so index ``i`` is image ``i`` of its data set.
    """
    device = torch.device(device) if device is not None else next(net.parameters()).device
    was_training = net.training
    net.eval()
    labels, probs = [], []
    try:
        for x, y in data_iter:
            logits = net(x.to(device)).float()
            probs.append(torch.softmax(logits, dim=1).cpu())
            labels.append(y.cpu())
    finally:
        net.train(was_training)
    p = torch.cat(probs)
    return Predictions(labels=torch.cat(labels), preds=p.argmax(dim=1), probs=p)


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Counts (K, K): entry ``[i, j]`` is the number of images of true class ``i`` predicted as class ``j``.

    Row ``i`` sums to the number of images of class ``i``; the diagonal holds the correct predictions.
    """
    labels, preds = torch.as_tensor(labels).long().flatten(), torch.as_tensor(preds).long().flatten()
    if labels.shape != preds.shape:
        raise ValueError(f"labels and preds differ in length: {len(labels)} vs {len(preds)}")
    bad = (labels < 0) | (labels >= num_classes) | (preds < 0) | (preds >= num_classes)
    if bad.any():
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}")
    return torch.bincount(labels * num_classes + preds, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def most_confident_mistakes(pred: Predictions, k: int = 16) -> torch.Tensor:
    """Indices of the (at most ``k``) wrongly classified images, the most confident wrong prediction first."""
    wrong = (pred.preds != pred.labels).nonzero().flatten()
    order = pred.confidence[wrong].argsort(descending=True, stable=True)
    return wrong[order][:k]


def mistakes_report(net: nn.Module, test_iter: Iterable, k: int = 16, device: torch.device | str | None = None,
                    **provenance) -> dict:
    """What a trained network gets wrong, as a small JSON-friendly dict: test accuracy, the confusion matrix, and
    the ``k`` most confident mistakes (test-set index, true class, predicted class, its probability, and the true
    class's probability). ``provenance`` (run name, device, date, ...) is stored alongside. The command line adds each
    mistaken image's 28x28 pixels (``pixels_hex``), so the page can show them without the full data set.

    Chapter 11 reads the one recorded from the fully trained network (``book/runs/ch11/mistakes.json``), made on a
    GPU with ``python -m alexnet_lib.inspect_net --checkpoint CKPT --out book/runs/ch11/mistakes.json``.
    """
    pred = predict(net, test_iter, device)
    cm = confusion_matrix(pred.labels, pred.preds)
    worst = most_confident_mistakes(pred, k)
    return {"kind": "mistakes_report", **provenance,
            "test_images": len(pred.labels), "test_acc": (pred.preds == pred.labels).float().mean().item(),
            "confusion": cm.tolist(),
            "mistakes": [{"index": int(i), "label": int(pred.labels[i]), "pred": int(pred.preds[i]),
                          "prob": round(pred.probs[i, pred.preds[i]].item(), 4),
                          "prob_true": round(pred.probs[i, pred.labels[i]].item(), 4)} for i in worst]}


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m alexnet_lib.inspect_net --checkpoint CKPT --out JSON``: the mistakes report of a trained d2l
    AlexNet (a checkpoint written by ``train --checkpoint``) on the full Fashion-MNIST test set at 224x224."""
    import argparse
    import datetime

    from .models import build_model
    from .runs import save_json

    ap = argparse.ArgumentParser(prog="python -m alexnet_lib.inspect_net", description=_main.__doc__)
    ap.add_argument("--checkpoint", required=True, help="a checkpoint of train --checkpoint (its 'model' state)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="d2l_alexnet")
    ap.add_argument("--run", default="", help="the recorded run the checkpoint belongs to (stored in the JSON)")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--image-size", type=int, help="the model's input side (default: its own, 224)")
    ap.add_argument("--source", default="full", choices=("full", "sample"))
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    state = state.get("model", state)
    state = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state.items()}
    net = build_model(args.model, **({"image_size": args.image_size} if args.image_size else {}))
    net.load_state_dict(state)
    net.to(device)
    if device.type == "cuda":
        from .gpu_data import gpu_loaders
        _, test_iter = gpu_loaders(256, net.image_size, source=args.source, device=device)
    else:
        from .data import load_data_fashion_mnist
        _, test_iter = load_data_fashion_mnist(256, net.image_size, source=args.source)
    with torch.no_grad():
        report = mistakes_report(net, test_iter, args.k, device, run=args.run, model=args.model,
                                 device_name=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                                 torch=torch.__version__, date=datetime.date.today().isoformat())
    from .data import fashion_mnist  # the 28x28 originals of the mistaken images, so a page can show them
    originals = fashion_mnist(train=False, source=args.source).data
    for m in report["mistakes"]:
        m["pixels_hex"] = bytes(originals[m["index"]].numpy().tobytes()).hex()  # 28x28 uint8, row by row
    save_json(report, args.out)
    print(f"{args.out}: test accuracy {report['test_acc']:.4f} on {report['test_images']:,} images, "
          f"{len(report['mistakes'])} most confident mistakes")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
