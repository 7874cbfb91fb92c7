"""argon2id's cost for passwords: RFC 9106's second profile unless configured; a hash made
under one cost verifies under any other (each hash carries its own)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradewire.adapters.security import SecretBox
from tradewire.config import PasswordHashSettings, Settings

KEY = b"k" * 32


def test_the_default_cost_is_three_passes_over_64_mib_in_four_lanes() -> None:
    assert SecretBox(KEY).hash_password("pw").startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert Settings().password_hash == PasswordHashSettings(
        time_cost=3, memory_kib=65_536, parallelism=4)


def test_the_cost_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIRE_PASSWORD_HASH__TIME_COST", "2")
    monkeypatch.setenv("TRADEWIRE_PASSWORD_HASH__MEMORY_KIB", "19456")
    monkeypatch.setenv("TRADEWIRE_PASSWORD_HASH__PARALLELISM", "1")
    box = SecretBox(KEY, **Settings().password_hash.model_dump())
    assert box.hash_password("pw").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_hash_made_under_one_cost_verifies_under_another() -> None:
    strong, cheap = SecretBox(KEY), SecretBox(KEY, time_cost=1, memory_kib=8, parallelism=1)
    assert cheap.verify_password(strong.hash_password("s3cret"), "s3cret")
    assert strong.verify_password(cheap.hash_password("s3cret"), "s3cret")
    assert not strong.verify_password(cheap.hash_password("s3cret"), "S3cret")


@pytest.mark.parametrize("cost", [{"time_cost": 0}, {"memory_kib": 4}, {"parallelism": 0},
                                  {"memory_kib": 16, "parallelism": 4}])
def test_a_cost_argon2_cannot_run_is_refused_at_start(cost: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        PasswordHashSettings(**cost)
