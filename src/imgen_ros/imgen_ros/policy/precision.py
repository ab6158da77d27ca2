"""Training precision: the recurrent layers in bfloat16 during gradient steps, everything else float32.

On one CPU core the demo's BC-RNN-GMM is compute-bound and most of its multiply-adds are in the
LSTM. With ``bf16`` the LSTM's forward (and so its backward) runs under CPU autocast in bfloat16
(oneDNN), its outputs are cast back to float32, and the encoder, the GMM head, the loss, the
weights and Adam stay float32. Only modules in training mode are affected: selection rollouts,
evaluation and deployment run the float32 weights in float32, and checkpoints are unchanged.
It pays on CPUs with native bfloat16 (AVX512-BF16 or AMX); elsewhere oneDNN emulates it slowly, and
on CPUs without AVX512 it has no bfloat16 LSTM at all: ``bf16_unavailable_reason`` probes for that,
and ``runnable_precision`` turns it into an error (bf16 asked for) or a float32 fallback (a default).
"""

from __future__ import annotations

import functools
from typing import Any

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


@functools.lru_cache(maxsize=1)
def bf16_unavailable_reason() -> str | None:
    """Why this process cannot train an LSTM in bfloat16 on the CPU, or None where it can.

    Probed by a tiny LSTM's forward and backward under CPU autocast: oneDNN has no bfloat16 LSTM on
    CPUs without AVX512 (torch 2.13 on an AVX2-only AMD EPYC: "could not create a primitive descriptor
    for the LSTM forward propagation primitive").
    """
    import torch

    try:
        lstm = torch.nn.LSTM(4, 8, batch_first=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _state = lstm(torch.zeros(2, 3, 4))
        out.float().sum().backward()
    except RuntimeError as exc:
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")
        return ("torch's CPU backend (oneDNN) has no bfloat16 LSTM on this processor (it needs AVX512; "
                f"torch said: {said})")
    return None


def runnable_precision(precision: str, *, explicit: bool) -> tuple[str, str]:
    """The precision a run can train in here, and why it differs from ``precision`` ("" if it does not).

    bf16 where this CPU cannot run it: an error if the user asked for it (``explicit``), float32 with
    the reason if it is only a default (a scale's), so the same command works on every machine.
    """
    check_precision(precision)
    reason = bf16_unavailable_reason() if precision == "bf16" else None
    if reason is None:
        return precision, ""
    if explicit:
        raise ValueError(f"precision 'bf16' cannot run here: {reason}; train with precision fp32")
    return "fp32", f"bf16 fell back to fp32: {reason}"


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True where the CPU advertises bfloat16 arithmetic (x86 AVX512-BF16 or AMX-BF16, from Linux cpuinfo)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def use_bf16_recurrence(net: Any) -> int:
    """Make every LSTM/GRU in ``net`` compute in bfloat16 while in training mode; returns how many.

    The module's own ``forward`` is wrapped on the instance (not in its state dict), so saving and
    loading are unaffected; in eval mode it runs exactly as before.
    """
    import torch

    count = 0
    for module in net.modules():
        if isinstance(module, (torch.nn.LSTM, torch.nn.GRU)) and not getattr(module, "_imgen_bf16", False):
            module.forward = _bf16_forward(module, module.forward)
            module._imgen_bf16 = True
            count += 1
    return count


def _bf16_forward(module: Any, forward: Any) -> Any:
    import torch

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not module.training:
            return forward(*args, **kwargs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        return _to_float32(out)

    return wrapped


def _to_float32(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple):
        return tuple(_to_float32(v) for v in value)
    return value
