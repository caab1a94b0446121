"""The upstreams behind one configured id: picking one, health, ejection and membership.

Members come from three sources: the config (``upstreams``), a watched file or folder
(``upstreams_from``) and the admin API. Picking takes the member with the fewest outstanding requests
among those that are up (ties at random, so equal members share the load), or, with affinity, the one a
rendezvous hash of the session picks (stable when other members come and go).

A member is ``down`` while its active health check fails, and ``ejected`` for ``cooldown_s`` after
``eject_after_failures`` failures in a row; when the cool-down ends it gets traffic again, and one more
failure ejects it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from core.engine import ReplicaState
from core.errors import EngineUnavailableError, InvalidSpecError
from core.model_config import UpstreamConfig
from serving.settings import UpstreamSettings
from serving.upstream.http_client import OriginClient, UpstreamConnectionError, UpstreamTimeout
from serving.upstream.members import MembersWatcher

logger = logging.getLogger(__name__)


def api_key(config: UpstreamConfig) -> str | None:
    """The key from its environment variable or file (never from the config itself, never logged)."""
    if config.api_key_env:
        value = os.environ.get(config.api_key_env)
        if not value:
            raise InvalidSpecError(
                f"upstream {config.url}: environment variable {config.api_key_env} is not set"
            )
        return value
    if config.api_key_file:
        try:
            return Path(config.api_key_file).read_text().strip()
        except OSError as exc:
            raise InvalidSpecError(
                f"upstream {config.url}: cannot read its key file: {exc.strerror}"
            ) from None
    return None


@dataclass(eq=False, slots=True)
class Member:
    url: str
    model: str
    source: str
    client: OriginClient
    auth: bytes = field(default=b"", repr=False)  # the authorization header line, or nothing
    outstanding: int = 0
    requests: int = 0
    errors: int = 0
    ejections: int = 0
    failures_in_row: int = 0
    ejected_until: float = 0.0
    healthy: bool = True
    last_error: str | None = None
    listed: tuple[dict[str, object], ...] = ()  # the upstream's /models entries at the last check

    def state(self, now: float) -> str:
        if not self.healthy:  # said first: a failing health check is the stronger news
            return "down"
        return "ejected" if now < self.ejected_until else "up"


class UpstreamPool:
    def __init__(
        self,
        name: str,
        default_model: str,
        settings: UpstreamSettings,
        static: Sequence[UpstreamConfig] = (),
        members_path: Path | None = None,
    ) -> None:
        self._name = name
        self._default_model = default_model
        self.settings = settings
        self._members: list[Member] = []
        self._watcher = MembersWatcher(members_path) if members_path is not None else None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closing: set[asyncio.Task[None]] = set()
        self._set_source("config", static, strict=True)

    # --- membership ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    def _member(self, config: UpstreamConfig, source: str) -> Member:
        key = api_key(config)
        auth = b"authorization: Bearer %s\r\n" % key.encode() if key else b""
        client = OriginClient(
            config.url,
            connect_timeout=self.settings.connect_timeout_s,
            max_idle=self.settings.max_idle_connections,
        )
        return Member(config.url, config.model or self._default_model, source, client, auth)

    def _set_source(self, source: str, configs: Iterable[UpstreamConfig], *, strict: bool = False) -> None:
        """Members of ``source`` become ``configs``; unchanged ones keep their state and connections."""
        current = {(m.url, m.model): m for m in self._members if m.source == source}
        wanted: list[Member] = []
        for config in configs:
            key = (config.url, config.model or self._default_model)
            if key in current:
                wanted.append(current.pop(key))
                continue
            try:
                wanted.append(self._member(config, source))
            except InvalidSpecError as exc:
                if strict:
                    raise
                logger.error("%s: member %s left out: %s", self._name, config.url, exc.message)
                continue
            logger.info("%s: upstream %s joined (%s)", self._name, config.url, source)
        for gone in current.values():
            logger.info("%s: upstream %s left (%s)", self._name, gone.url, source)
            self._close_soon(gone.client)
        self._members = [m for m in self._members if m.source != source] + wanted

    def _close_soon(self, client: OriginClient) -> None:
        """Closes a leaving member's idle connections (in-flight requests finish on theirs)."""
        try:
            task = asyncio.get_running_loop().create_task(client.aclose())
        except RuntimeError:  # no loop yet (built before serving): nothing is open
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def add(self, url: str, model: str | None = None) -> None:
        config = UpstreamConfig(url=url, model=model)  # validates the URL
        admin = [UpstreamConfig(url=m.url, model=m.model) for m in self._members if m.source == "admin"]
        self._set_source("admin", [c for c in admin if c.url != config.url] + [config])

    def remove(self, url: str) -> bool:
        url = url.rstrip("/")
        gone = [m for m in self._members if m.url == url]
        for member in gone:
            logger.info("%s: upstream %s removed (%s)", self._name, url, member.source)
            self._close_soon(member.client)
        self._members = [m for m in self._members if m.url != url]
        return bool(gone)

    def members(self) -> list[Member]:
        return list(self._members)

    # --- picking and outcomes -----------------------------------------------------------------------

    def pick(self, session: str | None, exclude: Sequence[Member] = ()) -> Member:
        now = time.monotonic()
        candidates = [m for m in self._members if m.state(now) == "up" and m not in exclude]
        if not candidates:
            states = ", ".join(f"{m.url} {m.state(now)}" for m in self._members) or "no members"
            raise EngineUnavailableError(
                f"No upstream of '{self._name}' can take the request now ({states})."
            )
        if session is not None and self.settings.affinity:
            return max(candidates, key=lambda m: _rendezvous(session, m.url))
        least = min(m.outstanding for m in candidates)
        fewest = [m for m in candidates if m.outstanding == least]
        return fewest[0] if len(fewest) == 1 else random.choice(fewest)

    def succeeded(self, member: Member) -> None:
        member.requests += 1
        member.failures_in_row = 0

    def failed(self, member: Member, reason: str, *, counts: bool = True) -> None:
        """A failure of the upstream (not of the request); ``counts``: towards its ejection."""
        member.requests += 1
        member.errors += 1
        member.last_error = reason
        if not counts:
            return
        member.failures_in_row += 1
        if member.failures_in_row >= self.settings.eject_after_failures:
            member.ejected_until = time.monotonic() + self.settings.cooldown_s
            member.ejections += 1
            member.failures_in_row = self.settings.eject_after_failures - 1  # one more after the cool-down
            logger.warning(
                "%s: upstream %s ejected for %.0f s: %s",
                self._name,
                member.url,
                self.settings.cooldown_s,
                reason,
            )

    # --- state for /ready and /metrics ----------------------------------------------------------------

    def states(self) -> list[ReplicaState]:
        now = time.monotonic()
        return [
            ReplicaState(
                url=m.url,
                model=m.model,
                state=m.state(now),  # type: ignore[arg-type]
                source=m.source,
                outstanding=m.outstanding,
                requests=m.requests,
                errors=m.errors,
                ejections=m.ejections,
                last_error=m.last_error,
            )
            for m in self._members
        ]

    def ready(self) -> bool:
        now = time.monotonic()
        return any(m.state(now) == "up" for m in self._members)

    # --- background: health checks and the members file -------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._watcher is not None:
            self._reload_members()
            self._tasks.append(asyncio.create_task(self._watch_loop(), name=f"upstream-watch-{self._name}"))
        if self.settings.health_check != "off":
            await self.check_all()
            self._tasks.append(asyncio.create_task(self._health_loop(), name=f"upstream-health-{self._name}"))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._started = False
        for member in self._members:
            await member.client.aclose()

    def _reload_members(self) -> None:
        assert self._watcher is not None
        configs = self._watcher.poll()
        if configs is not None:
            self._set_source("file", configs)

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watch_interval_s)
            try:
                self._reload_members()
            except Exception:
                logger.exception("%s: reading the members of %s failed", self._name, self._watcher)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            await self.check_all()

    async def check_all(self) -> None:
        members = list(self._members)
        await asyncio.gather(*(self._check(m) for m in members), return_exceptions=True)

    async def _check(self, member: Member) -> None:
        models = self.settings.health_check == "models"
        try:
            response = await member.client.request(
                "GET",
                "/models" if models else "/health",
                headers=member.auth,
                read_timeout=self.settings.health_timeout_s,
                origin_path=not models,
            )
            try:
                body = await response.read(self.settings.health_timeout_s, limit=4 * 1024 * 1024)
            finally:
                response.release()
            healthy = response.status == 200
            if healthy and models:
                member.listed = tuple(d for d in orjson.loads(body).get("data", ()) if isinstance(d, dict))
            reason = None if healthy else f"health check answered {response.status}"
        except (UpstreamConnectionError, UpstreamTimeout, orjson.JSONDecodeError, AttributeError) as exc:
            healthy, reason = False, f"health check failed: {exc}"
        if healthy != member.healthy:
            logger.warning(
                "%s: upstream %s is %s%s",
                self._name,
                member.url,
                "up" if healthy else "down",
                f" ({reason})" if reason else "",
            )
        member.healthy = healthy
        if reason:
            member.last_error = reason

    def context_length(self) -> int | None:
        """The served model's ``max_model_len`` as an up member lists it (vLLM does), if any."""
        for member in self._members:
            for entry in member.listed:
                if entry.get("id") == member.model and isinstance(entry.get("max_model_len"), int):
                    return int(entry["max_model_len"])  # type: ignore[call-overload]
        return None


def _rendezvous(session: str, url: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{session}\0{url}".encode(), digest_size=8).digest(), "big")
