"""PyTorch's side of a workload: the same network, initial weights, batches and Adam (its default,
``torch.optim.Adam(lr=1e-3)``), float32, in a plain training loop that, like
``nncli.training.loop.fit``, reads the loss of every batch and counts the correct predictions.

nncli's LSTM has one bias (PyTorch's b_ih + b_hh), so here ``bias_hh`` is zero and frozen: the
gradient reaches the one trainable bias exactly as in nncli, and Adam sees the same parameters.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
from child import rss_kib
from workloads import Workload, batches, make_data

FIRST_LOSSES = 8


def build(w: Workload, args: Any) -> tuple[Any, dict[str, str]]:
    """The network, and nncli's parameter names -> PyTorch's."""
    import torch
    from torch import nn

    if w.id in ("W1", "I1"):
        net = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
        )
        names = {"0.dense": "0", "1.dense": "2", "2.dense": "4"}
    elif w.id in ("W2", "I2"):
        net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
        names = {"0.conv2d": "0", "2.conv2d": "3", "5.dense": "7", "6.dense": "9"}
    elif w.id == "W3":

        class LastState(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(16, 128, batch_first=True)
                self.head = nn.Linear(128, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                _, (h, _) = self.lstm(x)
                return self.head(h[-1])

        net = LastState()
        net.lstm.bias_hh_l0.requires_grad_(False)
        return net, {
            "0.lstm.weight_ih": "lstm.weight_ih_l0",
            "0.lstm.weight_hh": "lstm.weight_hh_l0",
            "0.lstm.bias": "lstm.bias_ih_l0",
            "1.dense.weight": "head.weight",
            "1.dense.bias": "head.bias",
        }
    elif w.id == "W5":

        class SequenceCNN(nn.Module):
            """nncli's (N, T, F) sequences are PyTorch's (N, C, T) after one transpose."""

            def __init__(self) -> None:
                super().__init__()
                self.conv1, self.bn1 = nn.Conv1d(8, 32, 3, padding=1), nn.BatchNorm1d(32)
                self.conv2, self.bn2 = nn.Conv1d(32, 64, 3, padding=1), nn.BatchNorm1d(64)
                self.head = nn.Linear(64, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                x = self.bn1(torch.relu(self.conv1(x.transpose(1, 2))))
                x = self.bn2(torch.relu(self.conv2(x)))
                return self.head(x.mean(dim=2))

        net = SequenceCNN()
        names = {"0.conv1d": "conv1", "1.batchnorm": "bn1", "2.conv1d": "conv2",
                 "3.batchnorm": "bn2", "5.dense": "head"}  # fmt: skip
    elif w.id == "W7":

        class Block(nn.Module):
            def __init__(self, cin: int, cout: int, stride: int, projection: bool) -> None:
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1)
                self.bn1 = nn.BatchNorm2d(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
                self.bn2 = nn.BatchNorm2d(cout)
                self.proj = nn.Conv2d(cin, cout, 1, stride) if projection else None

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
                return torch.relu(y + (x if self.proj is None else self.proj(x)))

        class ResidualCNN(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.blocks = nn.Sequential(
                    Block(1, 16, 1, True), Block(16, 32, 2, True), Block(32, 32, 1, False)
                )
                self.head = nn.Linear(32, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.head(self.blocks(x).mean(dim=(2, 3)))

        net = ResidualCNN()
        parts = {"0.conv2d": "conv1", "1.batchnorm": "bn1", "3.conv2d": "conv2",
                 "4.batchnorm": "bn2", "projection": "proj"}  # fmt: skip
        names = {"4.dense": "head"}
        for i in range(3):
            names |= {
                f"{i}.residual.{ours}": f"blocks.{i}.{theirs}" for ours, theirs in parts.items()
            }
        names.pop("2.residual.projection")  # the third block keeps its shape: no shortcut layer
    elif w.id == "W6":

        class TransformerClassifier(nn.Module):
            """nncli's transformer layers are PyTorch's encoder layers, parameters by name."""

            def __init__(self) -> None:
                super().__init__()
                self.blocks = nn.ModuleList(
                    nn.TransformerEncoderLayer(
                        64, 4, 128, dropout=0.0, batch_first=True, norm_first=True
                    )
                    for _ in range(2)
                )
                self.head = nn.Linear(64, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                for block in self.blocks:
                    x = block(x)
                return self.head(x.mean(dim=1))

        net = TransformerClassifier()
        mapping = {f"3.dense.{p}": f"head.{p}" for p in ("weight", "bias")}
        for i, block in enumerate(net.blocks):
            names = [n for n, _ in block.named_parameters()]
            mapping |= {f"{i}.transformer.{n}": f"blocks.{i}.{n}" for n in names}
        return net, mapping
    else:
        net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        names = {"0.dense": "0", "1.dense": "2"}
    mapping = {}
    for ours, theirs in names.items():
        mapping[f"{ours}.weight"] = f"{theirs}.weight"
        mapping[f"{ours}.bias"] = f"{theirs}.bias"
    return net, mapping


def run(w: Workload, args: Any) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if getattr(args, "device", "cpu") == "gpu" else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    net, mapping = build(w, args)
    if args.weights:
        weights = np.load(args.weights)
        state = net.state_dict()
        with torch.no_grad():
            for ours, theirs in mapping.items():
                state[theirs].copy_(torch.from_numpy(weights[ours]))
            if w.id == "W3":
                state["lstm.bias_hh_l0"].zero_()
    net.to(device)  # the data stays on the host and moves a batch at a time, as nncli's does
    x_np, labels_np = make_data(w, args.quick)
    x, labels = torch.from_numpy(x_np), torch.from_numpy(labels_np)
    out: dict[str, Any] = {"version": torch.__version__, "numpy": np.__version__}
    if device.type == "cuda":
        out["cuda"] = torch.version.cuda
        out["gpu"] = torch.cuda.get_device_name(0)
    out["torch_threads"] = torch.get_num_threads()

    if w.kind == "infer":
        net.eval()
        with torch.inference_mode():
            net(x[: w.infer_batch].to(device))
            out["rss_setup_kib"] = rss_kib()
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                for start in range(0, len(x), w.infer_batch):
                    net(x[start : start + w.infer_batch].to(device)).cpu().numpy()
                times.append(time.perf_counter() - t0)
        out["times"], out["samples"] = times, len(x)
        return out

    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)

    def epoch(number: int, record: list[float] | None = None) -> tuple[float, float]:
        net.train()
        total, correct, seen = 0.0, 0, 0
        for idx_np in batches(len(x), w.batch, number):
            idx = torch.from_numpy(idx_np)
            xb, yb = x[idx].to(device), labels[idx].to(device)
            opt.zero_grad()
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            value = loss.item()
            if record is not None and len(record) < FIRST_LOSSES:
                record.append(value)
            total += value * len(idx)
            correct += int((logits.argmax(dim=1) == yb).sum())
            seen += len(idx)
        return total / seen, correct / seen

    def train(first: int, count: int, record: list[float] | None = None) -> list[float]:
        times, result = [], (0.0, 0.0)
        for number in range(first + 1, first + count + 1):
            t0 = time.perf_counter()
            result = epoch(number, record)
            sync()
            times.append(time.perf_counter() - t0)
        out["final_loss"], out["final_accuracy"] = result
        return times

    out["rss_setup_kib"] = rss_kib()
    if args.mode in ("long", "epochs"):
        out["epoch_times"] = train(0, args.epochs)
        return out

    record: list[float] = []
    start = 0 if w.epochs > 1 else 1
    if start == 0:
        saved = (copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict()))
        train(0, w.epochs, record)
    else:
        train(0, 1, record)
        saved = (copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict()))
    out["losses"] = record
    times = []
    for _ in range(args.reps):
        net.load_state_dict(saved[0])
        opt.load_state_dict(copy.deepcopy(saved[1]))
        t0 = time.perf_counter()
        train(start, w.epochs)
        times.append(time.perf_counter() - t0)
    out["times"] = times
    return out
