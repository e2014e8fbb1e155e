"""Derived state in Redis that notices when it was lost, and gets rebuilt from the log.

Redis can lose writes: a flush, a restart without its append-only file, a failover to a replica that
missed the last writes. A service's state in Redis (the policy's book, the notification ledger)
therefore carries, under its own family of keys:

    <family>:generation   which complete copy of the state this is (written last by a rebuild)
    <family>:fence        held by a rebuild: no script runs meanwhile, in any replica
    <family>:version      raised by every write, so a Redis that went back in time is noticed

Every script of the state starts with `guard_lua(family)`: it refuses (an error reply starting with
the family's name) a fenced state, a state whose generation is not the one the process holds (gone:
the data was lost; another one: it was rebuilt), or whose version is below one the process has
seen. `StateGuard` runs scripts with those arguments and turns a refusal into `StateLost`, a
transient fault: the batch waits, `Recovery` adopts the new copy or rebuilds one, and it resumes.
Small writes that need no rule of their own (keep an event, mark it published, drop a queue entry)
go through `StateGuard.write`: one guarded script for every family.

With a replica (`Durability`, `CW_REDIS_MIN_REPLICAS`), a script whose writes are about to be
published runs `durable`: in one pipeline (one connection, since WAIT counts that connection's
writes, and replication keeps their order so the earlier writes of the batch are covered too) with
`WAIT <replicas> <timeout>` after it. Fewer replicas than asked means the write may not survive a
failover: `NotDurable`, a transient fault, so the batch is retried and nothing of it is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError

from shared.messaging.health import ServiceHealth
from shared.messaging.retries import is_transient
from shared.redis_connection import text
from shared.settings import Settings

__all__ = ["FENCE_TTL_MS", "Durability", "NotDurable", "Recovery", "StateGuard", "StateLost", "guard_lua"]

log = structlog.get_logger("creditwindow.state")
FENCE_TTL_MS = 30_000


class StateLost(ConnectionError):
    """The state in Redis cannot be used now: it was lost, or it is being rebuilt. Wait, then retry."""


class NotDurable(ConnectionError):
    """A write reached fewer replicas than asked in time: it may not survive a failover. Retry the batch."""


@dataclass(frozen=True, slots=True)
class Durability:
    """How many replicas a write must reach (WAIT) before what depends on it is published; 0: no WAIT."""

    replicas: int = 0
    timeout_ms: int = 1_000

    @classmethod
    def of(cls, settings: Settings) -> Durability:
        return cls(settings.redis_min_replicas, settings.redis_wait_timeout_ms)


def guard_lua(family: str) -> str:
    """The first lines of every script of `family`. ARGV: 1 prefix, 2 the script's argument, 3 the
    generation the process holds, 4 the highest version it has seen. Defines `P` and `version`."""
    return f"""
local P = ARGV[1]
if redis.call('EXISTS', P .. '{family}:fence') == 1 then return redis.error_reply('{family.upper()} fenced') end
local generation = redis.call('GET', P .. '{family}:generation')
if generation ~= ARGV[3] then return redis.error_reply('{family.upper()} generation ' .. tostring(generation)) end
if tonumber(redis.call('GET', P .. '{family}:version') or '0') < tonumber(ARGV[4]) then
  return redis.error_reply('{family.upper()} behind')
end
local version = redis.call('INCR', P .. '{family}:version')
"""


# ARGV 2: a JSON array of [command, key suffix, args...], applied in order under the prefix. Reply: the version.
_WRITE = r"""
for _, op in ipairs(cjson.decode(ARGV[2])) do
  local args = {}
  for i = 3, #op do args[#args + 1] = op[i] end
  redis.call(op[1], P .. op[2], unpack(args))
end
return version
"""


class StateGuard:
    """Which copy of a family's state this process works on, and the scripts run against it."""

    def __init__(self, redis: Redis, prefix: str, family: str, durability: Durability = Durability()) -> None:
        self.redis = redis
        self.prefix = prefix
        self.family = family
        self.durability = durability
        self.generation = ""
        self.version = 0
        self.on_lost: Callable[[str], None] | None = None
        self._write = redis.register_script(guard_lua(family) + _WRITE)

    def _key(self, name: str) -> str:
        return f"{self.prefix}{self.family}:{name}"

    async def run(self, script: Any, body: bytes | str, *, durable: bool = False) -> Any:
        """Run a guarded script (loading it again if Redis lost it); a refusal raises `StateLost`.

        `durable`: its writes (and every earlier write) reached the replicas `durability` asks for, else
        `NotDurable`. Without replicas to wait for it is an ordinary run."""
        held = self.generation
        args = (self.prefix, body, held, self.version)
        call = self._durably if durable and self.durability.replicas else self._plainly
        try:
            try:
                reply = await call(script.sha, args)
            except NoScriptError:  # a restarted or promoted Redis has no scripts loaded
                await self.redis.script_load(script.script)
                reply = await call(script.sha, args)
        except ResponseError as exc:
            if not str(exc).startswith(self.family.upper()):
                raise
            if self.on_lost is not None:
                self.on_lost(str(exc))
            raise StateLost(f"the {self.family} state cannot be used: {exc}") from exc
        if self.generation != held:
            # The process moved to a rebuilt copy while this ran on the old one: do it again there.
            raise StateLost(f"the {self.family} state was rebuilt while a script ran")
        return reply

    async def write(self, ops: list[list[Any]], *, durable: bool = False) -> None:
        """Apply small writes (`[command, key suffix, args...]`, e.g. `["HSET", "notice:<id>", "published", "1"]`)
        to the copy this process holds, atomically, or refuse them as any script of the family would.

        `durable`: return once they (and every earlier write) reached the replicas `durability` asks for;
        then it runs even with nothing to write, since what is published next rests on the earlier writes."""
        if ops or (durable and self.durability.replicas):
            self.seen(await self.run(self._write, orjson.dumps(ops), durable=durable))

    async def _plainly(self, sha: str, args: tuple[Any, ...]) -> Any:
        return await self.redis.evalsha(sha, 0, *args)

    async def _durably(self, sha: str, args: tuple[Any, ...]) -> Any:
        pipe = self.redis.pipeline(transaction=False)  # one connection: WAIT counts its writes
        pipe.evalsha(sha, 0, *args)
        pipe.wait(self.durability.replicas, self.durability.timeout_ms)
        reply, acked = await pipe.execute(raise_on_error=False)
        for answer in (reply, acked):
            if isinstance(answer, BaseException):
                raise answer
        if int(acked) < self.durability.replicas:
            raise NotDurable(
                f"the {self.family} write reached {acked} of {self.durability.replicas} replicas "
                f"in {self.durability.timeout_ms} ms: not published, retried"
            )
        return reply

    async def verify(self) -> bool:
        """Check, without writing, that the copy in Redis is still the one this process works on;
        when it is not, say so (`on_lost`) as a refused script would. Run it periodically: a process
        with nothing to write would otherwise notice a loss only at its next write."""
        # What this process has seen so far, taken before asking: a write of its own that lands while
        # the answer travels must not make Redis look behind.
        held, seen = self.generation, self.version
        generation, version = await self.redis.mget(self._key("generation"), self._key("version"))
        generation = text(generation) or None
        if generation is None or generation != held:
            problem = f"{self.family.upper()} generation {generation}"
        elif int(text(version) or 0) < seen:
            problem = f"{self.family.upper()} behind"
        else:
            return True
        if self.on_lost is not None:
            self.on_lost(problem)
        return False

    def seen(self, version: Any) -> None:
        self.version = max(self.version, int(version))

    async def current(self) -> str | None:
        """The generation of the complete copy in Redis (None: there is none)."""
        return text(await self.redis.get(self._key("generation"))) or None

    async def fenced(self) -> bool:
        return bool(await self.redis.exists(self._key("fence")))

    def adopt(self, generation: str) -> None:
        """Work on this copy from now on."""
        self.generation = generation
        self.version = 0

    async def fence(self, owner: str) -> bool:
        """Take the fence (no script runs while it is held); False when someone else holds it."""
        return bool(await self.redis.set(self._key("fence"), owner, nx=True, px=FENCE_TTL_MS))

    async def keep_fence(self, owner: str) -> bool:
        if text(await self.redis.get(self._key("fence"))) != owner:
            return False
        return bool(await self.redis.pexpire(self._key("fence"), FENCE_TTL_MS))

    async def unfence(self, owner: str) -> None:
        if text(await self.redis.get(self._key("fence"))) == owner:
            await self.redis.delete(self._key("fence"))

    async def retire(self) -> None:
        """Forget the generation (under the fence): nobody uses this copy until a new one is installed."""
        await self.redis.delete(self._key("generation"))

    def mark_complete(self, pipe: Pipeline, generation: str) -> None:
        """The last writes of an installed copy: a fresh version, then its generation."""
        pipe.set(self._key("version"), 1)
        pipe.set(self._key("generation"), generation)

    async def under_fence(self, owner: str, work: Callable[[], Awaitable[str]]) -> str | None:
        """Run `work` (a rebuild that returns the new generation) holding the fence; None if it is taken."""
        if not await self.fence(owner):
            return None

        async def keep() -> None:
            while await self.keep_fence(owner):
                await asyncio.sleep(FENCE_TTL_MS / 3000)
            log.error("state_fence_lost", family=self.family, owner=owner)

        keeper = asyncio.create_task(keep())
        try:
            await self.retire()
            generation = await work()
            self.adopt(generation)
            return generation
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self.unfence(owner)


class Recovery:
    """Gets this process a copy of the state to work on: at start, and whenever a script refused it.

    It adopts the complete copy in Redis when there is one (not fenced, and not behind), or rebuilds
    one under the fence (`rebuild(generation)` writes a new copy and marks it complete). While it
    works, `health` says the part is not ready.
    """

    def __init__(
        self, guard: StateGuard, health: ServiceHealth, rebuild: Callable[[str], Awaitable[None]], *, owner: str = ""
    ) -> None:
        self.guard = guard
        self.health = health
        self.rebuild = rebuild
        self.part = guard.family
        self.owner = f"{owner or guard.family}-{uuid.uuid4().hex[:8]}"
        self.rebuilt = 0
        self._task: asyncio.Task[None] | None = None
        self._force = False
        guard.on_lost = self.trigger

    def trigger(self, why: str) -> None:
        """Recover in the background (once at a time)."""
        self.health.report(self.part, f"{why}: recovering from the log")
        # A copy that went back in time keeps its generation: it must be rebuilt, not adopted.
        self._force = self._force or "behind" in why
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.recover(), name=f"{self.part}-recovery")

    async def recover(self) -> None:
        """Returns when this process has a complete copy to work on."""
        delay = 0.2
        while True:
            try:
                generation = await self.guard.current()
                if generation and not self._force and not await self.guard.fenced():
                    self.guard.adopt(generation)
                    self.health.report(self.part, None)
                    log.info("state_adopted", family=self.part, generation=generation)
                    return
                self.health.report(self.part, f"the {self.part} state is being rebuilt from the log")
                if await self.guard.under_fence(self.owner, self._rebuild) is not None:
                    self._force = False
                    self.health.report(self.part, None)
                    return
                await asyncio.sleep(0.5)  # another replica rebuilds: adopt its copy when it is done
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the broker away: try again, not faster than backoff
                log.warning("state_recovery_retrying", family=self.part, error=repr(exc)[:300], transient=is_transient(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _rebuild(self) -> str:
        generation = uuid.uuid4().hex
        await self.rebuild(generation)
        self.rebuilt += 1
        return generation

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
