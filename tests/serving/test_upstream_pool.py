"""Picking, ejection, affinity and membership of an upstream pool (no traffic: the pool's own rules)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.errors import EngineUnavailableError, InvalidSpecError
from core.model_config import ModelConfig, UpstreamConfig
from serving.settings import UpstreamSettings
from serving.upstream.members import MembersWatcher
from serving.upstream.pool import UpstreamPool

URLS = ("http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1", "http://127.0.0.1:8003/v1")


def _pool(**settings: object) -> UpstreamPool:
    return UpstreamPool("m", "m", UpstreamSettings(**settings), [UpstreamConfig(url=u) for u in URLS])  # type: ignore[arg-type]


def test_the_member_with_fewest_outstanding_requests_is_picked() -> None:
    pool = _pool()
    first, second, third = pool.members()
    first.outstanding, second.outstanding, third.outstanding = 3, 1, 2
    assert pool.pick(None) is second
    assert pool.pick(None, exclude=[second]) is third
    second.outstanding = third.outstanding = 3
    assert {pool.pick(None).url for _ in range(200)} == set(URLS)  # ties shared at random


def test_failures_in_a_row_eject_for_the_cool_down_then_one_more_ejects_again() -> None:
    pool = _pool(eject_after_failures=2, cooldown_s=0.2)
    member = pool.members()[0]
    pool.failed(member, "boom")
    assert member.state(time.monotonic()) == "up"
    pool.failed(member, "boom")
    assert member.state(time.monotonic()) == "ejected" and member.ejections == 1
    assert all(pool.pick(None) is not member for _ in range(50))
    time.sleep(0.25)
    assert member.state(time.monotonic()) == "up"
    pool.failed(member, "again")
    assert member.state(time.monotonic()) == "ejected" and member.ejections == 2
    pool.succeeded(pool.members()[1])
    rate_limited = pool.members()[2]
    for _ in range(5):
        pool.failed(rate_limited, "429", counts=False)
    assert rate_limited.state(time.monotonic()) == "up" and rate_limited.errors == 5


def test_no_member_up_is_unavailable() -> None:
    pool = _pool()
    for member in pool.members():
        member.healthy = False
    with pytest.raises(EngineUnavailableError, match="down"):
        pool.pick(None)
    assert not pool.ready()


def test_affinity_is_stable_and_moves_only_the_sessions_of_a_member_that_left() -> None:
    pool = _pool(affinity=True)
    sessions = [f"user-{i}" for i in range(60)]
    before = {s: pool.pick(s).url for s in sessions}
    assert len(set(before.values())) == 3
    assert pool.remove(URLS[0]) and not pool.remove(URLS[0])
    after = {s: pool.pick(s).url for s in sessions}
    assert all(after[s] == before[s] for s in sessions if before[s] != URLS[0])


def test_admin_members_replace_by_url_and_a_bad_url_is_refused() -> None:
    pool = _pool()
    pool.add("http://10.0.0.9:8000/v1/", "big-model")
    pool.add("http://10.0.0.9:8000/v1", "bigger-model")
    admin = [s for s in pool.states() if s.source == "admin"]
    assert [(s.url, s.model) for s in admin] == [("http://10.0.0.9:8000/v1", "bigger-model")]
    with pytest.raises(ValueError):
        pool.add("ftp://10.0.0.9/v1")


def test_a_missing_key_variable_fails_at_start_for_configured_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(InvalidSpecError, match="NO_SUCH_KEY"):
        UpstreamPool("m", "m", UpstreamSettings(), [UpstreamConfig(url=URLS[0], api_key_env="NO_SUCH_KEY")])


def test_members_folder_and_file_forms(tmp_path: Path) -> None:
    folder = tmp_path / "members"
    watcher = MembersWatcher(folder)
    assert watcher.poll() == []  # no folder yet: no members
    folder.mkdir()
    (folder / "a.url").write_text(URLS[0])
    (folder / "b.yaml").write_text(f"{{url: '{URLS[1]}', model: other}}")
    (folder / ".c.tmp").write_text(URLS[2])  # being written: not read
    (folder / "bad.yaml").write_text("{url: 'ftp://nope'}")  # invalid: left out, the rest kept
    members = watcher.poll()
    assert members is not None and [(m.url, m.model) for m in members] == [
        (URLS[0], None),
        (URLS[1], "other"),
    ]
    assert watcher.poll() is None  # unchanged
    listing = tmp_path / "members.yaml"
    listing.write_text(f"- {URLS[0]}\n- url: {URLS[2]}\n")
    file_members = MembersWatcher(listing).poll()
    assert file_members is not None and [m.url for m in file_members] == [URLS[0], URLS[2]]
    listing.write_text("- [unterminated")
    assert MembersWatcher(listing).poll() is None  # unreadable: keep what we have


def test_model_config_rules_for_upstreams() -> None:
    with pytest.raises(ValueError, match="needs `upstreams`"):
        ModelConfig(id="m", engine="openai")
    with pytest.raises(ValueError, match="belong to engine openai"):
        ModelConfig(id="m", engine="vllm", ref="models/m", upstreams=[UpstreamConfig(url=URLS[0])])
    with pytest.raises(ValueError, match="not both"):
        UpstreamConfig(url=URLS[0], api_key_env="A", api_key_file=Path("/k"))
    assert (
        ModelConfig(id="site-b/*", engine="openai", upstreams_from=Path("/m")).federation_prefix == "site-b/"
    )
