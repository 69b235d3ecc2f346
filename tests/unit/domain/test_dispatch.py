"""Dispatch: who may take a task, in which order tasks go, and what each strategy promises."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skalds.domain import lifecycle
from skalds.domain.dispatch import (
    DispatchPlan,
    DispatchStrategy,
    ResourceThresholds,
    assign_batch,
    dispatch_order,
    node_refusal,
    task_refusal,
)
from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import Node, NodeMode
from skalds.domain.task import Task, TaskMode
from tests.unit.domain.builders import a_node, a_task

NOW = 10_000
POLICY = HeartbeatPolicy(suspect_after_ms=10_000, dead_after_ms=30_000)


def plan(
    tasks: list[Task],
    nodes: list[Node],
    strategy: DispatchStrategy = DispatchStrategy.LEAST_TASKS,
    **kw: object,
) -> DispatchPlan:
    return assign_batch(tasks, nodes, strategy=strategy, now=NOW, policy=POLICY, rng=random.Random(7), **kw)  # type: ignore[arg-type]


def test_order_is_priority_high_to_low_then_oldest_first() -> None:
    tasks = [a_task("a", priority=1, now=3), a_task("b", priority=5, now=9), a_task("c", priority=1, now=1)]
    assert [t.id for t in dispatch_order(tasks)] == ["b", "c", "a"]


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        (a_node(now=NOW - 20_000), "suspect"),
        (a_node(now=NOW - 40_000), "offline"),
        (a_node(mode=NodeMode.EDGE), "edge mode"),
        (a_node(draining=True), "draining"),
        (a_node(cpu_percent=97.0), "CPU above 90%"),
        (a_node(memory_percent=99.0), "memory above 95%"),
    ],
)
def test_nodes_that_take_no_work(node: Node, reason: str) -> None:
    thresholds = ResourceThresholds(max_cpu_percent=90, max_memory_percent=95)
    assert node_refusal(node, NOW, POLICY, thresholds) == reason


def test_a_node_must_support_the_class_and_carry_the_required_labels() -> None:
    gpu = a_node(labels={"gpu": "a100"})
    assert task_refusal(a_task(class_name="Crawler"), gpu) == "without class 'Crawler'"
    assert task_refusal(a_task(required_labels={"gpu": "h100"}), gpu) == "without label gpu=h100"
    assert task_refusal(a_task(required_labels={"gpu": "a100"}), gpu) is None


def test_a_batch_counts_the_load_it_creates_and_respects_capacity() -> None:
    tasks = [a_task(f"t{i}") for i in range(5)]
    result = plan(tasks, [a_node("n1", capacity=2), a_node("n2", capacity=1)])
    assert Counter(a.node_id for a in result.assignments) == {"n1": 2, "n2": 1}
    assert set(result.pending) == {"t3", "t4"}
    assert "at capacity" in result.pending["t3"]


def test_a_pending_task_says_why() -> None:
    nodes = [a_node("n1", now=NOW - 40_000), a_node("n2", supported_classes=frozenset({"Other"}))]
    result = plan([a_task()], nodes)
    assert result.assignments == ()
    assert result.pending["t1"] == "no eligible node (1 offline, 1 without class 'VideoWorker')"
    assert plan([a_task()], []).pending["t1"] == "no skald nodes are registered"


def test_only_queued_passive_tasks_are_dispatched() -> None:
    active = a_task("edge", mode=TaskMode.ACTIVE)
    assigned, _ = lifecycle.apply(a_task("busy"), TaskCommand.ASSIGN, at=NOW, executor="n1")
    result = plan([active, assigned], [a_node()])
    assert result.assignments == ()
    assert set(result.pending) == {"edge", "busy"}


def test_least_tasks_prefers_the_idle_node_and_known_loads_override_inventory() -> None:
    nodes = [a_node("n1", current_tasks=frozenset({"x"})), a_node("n2")]
    assert plan([a_task()], nodes).assignments[0].node_id == "n2"
    assert plan([a_task()], nodes, loads={"n1": 0, "n2": 3}).assignments[0].node_id == "n1"


def test_round_robin_continues_after_the_cursor() -> None:
    nodes = [a_node("n1"), a_node("n2"), a_node("n3")]
    result = plan([a_task("a"), a_task("b")], nodes, DispatchStrategy.ROUND_ROBIN, cursor="n2")
    assert [a.node_id for a in result.assignments] == ["n3", "n1"]
    assert result.cursor == "n1"


# --- properties -------------------------------------------------------------------------------------

CLASSES = ["A", "B"]

node_strategy = st.builds(
    lambda i, classes, capacity, load, age, mode, cpu: Node(
        id=f"n{i:02d}",
        mode=mode,
        supported_classes=frozenset(classes),
        capacity=capacity,
        current_tasks=frozenset(f"x{j}" for j in range(load)),
        registered_at=NOW - age,
        last_heartbeat_at=NOW - age,
        cpu_percent=cpu,
    ),
    i=st.integers(0, 99),
    classes=st.sets(st.sampled_from(CLASSES), max_size=2),
    capacity=st.none() | st.integers(0, 4),
    load=st.integers(0, 3),
    age=st.sampled_from([0, 5_000, 15_000, 60_000]),
    mode=st.sampled_from(NodeMode),
    cpu=st.none() | st.floats(0, 100),
)
nodes_strategy = st.lists(node_strategy, max_size=8, unique_by=lambda n: n.id)
tasks_strategy = st.lists(
    st.builds(
        lambda i, cls, prio, created: a_task(f"t{i:03d}", class_name=cls, priority=prio, now=created),
        i=st.integers(0, 999),
        cls=st.sampled_from(CLASSES),
        prio=st.integers(0, 10),
        created=st.integers(0, 1_000),
    ),
    max_size=30,
    unique_by=lambda t: t.id,
)
THRESHOLDS = ResourceThresholds(max_cpu_percent=90)


def _eligible(task: Task, node: Node) -> bool:
    return node_refusal(node, NOW, POLICY, THRESHOLDS) is None and task_refusal(task, node) is None


def _replay(tasks: list[Task], nodes: list[Node], result: DispatchPlan) -> None:
    """Check each assignment against the loads at the moment it was made."""
    by_task = {t.id: t for t in tasks}
    by_node = {n.id: n for n in nodes}
    load = {n.id: len(n.current_tasks) for n in nodes}
    for assignment in result.assignments:
        task, node = by_task[assignment.task_id], by_node[assignment.node_id]
        assert _eligible(task, node)
        assert node.capacity is None or load[node.id] < node.capacity
        load[node.id] += 1


@pytest.mark.parametrize("strategy", list(DispatchStrategy))
@given(tasks=tasks_strategy, nodes=nodes_strategy, seed=st.integers(0, 2**32))
def test_every_strategy_picks_only_eligible_nodes_within_capacity(
    strategy: DispatchStrategy, tasks: list[Task], nodes: list[Node], seed: int
) -> None:
    result = assign_batch(
        tasks,
        nodes,
        strategy=strategy,
        now=NOW,
        policy=POLICY,
        rng=random.Random(seed),
        thresholds=THRESHOLDS,
    )
    _replay(tasks, nodes, result)
    assert {a.task_id for a in result.assignments} | set(result.pending) == {t.id for t in tasks}
    assert not {a.task_id for a in result.assignments} & set(result.pending)


@given(tasks=tasks_strategy, nodes=nodes_strategy)
def test_least_tasks_never_picks_a_node_busier_than_another_eligible_one(
    tasks: list[Task], nodes: list[Node]
) -> None:
    result = assign_batch(
        tasks, nodes, strategy=DispatchStrategy.LEAST_TASKS, now=NOW, policy=POLICY,
        rng=random.Random(0), thresholds=THRESHOLDS,
    )  # fmt: skip
    by_task = {t.id: t for t in tasks}
    load = {n.id: len(n.current_tasks) for n in nodes}
    for assignment in result.assignments:
        task = by_task[assignment.task_id]
        free = [n for n in nodes if _eligible(task, n) and (n.capacity is None or load[n.id] < n.capacity)]
        assert load[assignment.node_id] == min(load[n.id] for n in free)
        load[assignment.node_id] += 1


@given(task_count=st.integers(0, 60), node_count=st.integers(1, 8), start=st.integers(0, 9))
def test_round_robin_keeps_counts_within_one_across_equal_nodes(
    task_count: int, node_count: int, start: int
) -> None:
    nodes = [a_node(f"n{i}") for i in range(node_count)]
    tasks = [a_task(f"t{i:03d}") for i in range(task_count)]
    result = plan(tasks, nodes, DispatchStrategy.ROUND_ROBIN, cursor=f"n{start}")
    counts = Counter(a.node_id for a in result.assignments)
    spread = [counts.get(n.id, 0) for n in nodes]
    assert max(spread) - min(spread) <= 1


@given(tasks=tasks_strategy, nodes=nodes_strategy, seed=st.integers(0, 2**32))
def test_random_with_a_seeded_generator_is_reproducible(
    tasks: list[Task], nodes: list[Node], seed: int
) -> None:
    def once() -> DispatchPlan:
        return assign_batch(
            tasks, nodes, strategy=DispatchStrategy.RANDOM, now=NOW, policy=POLICY, rng=random.Random(seed)
        )

    assert once() == once()


@given(tasks=tasks_strategy, nodes=nodes_strategy)
def test_a_lower_priority_task_never_takes_a_slot_a_higher_one_could_use(
    tasks: list[Task], nodes: list[Node]
) -> None:
    result = plan(tasks, nodes, thresholds=THRESHOLDS)
    by_task = {t.id: t for t in tasks}
    assigned = [by_task[a.task_id] for a in result.assignments]
    for waiting in (by_task[tid] for tid in result.pending):
        for taken in assigned:
            if taken.class_name == waiting.class_name:
                assert (taken.priority, -taken.create_date_time) >= (
                    waiting.priority,
                    -waiting.create_date_time,
                )


def test_a_queued_task_that_names_its_executor_waits_for_that_node() -> None:
    """Upstream's clients write ``executor`` into a task they want run on one node; upstream ran it there
    only. Our own queued tasks never name one (a requeue forgets it)."""
    pinned = [dataclasses.replace(a_task(f"p{i}"), executor="n2") for i in range(3)]
    free = a_task("free")
    result = plan([*pinned, free], [a_node("n1", capacity=5), a_node("n2", capacity=2)])
    placed = {a.task_id: a.node_id for a in result.assignments}
    assert [placed.get(t.id) for t in pinned].count("n2") == 2 and "n1" not in {
        placed.get(t.id) for t in pinned
    }
    assert placed["free"] == "n1"
    [waiting] = [t.id for t in pinned if t.id not in placed]
    assert "at capacity" in result.pending[waiting] and "not 'n2', the executor" in result.pending[waiting]
    offline = plan(pinned[:1], [a_node("n1"), a_node("n2", now=NOW - 40_000)])
    assert offline.assignments == () and "not 'n2', the executor the task names" in offline.pending["p0"]
    unknown = plan(pinned[:1], [a_node("n1")])  # a name no node has, say a stale one: it pins nothing
    assert [(a.task_id, a.node_id) for a in unknown.assignments] == [("p0", "n1")]
