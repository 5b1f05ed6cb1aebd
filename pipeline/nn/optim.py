"""Optimizers and gradient clipping with torch.optim's semantics and names.

An optimizer holds a dict of parameter arrays and updates them in place:

    opt = Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    opt.step(grads)                    # grads keyed like params
    opt.state_dict(); opt.load_state_dict(s)

As in torch, a key missing from ``grads`` is skipped (torch skips a parameter
whose .grad is None), and step counts are kept per parameter. Updates run in
the parameter's dtype. A non-finite gradient raises ``NonFiniteGradient``
before any weight changes, so weights never silently turn into NaN.
"""
import copy
import math

import numpy as np


class NonFiniteGradient(FloatingPointError):
    """A gradient holds NaN or inf; nothing was updated."""


def _check_hyper(name, value, low=0.0, strict=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (value <= low if strict else value < low) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low},"
                         f" got {value!r}")
    return float(value)


class Optimizer:
    """Base: per-parameter state, the non-finite guard, state_dict round trips."""

    def __init__(self, params, **hyper):
        if not isinstance(params, dict) or not params:
            raise ValueError("params must be a non-empty dict of name -> ndarray")
        self.params = params
        self.hyper = hyper
        self.state = {}

    def step(self, grads):
        """Update every parameter that has a gradient; all or nothing."""
        for name, g in grads.items():
            if name not in self.params:
                raise ValueError(f"gradient for unknown parameter {name!r}")
            if g.shape != self.params[name].shape:
                raise ValueError(f"gradient {name!r} has shape {g.shape},"
                                 f" expected {self.params[name].shape}")
            if not np.isfinite(g).all():
                raise NonFiniteGradient(f"gradient {name!r} holds NaN or inf; no step taken")
        for name, g in grads.items():
            p = self.params[name]
            st = self.state.setdefault(name, self._init_state(p))
            st["step"] += 1
            self._update(p, g.astype(p.dtype, copy=False), st)

    def _init_state(self, p):
        return {"step": 0}

    def _update(self, p, g, st):
        raise NotImplementedError

    def state_dict(self):
        """Hyper-parameters and per-parameter state (copies)."""
        return {"hyper": dict(self.hyper), "state": copy.deepcopy(self.state)}

    def load_state_dict(self, state_dict):
        unknown = set(state_dict["state"]) - set(self.params)
        if unknown:
            raise ValueError(f"state for unknown parameters: {', '.join(sorted(unknown))}")
        self.hyper.update(state_dict["hyper"])
        self.state = copy.deepcopy(state_dict["state"])


class SGD(Optimizer):
    """torch.optim.SGD: momentum, dampening, nesterov, weight_decay (L2)."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, lr=_check_hyper("lr", lr),
                         momentum=_check_hyper("momentum", momentum),
                         dampening=_check_hyper("dampening", dampening),
                         weight_decay=_check_hyper("weight_decay", weight_decay),
                         nesterov=bool(nesterov))

    def _update(self, p, g, st):
        h = self.hyper
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        if h["momentum"]:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = g.copy()
            else:
                buf *= h["momentum"]
                buf += (1 - h["dampening"]) * g
            g = g + h["momentum"] * buf if h["nesterov"] else buf
        p -= h["lr"] * g


class Adagrad(Optimizer):
    """torch.optim.Adagrad: lr_decay, weight_decay, initial_accumulator_value, eps."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, lr=_check_hyper("lr", lr),
                         lr_decay=_check_hyper("lr_decay", lr_decay),
                         weight_decay=_check_hyper("weight_decay", weight_decay),
                         initial_accumulator_value=_check_hyper(
                             "initial_accumulator_value", initial_accumulator_value),
                         eps=_check_hyper("eps", eps))

    def _init_state(self, p):
        return {"step": 0, "sum": np.full_like(p, self.hyper["initial_accumulator_value"])}

    def _update(self, p, g, st):
        h = self.hyper
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        clr = h["lr"] / (1 + (st["step"] - 1) * h["lr_decay"])
        st["sum"] += g * g
        p -= clr * (g / (np.sqrt(st["sum"]) + h["eps"]))


class RMSprop(Optimizer):
    """torch.optim.RMSprop: alpha, eps, weight_decay, momentum, centered."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False):
        super().__init__(params, lr=_check_hyper("lr", lr), alpha=_check_hyper("alpha", alpha),
                         eps=_check_hyper("eps", eps),
                         weight_decay=_check_hyper("weight_decay", weight_decay),
                         momentum=_check_hyper("momentum", momentum), centered=bool(centered))

    def _init_state(self, p):
        st = {"step": 0, "square_avg": np.zeros_like(p)}
        if self.hyper["momentum"] > 0:
            st["momentum_buffer"] = np.zeros_like(p)
        if self.hyper["centered"]:
            st["grad_avg"] = np.zeros_like(p)
        return st

    def _update(self, p, g, st):
        h = self.hyper
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        sq = st["square_avg"]
        sq *= h["alpha"]
        sq += (1 - h["alpha"]) * g * g
        if h["centered"]:
            ga = st["grad_avg"]
            ga += (1 - h["alpha"]) * (g - ga)
            avg = np.sqrt(sq - ga * ga) + h["eps"]
        else:
            avg = np.sqrt(sq) + h["eps"]
        if h["momentum"] > 0:
            buf = st["momentum_buffer"]
            buf *= h["momentum"]
            buf += g / avg
            p -= h["lr"] * buf
        else:
            p -= h["lr"] * (g / avg)


class Adam(Optimizer):
    """torch.optim.Adam: betas, eps, weight_decay (L2 in the gradient), amsgrad."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        b1, b2 = betas
        for name, b in (("betas[0]", b1), ("betas[1]", b2)):
            if not 0.0 <= _check_hyper(name, b) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b!r}")
        super().__init__(params, lr=_check_hyper("lr", lr), betas=(float(b1), float(b2)),
                         eps=_check_hyper("eps", eps),
                         weight_decay=_check_hyper("weight_decay", weight_decay),
                         amsgrad=bool(amsgrad))

    def _init_state(self, p):
        st = {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
        if self.hyper["amsgrad"]:
            st["max_exp_avg_sq"] = np.zeros_like(p)
        return st

    def _update(self, p, g, st):
        h = self.hyper
        b1, b2 = h["betas"]
        if h["weight_decay"]:
            if self.decoupled:
                p *= 1 - h["lr"] * h["weight_decay"]
            else:
                g = g + h["weight_decay"] * p
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m += (1 - b1) * (g - m)
        v *= b2
        v += (1 - b2) * g * g
        step = st["step"]
        step_size = h["lr"] / (1 - b1 ** step)
        bc2_sqrt = math.sqrt(1 - b2 ** step)
        if h["amsgrad"]:
            np.maximum(st["max_exp_avg_sq"], v, out=st["max_exp_avg_sq"])
            v = st["max_exp_avg_sq"]
        p -= step_size * (m / (np.sqrt(v) / bc2_sqrt + h["eps"]))


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def grad_norm(grads):
    """Global L2 norm over all gradients, as a Python float (inf or nan if any is)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return math.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel()))
                             for g in grads.values()))


def clip_grad_norm(grads, max_norm):
    """Scale all grads in place so their global L2 norm is at most max_norm.

    As torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6),
    applied when below 1. Returns the pre-clip norm as a Python float; if it is
    not finite the grads are left untouched for the caller to act on.
    """
    total = grad_norm(grads)
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= g.dtype.type(coef)
    return total


def clip_grad_value(grads, clip_value):
    """Clamp every gradient entry to [-clip_value, clip_value] in place."""
    for g in grads.values():
        np.clip(g, -clip_value, clip_value, out=g)
