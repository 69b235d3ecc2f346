"""Parts (a) and (b): creating tasks on a ``skalds controller --mode dispatcher`` with no node, so every task
created stays waiting (``Created``).

(b) times ``per_measure`` single creates from 1 and from 8 clients with 0 tasks waiting (each measurement's
tasks are purged through the API afterwards, so the next starts from the same backlog), then again with
``waiting`` tasks waiting. (a) times a batch create of ``batch_tasks`` in requests of 500, between the two;
its tasks count towards the backlog (b) seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.throughput_parts import client
from bench.throughput_parts.rows import Row
from tests.integration.cluster import Cluster, Controller

CLIENTS = (1, 8)
PER_REQUEST = 500  # tasks per batch request
SEED_CHUNK = 1_000  # the backlog is seeded (and its create rate noted) this many at a time
TARGET_BATCH = 1_000.0  # tasks/s
TARGET_EIGHT = 500.0  # creates/s with 8 clients
FLAT_SHARE = 0.8  # the rate with the backlog waiting, at least this share of the rate with none


@dataclass(slots=True)
class Creates:
    controller: Controller
    per_measure: int
    waiting: int
    batch_tasks: int
    rates: dict[tuple[int, int], client.Timed] = field(default_factory=dict)  # (waiting, clients) -> timed
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.controller.url

    def waiting_now(self) -> int:
        return client.count(self.controller.api, "Created")

    def measure(self, waiting: int, clients: int) -> None:
        """``per_measure`` single creates from ``clients`` clients, then those tasks purged again."""
        before = self.waiting_now()
        ids = [f"b{waiting}-{clients}-{i:05d}" for i in range(self.per_measure)]
        timed = client.single_creates(self.url, ids, clients)
        purged = client.purge(self.url, ids)
        self.rates[(waiting, clients)] = timed
        self.details[f"single_{clients}_clients_{waiting}_waiting"] = {
            "waitingBefore": before,
            "creates": timed.summary(),
            "purge": purged.summary(),
            "waitingAfterPurge": self.waiting_now(),
        }

    def batch(self) -> Row:
        ids = [f"a-{i:05d}" for i in range(self.batch_tasks)]
        measure = f"batch create {self.batch_tasks:,} (requests of {PER_REQUEST}), creates/s"
        target = f">= {TARGET_BATCH:,.0f}/s"
        timed = client.batch_creates(self.controller.api, ids, PER_REQUEST)
        if timed is None:
            self.details["batch"] = "no batch endpoint (404/405)"
            return Row("a", measure, "n/a (no batch endpoint)", target, None)
        rate = timed.rate(self.batch_tasks) if not timed.error_count else 0.0
        self.details["batch"] = timed.summary() | {"waitingAfter": self.waiting_now()}
        return Row(
            "a",
            measure,
            f"{rate:,.0f}/s",
            target,
            rate >= TARGET_BATCH,
            value=rate,
            unit="tasks/s",
            note=f"per request {timed.latency_note()}",
        )

    def seed(self) -> None:
        """Create tasks until ``waiting`` wait: batches when the API has them, else 8 clients' single
        creates; notes the create rate of each ``SEED_CHUNK`` as the backlog grows."""
        batch = client.has_batch_endpoint(self.controller.api)
        have = self.waiting_now()
        chunks: list[dict[str, Any]] = []
        while have < self.waiting:
            ids = [f"seed-{have + i:06d}" for i in range(min(SEED_CHUNK, self.waiting - have))]
            timed = (
                client.batch_creates(self.controller.api, ids, PER_REQUEST)
                if batch
                else client.single_creates(self.url, ids, 8)
            )
            assert timed is not None
            chunks.append({"waitingBefore": have, **timed.summary()})
            if timed.error_count:
                raise RuntimeError(f"seeding the backlog failed at {have} waiting: {timed.errors[0]}")
            have = self.waiting_now()
        self.details["seed"] = {"how": "batch" if batch else "8 clients, single creates", "chunks": chunks}

    def single_rows(self, measured: list[int]) -> list[Row]:
        rows = []
        for waiting in measured:
            for clients in CLIENTS:
                timed = self.rates[(waiting, clients)]
                rate = timed.rate() if not timed.error_count else 0.0
                checks: list[tuple[str, bool]] = []
                if clients == 8:
                    checks.append((f">= {TARGET_EIGHT:,.0f}/s", rate >= TARGET_EIGHT))
                empty = self.rates.get((0, clients))
                if waiting and empty is not None:
                    floor = FLAT_SHARE * empty.rate()
                    checks.append((f">= {floor:,.0f}/s (80 % of 0 waiting)", rate >= floor))
                rows.append(
                    Row(
                        "b",
                        f"single creates, {clients} client{'s' if clients > 1 else ''}, "
                        f"{waiting:,} waiting, creates/s",
                        f"{rate:,.0f}/s",
                        " and ".join(text for text, _ in checks) or "-",
                        all(ok for _, ok in checks) if checks else None,
                        value=rate,
                        unit="creates/s",
                        note=timed.latency_note(),
                    )
                )
        return rows


def run_creates(
    cluster: Cluster, parts: set[str], *, per_measure: int, waiting: int, batch_tasks: int
) -> tuple[list[Row], dict[str, Any]]:
    """Parts a and b on one controller (dispatcher mode, no node); returns the rows and the details."""
    controller = cluster.controller()
    cluster.wait_ready(controller)
    creates = Creates(controller, per_measure=per_measure, waiting=waiting, batch_tasks=batch_tasks)
    rows: list[Row] = []
    measured = []
    if "b" in parts:
        # a first round on the fresh controller and collection, not kept (its rates are overwritten): the
        # first creates pay for connections, the collection's creation and cold caches, which would make
        # the empty backlog look slower than the full one
        creates.measure(0, max(CLIENTS))
        for clients in CLIENTS:
            creates.measure(0, clients)
        measured.append(0)
    if "a" in parts:
        rows.append(creates.batch())
    if "b" in parts:
        creates.seed()
        for clients in CLIENTS:
            creates.measure(waiting, clients)
        measured.append(waiting)
        rows += creates.single_rows(measured)
    creates.details["stillCreated"] = creates.waiting_now()
    return rows, creates.details
