"""PyTorch's packed-sequence layout, for a batch of sequences of different lengths.

    x (T, B, D), lengths (B,)  --pack-->  rows (N, D), N = sum(lengths)

As ``pack_padded_sequence(x, lengths, enforce_sorted=False)``: the sequences
are sorted by length, longest first, and step t holds the batch_sizes[t]
sequences still running, in that order, one row each. The kernels work on
these rows, so their work is proportional to the valid steps. With every
length T (or lengths None) the rows are the (T, B, D) array itself read as
(T*B, D): packing and unpacking are reshapes, and no sequence is reordered.
"""
import numpy as np


class Packing:
    """Where each (step, sequence) of a (T, B, .) batch sits among the packed rows.

    batch_sizes (T',): rows per step, T' = max(lengths); order (B,): the
    sequences by decreasing length (None: as given, all of length T).
    """

    def __init__(self, T, B, lengths=None):
        self.T, self.B = T, B
        if lengths is None or np.all(lengths == T):
            self.order, self.rows = None, None
            self.lengths = np.full(B, T, np.int64)
            self.batch_sizes = np.full(T, B, np.int64)
        else:
            self.order = np.argsort(-np.asarray(lengths), kind="stable")
            self.lengths = np.asarray(lengths, np.int64)[self.order]
            steps = np.arange(self.lengths[0])
            self.batch_sizes = (self.lengths[None, :] > steps[:, None]).sum(axis=1)
            # the row of the padded (T*B, .) array each packed row comes from
            self.rows = np.concatenate([t * B + self.order[:n]
                                        for t, n in enumerate(self.batch_sizes)])
        self.offsets = np.concatenate([[0], np.cumsum(self.batch_sizes)])
        self.N = int(self.offsets[-1])

    @property
    def steps(self):
        """T' = max(lengths): the steps the kernels walk."""
        return self.batch_sizes.shape[0]

    def pack(self, a):
        """(T, B, F) -> (N, F): the valid steps' rows (a view when nothing is padded)."""
        flat = a.reshape(self.T * self.B, a.shape[2])
        return flat if self.rows is None else flat[self.rows]

    def unpack(self, p):
        """(N, F) -> (T, B, F), zeros at padded steps (a view when nothing is padded)."""
        if self.rows is None:
            return p.reshape(self.T, self.B, p.shape[1])
        out = np.zeros((self.T * self.B, p.shape[1]), p.dtype)
        out[self.rows] = p
        return out.reshape(self.T, self.B, p.shape[1])

    def sort(self, state):
        """A state (S, B, H) in the rows' order (a new C-contiguous array)."""
        return state.copy() if self.order is None else np.ascontiguousarray(state[:, self.order])

    def unsort(self, state):
        """A state (S, B, H) from the rows' order back to the batch's (in place when unsorted)."""
        if self.order is None:
            return state
        out = np.empty_like(state)
        out[:, self.order] = state
        return out

    def last_rows(self):
        """(B,) the row of each sequence's last valid step, in the rows' order."""
        return self.offsets[self.lengths - 1] + np.arange(self.B)

    def first_rows(self):
        """(B,) the row of each sequence's step t = 0, in the rows' order."""
        return np.arange(self.B)
