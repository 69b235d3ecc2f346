"""The parts of bench/throughput.py: HTTP calls (``client``), the result rows (``rows``), creates
(``creates``, parts a and b), short tasks (``short_tasks``, part c) and memory with stored tasks
(``memory``, part d)."""
