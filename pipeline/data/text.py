"""Char-level language modelling on a UTF-8 file (default: Python's own pydoc topics)."""
from pathlib import Path

import numpy as np

from .dataset import Dataset, TaskError, check_int, split_bounds


def default_corpus():
    """Python's own pydoc topics: a few hundred kB of English text, shipped with CPython."""
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k] for k in sorted(topics))


def text(path=None, length=64, max_chars=200_000):
    """Char-level language modelling: predict every next character of `length`-char windows.

    path: a UTF-8 file (None: ``default_corpus``); its first max_chars characters
    are split 70/15/15 in order. The vocabulary is the training split's
    characters plus one unknown id. Baseline: the cross-entropy on the test split
    of the training split's unigram (add-one smoothed, so characters unseen in
    training cost a finite amount), in nats per character.
    """
    length, max_chars = check_int("length", length), check_int("max_chars", max_chars, 10)
    if path is None:
        corpus, source = default_corpus(), "pydoc_data.topics"
    else:
        try:
            corpus = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"task.path {path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise TaskError(f"task.path {path} is not UTF-8 text ({exc.reason})") from None
        source = str(path)
    corpus = corpus[:max_chars]
    bounds = split_bounds(len(corpus))
    train_text = corpus[slice(*bounds["train"])]
    chars = sorted(set(train_text))
    index = {c: i for i, c in enumerate(chars)}
    unk = len(chars)
    splits = {}
    for split, (a, b) in bounds.items():
        ids = np.array([index.get(c, unk) for c in corpus[a:b]], np.int64)
        n = (ids.size - 1) // length
        if n < 1:
            raise TaskError(f"task.path {source}: the {split} split ({b - a} chars) is shorter"
                             f" than one window of {length + 1}")
        starts = np.arange(n) * length
        idx = starts[None, :] + np.arange(length)[:, None]
        splits[split] = {"x": ids[idx], "y": ids[idx + 1]}
    return Dataset("text", "classification", "all", 0, unk + 1, unk + 1, splits,
                   baselines={"baseline_unigram_xent": unigram_xent(splits, unk + 1)},
                   meta=dict(source=source, length=length, max_chars=max_chars,
                             vocab="".join(chars)))


def unigram_xent(splits, vocab):
    """Nats per character of the training unigram (add-one smoothed) on the test targets."""
    counts = np.bincount(splits["train"]["y"].ravel(), minlength=vocab) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[splits["test"]["y"].ravel()].mean())
