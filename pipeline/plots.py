"""Figures of a run: loss curves, predictions against truth, gradient norms.

Each function takes plain arrays and returns a matplotlib Figure; ``save``
writes it as PNG. The Agg backend is used, so no display is needed.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_POINTS = 400  # test points drawn in a predictions plot


def loss_curves(history):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["epoch"], history["train_loss"], label="train")
    ax.plot(history["epoch"], history["val_loss"], label="validation")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss")
    ax.legend()
    fig.tight_layout()
    return fig


def predictions(pred, truth, clean=None, kind="regression", readout="last"):
    """Regression: truth and prediction over the first test sequences.
    Classification of whole sequences: the share of each class predicted right.
    Classification at every step: accuracy at each time step."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if kind == "classification" and readout == "last":
        classes = np.arange(pred.shape[-1])
        hits = [np.mean(pred.argmax(-1)[truth == c] == c) if np.any(truth == c) else np.nan
                for c in classes]
        ax.bar(classes, hits)
        ax.set(xlabel="class", ylabel="recall (share predicted right)", ylim=(0, 1.02),
               title="Test recall per class")
    elif kind == "regression":
        n = min(MAX_POINTS, len(truth))
        ax.plot(truth[:n, 0], ".", ms=3, alpha=0.5, label="target")
        if clean is not None:
            ax.plot(clean[:n, 0], lw=1, label="noise-free curve")
        ax.plot(pred[:n, 0], lw=1, label="prediction")
        ax.set(xlabel="test sequence", ylabel="value", title="Predictions against truth")
    else:
        acc = (pred.argmax(-1) == truth).mean(axis=1)
        ax.plot(np.arange(len(acc)), acc)
        ax.set(xlabel="time step", ylabel="accuracy", ylim=(0, 1.02),
               title="Test accuracy per time step")
    ax.legend() if kind == "regression" else None
    fig.tight_layout()
    return fig


def confusion(actual, predicted, classes=None):
    """The confusion matrix of whole-sequence classes: counts, actual by row."""
    names = list(classes) if classes is not None else sorted(set(actual) | set(predicted))
    index = {c: i for i, c in enumerate(names)}
    counts = np.zeros((len(names), len(names)), int)
    for a, p in zip(actual, predicted):
        counts[index[a], index[p]] += 1
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * len(names), 1 + 0.45 * len(names)))
    ax.imshow(counts, cmap="Blues")
    for i in range(len(names)):
        for j in range(len(names)):
            if counts[i, j]:
                ax.text(j, i, counts[i, j], ha="center", va="center", fontsize="small",
                        color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names,
           yticklabels=names, xlabel="predicted", ylabel="actual", title="Test confusion matrix")
    fig.tight_layout()
    return fig


def hidden_grad_norms(dh_norms):
    """‖dL/dh_t‖ against t at each diagnosed epoch, first layer, forward direction."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for epoch, norms in sorted(dh_norms.items()):
        ax.plot(np.arange(norms.shape[-1]), norms[0, 0], label=f"epoch {epoch}")
    ax.set(xlabel="time step t", ylabel="‖dL/dh_t‖", yscale="log",
           title="Gradient norm per time step (layer 0)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def step_grad_norms(norms):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.asarray(norms, float), lw=0.7)
    ax.set(xlabel="optimizer step", ylabel="global gradient norm (before clipping)",
           yscale="log", title="Gradient norm per step")
    fig.tight_layout()
    return fig


def forecast(table, example):
    """Left: the test series and recursive forecasts from a few starting points.
    Right: MSE by horizon, the model's and persistence's (log scale)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    truth = example["truth"]
    left.plot(np.arange(truth.size), truth, lw=1, color="0.4", label="truth")
    H = example["forecasts"].shape[0]
    for k, start in enumerate(example["starts"]):
        left.plot(np.arange(start, start + H), example["forecasts"][:, k], lw=1.5,
                  label="forecast" if k == 0 else None, color="C1")
    left.set(xlabel="test step", ylabel="value (original units)",
             title=f"Recursive forecasts, {H} steps")
    left.legend(fontsize="small")
    right.plot(table["horizon"], table["model_mse"], marker="o", label="model")
    right.plot(table["horizon"], table["persistence_mse"], marker="s", label="persistence")
    right.set(xlabel="horizon (steps ahead)", ylabel="MSE (original units)", yscale="log",
              title="Error by horizon, test split")
    right.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save(fig, path):
    """Write fig as PNG through a temporary file (a kill leaves no half-written figure)."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def gradient_flow(table):
    """‖∂L/∂h_t‖ relative to the last step against the distance T - t, log scale.

    table: pipeline.analysis.gradflow's long table. One line per configuration,
    the geometric mean over seeds, shaded between the smallest and largest seed.
    Left: the RNN with an orthogonal W_hh scaled to rho (colour: rho; tanh solid,
    relu dashed). Right: each cell at its own initialisation, and trained models.
    """
    swept = table[table["rho"].notna()]
    own = table[table["rho"].isna()]
    panels = [p for p in ((swept, "RNN, orthogonal $W_{hh}$ scaled to ρ"),
                          (own, "cells at their initialisation")) if len(p[0])]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False,
                             sharey=True)
    rhos = sorted(swept["rho"].unique())
    cmap = plt.get_cmap("viridis")
    for ax, (part, title) in zip(axes[0], panels):
        for k, (config, rows) in enumerate(part.groupby("config", sort=False)):
            curves = rows.pivot(index="distance", columns="seed", values="relative")
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log10(curves.where(curves > 0))
            mid = 10 ** logs.mean(axis=1)
            style = {}
            if part is swept:
                rho = rows["rho"].iloc[0]
                style = dict(color=cmap(rhos.index(rho) / max(1, len(rhos) - 1)),
                             ls="--" if rows["nonlinearity"].iloc[0] == "relu" else "-")
            line, = ax.plot(curves.index, mid, lw=1.4, label=config, **style)
            ax.fill_between(curves.index, 10 ** logs.min(axis=1), 10 ** logs.max(axis=1),
                            color=line.get_color(), alpha=0.12, lw=0)
        ax.set(yscale="log", xlabel="distance T − t (steps back from the loss)", title=title)
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 1e-40))
        ax.axhline(1.0, color="0.6", lw=0.6)
        ax.legend(fontsize="x-small", ncol=2 if len(part["config"].unique()) > 6 else 1)
    axes[0][0].set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
    n = table["seed"].nunique()
    fig.suptitle(f"Gradient flow at initialisation: geometric mean over {n} seed"
                 f"{'s' if n > 1 else ''}, band = seed range", fontsize="medium")
    fig.tight_layout()
    return fig
