"""A node with its workers registered in code (upstream style). Run: python examples/run_node.py

Worker processes start from a forkserver, which imports this file again: keep the ``__main__`` guard.
"""

from skalds import Skald
from skalds.config import load_settings
from skalds.examples import CountdownWorker, StreamWorker

if __name__ == "__main__":
    skald = Skald(load_settings())
    skald.register_task_worker(CountdownWorker)
    skald.register_task_worker(StreamWorker)
    raise SystemExit(skald.run())
