"""CPU accounting from Linux /proc, for bench/debate_throughput.py.

    meter = CpuMeter({vllm_pid: "vllm", os.getpid(): "bench"})
    meter.start(); ...; print(meter.stop())   # {"vllm": 17.2, "bench": 1.6, "other": 0.0} CPU seconds

On a 2-core machine every process competes with vLLM, so a benchmark should say how much CPU
went where, including to processes it did not start.
"""

import os
from pathlib import Path


class CpuMeter:
    """CPU seconds used between `start()` and `stop()` per group of processes, and by all others.

    A process belongs to the group of its nearest ancestor (or itself) in `roots`; "other" is
    the machine's busy time minus every group's, so it includes processes outside this benchmark.
    """

    def __init__(self, roots: dict[int, str]) -> None:
        self.roots = roots
        self._start: tuple[int, dict[int, tuple[int, int]]] | None = None

    def start(self) -> None:
        self._start = (_busy_ticks(), _process_ticks())

    def stop(self) -> dict[str, float]:
        assert self._start is not None, "start() first"
        busy_before, before = self._start
        busy, after = _busy_ticks(), _process_ticks()
        used: dict[str, float] = dict.fromkeys(self.roots.values(), 0.0)
        for pid, (_, ticks) in after.items():
            group = self._group(pid, after)
            if group is not None:
                used[group] += ticks - before.get(pid, (0, 0))[1]
        used["other"] = max(0, busy - busy_before - sum(used.values()))  # clamp sampling jitter
        hz = os.sysconf("SC_CLK_TCK")
        return {name: round(ticks / hz, 1) for name, ticks in used.items()}

    def _group(self, pid: int, table: dict[int, tuple[int, int]]) -> str | None:
        while pid > 1 and pid in table:
            if pid in self.roots:
                return self.roots[pid]
            pid = table[pid][0]
        return None


def _process_ticks() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, user + system clock ticks) for every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # exited meanwhile
                continue
            table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def _busy_ticks() -> int:
    """Clock ticks all CPUs spent on anything but idle and I/O wait since boot."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4]
