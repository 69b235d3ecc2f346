"""The psutil meter reads this machine and real processes; a container's memory limit, when it has one,
is what memory is judged against."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from skalds.adapters.psutil_meter import PsutilResourceMeter, cgroup_memory

GIB = 1 << 30


def test_it_reads_the_node_and_the_processes_still_there() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    meter = PsutilResourceMeter()
    reading = meter.measure([os.getpid(), finished.pid])
    assert reading.node is not None
    assert 0 < reading.node.memory_percent <= 100 and reading.node.memory_bytes > 0
    assert list(reading.processes) == [os.getpid()]  # the ended one is left out
    assert reading.processes[os.getpid()].memory_bytes > 0
    assert reading.processes[os.getpid()].cpu_percent == 0.0  # nothing to compare with yet
    sum(range(3_000_000))  # some CPU time, so the second reading has something to show
    again = meter.measure([os.getpid()])
    assert again.processes[os.getpid()].cpu_percent > 0
    assert again.node is not None and 0 <= again.node.cpu_percent <= 100


def cgroup(tmp_path: Path, files: dict[str, str], own: str = "0::/app.slice/skald") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(f"{own}\n")
    return root, self_cgroup


def test_a_cgroup_v2_limit_is_read_as_its_working_set_against_the_limit(tmp_path: Path) -> None:
    root, own = cgroup(
        tmp_path,
        {
            "app.slice/skald/memory.max": f"{GIB}\n",
            "app.slice/skald/memory.current": f"{GIB // 2}\n",
            "app.slice/skald/memory.stat": f"anon 1\ninactive_file {GIB // 4}\nactive_file 2\n",
        },
    )
    assert cgroup_memory(root, own) == (GIB // 4, GIB)
    reading = PsutilResourceMeter(cgroup_root=root, self_cgroup=own).measure([])
    assert reading.node is not None and reading.node.memory_percent == 25.0  # not of the machine


def test_no_limit_means_the_machine(tmp_path: Path) -> None:
    root, own = cgroup(tmp_path, {"app.slice/skald/memory.max": "max\n"})
    assert cgroup_memory(root, own) is None
    assert cgroup_memory(tmp_path / "nowhere", tmp_path / "nothing") is None


def test_a_cgroup_v1_limit_is_read_at_the_memory_controllers_root(tmp_path: Path) -> None:
    root, own = cgroup(
        tmp_path,
        {
            "memory/memory.limit_in_bytes": f"{2 * GIB}\n",
            "memory/memory.usage_in_bytes": f"{GIB}\n",
            "memory/memory.stat": f"total_inactive_file {GIB // 2}\n",
        },
        own="4:memory:/docker/abc\n0::/",
    )
    assert cgroup_memory(root, own) == (GIB // 2, 2 * GIB)
