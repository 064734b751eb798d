"""How many threads each engine gets: the CPUs this process may run on, not the machine's.

CTranslate2 (STT), llama.cpp (LLM) and onnxruntime (Piper) each size their
thread pools from the machine's core count by default, whatever `taskset`, a
cgroup cpuset or a container allows; measured on this 2-core machine under
`taskset -c 0`, CTranslate2 and onnxruntime still started two-thread pools and
llama.cpp two threads.  llama.cpp's threads wait for each other at every
layer, spinning: two of them on one core take turns at a full time slice each.
So every engine is given the number of CPUs this process may use (torch, for
the VAD, already counts them that way).
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def engine_threads(requested: int = 0) -> int:
    """`requested` threads if set, else one per usable CPU."""
    return requested if requested > 0 else usable_cpus()


def physical_cores() -> int:
    """Usable cores without their hyper-threads (engines that spin-wait, like
    llama.cpp, run best on one thread per core); more than two usable CPUs
    are taken to be hyper-threaded pairs."""
    count = usable_cpus()
    return max(1, count // 2) if count > 2 else count
