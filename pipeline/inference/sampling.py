"""Sampling text from a character-level language model, one character at a time.

The prime is read once through the network; then each step draws the next
character from softmax(logits / temperature) and feeds it back, carrying the
hidden state. The same seed gives the same text.
"""
import numpy as np

from ..nn.losses import log_softmax


def encode(text, vocab):
    """Token ids of text in a model's vocabulary (its training characters, in order)."""
    index = {c: i for i, c in enumerate(vocab)}
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        raise ValueError(f"prime has characters outside the model's vocabulary:"
                         f" {', '.join(repr(c) for c in unknown[:10])}")
    return np.array([index[c] for c in text], np.int64)


def default_prime(vocab):
    """A newline if the vocabulary has one, else a space, else its first character."""
    return next((c for c in ("\n", " ") if c in vocab), vocab[0])


def sample(model, vocab, prime=None, length=200, temperature=1.0, seed=0):
    """`length` characters after `prime` (None: ``default_prime``), drawn from the model
    at `temperature`."""
    if not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    rng = np.random.default_rng(seed)
    ids = encode(prime or default_prime(vocab), vocab)
    logits = model.forward(ids[:, None])[-1, 0]            # (V,) after the prime
    state = model.state
    symbols = list(vocab) + ["\ufffd"]                      # the last id: unknown to training
    out = []
    for _ in range(length):
        logp = log_softmax(logits.astype(np.float64) / temperature)
        token = int(rng.choice(logp.size, p=np.exp(logp)))
        out.append(symbols[token])
        logits = model.forward(np.array([[token]]), state0=state)[-1, 0]
        state = model.state
    return "".join(out)
