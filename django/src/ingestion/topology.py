"""Names and arguments of the broker topology (docs/contract.md, Topology).

In production the Rust ``ingestctl topology apply`` owns the declaration, and
the publisher only checks passively that the exchange exists. Tests and local
set-ups declare it with :func:`declare_topology`, whose arguments must equal
the Rust side's exactly: RabbitMQ refuses a redeclaration with other arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Delay tiers in order, with their message TTL in milliseconds.
DELAY_TIERS: tuple[tuple[str, int], ...] = (
    ("5s", 5_000),
    ("30s", 30_000),
    ("2m", 120_000),
    ("10m", 600_000),
)

#: Routing key of the work queue's binding, and the key jobs are published with.
JOBS_ROUTING_KEY = "jobs"

#: Routing key of the dead-letter queue's binding.
DEAD_ROUTING_KEY = "dead"


@dataclass(frozen=True)
class Topology:
    """The names of every broker object for one prefix."""

    #: Prefix of every name (empty by default).
    prefix: str = ""

    @property
    def exchange(self) -> str:
        """The direct exchange ``<p>ingest``."""
        return f"{self.prefix}ingest"

    @property
    def work_queue(self) -> str:
        """The work queue ``<p>ingest.jobs``."""
        return f"{self.prefix}ingest.jobs"

    @property
    def dead_queue(self) -> str:
        """The dead-letter queue ``<p>ingest.dead``."""
        return f"{self.prefix}ingest.dead"

    def delay_queue(self, tier: str) -> str:
        """Return the name of delay queue ``<p>ingest.delay.<tier>``."""
        return f"{self.prefix}ingest.delay.{tier}"

    @property
    def queues(self) -> list[str]:
        """Every queue: work, delay tiers in order, then dead letters."""
        return [
            self.work_queue,
            *(self.delay_queue(tier) for tier, _ in DELAY_TIERS),
            self.dead_queue,
        ]


def declare_topology(channel: Any, prefix: str = "") -> Topology:
    """Declare the exchange, queues and bindings for ``prefix`` on a pika channel.

    Idempotent while the arguments match what exists. Production code leaves
    this to ``ingestctl topology apply``.
    """
    topology = Topology(prefix)
    channel.exchange_declare(exchange=topology.exchange, exchange_type="direct", durable=True)

    channel.queue_declare(
        queue=topology.work_queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": topology.exchange,
            "x-dead-letter-routing-key": DEAD_ROUTING_KEY,
        },
    )
    channel.queue_bind(topology.work_queue, topology.exchange, routing_key=JOBS_ROUTING_KEY)

    channel.queue_declare(
        queue=topology.dead_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    channel.queue_bind(topology.dead_queue, topology.exchange, routing_key=DEAD_ROUTING_KEY)

    for tier, ttl_ms in DELAY_TIERS:
        channel.queue_declare(
            queue=topology.delay_queue(tier),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": ttl_ms,
                "x-dead-letter-exchange": topology.exchange,
                "x-dead-letter-routing-key": JOBS_ROUTING_KEY,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        channel.queue_bind(
            topology.delay_queue(tier), topology.exchange, routing_key=f"delay.{tier}"
        )
    return topology


def delete_topology(channel: Any, prefix: str) -> None:
    """Delete every queue and the exchange for ``prefix``; missing objects are fine.

    Meant for tests that gave themselves a prefix of their own.
    """
    topology = Topology(prefix)
    for queue in topology.queues:
        channel.queue_delete(queue=queue)
    channel.exchange_delete(exchange=topology.exchange)
