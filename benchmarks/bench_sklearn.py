"""scikit-learn's MLPClassifier on W4: 64-32-10, relu, Adam 1e-3, batch 32, exactly 20 epochs.

Its initial weights and batch order are its own (it has no way to take ours), so only the time
and the final training loss are compared, not the first losses.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from child import rss_kib
from workloads import Workload, make_data


def run(w: Workload, args: Any) -> dict[str, Any]:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    if w.id != "W4":
        raise SystemExit("scikit-learn runs W4 only")
    x, labels = make_data(w, args.quick)

    def fit() -> Any:
        model = MLPClassifier(
            hidden_layer_sizes=(32,), activation="relu", solver="adam", alpha=0.0,
            batch_size=w.batch, learning_rate_init=1e-3, max_iter=w.epochs, shuffle=True,
            random_state=0, tol=0.0, n_iter_no_change=10**6, early_stopping=False,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(x, labels)

    fit()  # warm-up
    out: dict[str, Any] = {"version": sklearn.__version__, "numpy": np.__version__}
    out["rss_setup_kib"] = rss_kib()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - t0)
    out["times"] = times
    out["final_loss"] = float(model.loss_)
    out["epochs_run"] = int(model.n_iter_)
    return out
