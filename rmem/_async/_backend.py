"""The connection to Redis: runs scripts and commands, turns redis-py errors into rmem's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from rmem._errors import from_redis_error
from rmem._lua import Script
from rmem._settings import Settings, redacted

Arg = str | bytes | int | float


class AsyncBackend:
    """One connection pool to one Redis, shared by a client and its namespace views.

    redis-py's own retries are off: a blind retry of a non-idempotent script (``pop``) could
    apply it twice. Callers retry only what is safe to repeat.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = redacted(settings.url)
        no_retry = Retry(NoBackoff(), 0)
        pool = BlockingConnectionPool.from_url(
            settings.url,
            max_connections=settings.pool_size,
            timeout=settings.pool_timeout,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            retry=no_retry,
        )
        kwargs = pool.connection_kwargs
        self.where = str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")
        self.redis = Redis(connection_pool=pool, retry=no_retry)

    async def run(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Arg],
        *,
        namespace: str | None = None,
        session: str | None = None,
    ) -> Any:
        """Run ``script`` with EVALSHA, loading it once if the server does not know it yet."""
        try:
            try:
                return await self.redis.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *args
                )
            except NoScriptError:
                await self.redis.execute_command("SCRIPT", "LOAD", script.source)
                return await self.redis.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *args
                )
        except (RedisError, OSError) as exc:
            raise from_redis_error(
                exc, self.where, namespace=namespace, session=session, key=keys[0]
            ) from exc

    async def call(self, *command: Arg, namespace: str | None = None) -> Any:
        """Run one plain Redis command."""
        try:
            return await self.redis.execute_command(*command)
        except (RedisError, OSError) as exc:
            raise from_redis_error(exc, self.where, namespace=namespace) from exc

    async def batch(
        self, commands: Sequence[Sequence[Arg]], *, namespace: str | None = None
    ) -> list[Any]:
        """Run many plain commands in one pipeline (one round trip, no transaction)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())
        except (RedisError, OSError) as exc:
            raise from_redis_error(exc, self.where, namespace=namespace) from exc

    async def aclose(self) -> None:
        """Close every connection of the pool."""
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
