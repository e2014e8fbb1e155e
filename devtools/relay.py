"""The benchmark's baseline: a bare aiokafka relay hop, run as its own process.

It does what a fleet service does minus the logic: consume a batch (same batch size and wait),
publish one record per input with the same key and a payload of the size the fleet's service
writes on that hop, wait for the broker's acks, then commit the batch's offsets.

    python -m devtools.relay --source T1 --sink T2 --group G --size 1500
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.messaging import aiokafka_kwargs
from shared.settings import Settings

__all__ = ["relay"]


async def relay(source: str, sink: str, group: str, size: int, settings: Settings) -> None:
    kafka = aiokafka_kwargs(settings)
    consumer = AIOKafkaConsumer(
        source,
        **kafka,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
    )
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=settings.producer_linger_ms, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    pending: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=settings.batch_timeout_ms, max_records=settings.batch_max_records)
            futures = []
            for records in batches.values():
                for record in records:
                    value = record.value or b""
                    payload = value[:size] if len(value) >= size else value + b" " * (size - len(value))
                    futures.append(await producer.send(sink, payload, key=record.key, headers=list(record.headers)))
            if futures:
                await asyncio.gather(*futures)
                # the fleet's commit semantics: after the outputs are acknowledged, explicit offsets,
                # in the background (see shared.messaging.commit_in_background)
                offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
                task = asyncio.create_task(consumer.commit(offsets))
                pending.add(task)
                task.add_done_callback(pending.discard)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(relay(args.source, args.sink, args.group, args.size, Settings()))


if __name__ == "__main__":
    main()
