"""Settings, from TRADEWIRE_* environment variables. Read once, frozen, handed out in slices."""

from __future__ import annotations

import base64
import secrets
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tradewire.adapters.notify import NotificationSettings


class PaperSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    fee_bps: Decimal = Decimal(0)
    slippage_bps: Decimal = Decimal(0)
    # Exit plans rest their stop (and take-profit) as orders here; false simulates a venue
    # without such orders, so every exit is emulated by the trigger engine.
    native_exits: bool = True


class PasswordHashSettings(BaseModel):
    """argon2id's cost for user passwords (RFC 9106's second recommended profile by default:
    three passes over 64 MiB, four lanes). A small machine may lower it; hashes made under
    other costs still verify, since each hash carries its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    time_cost: int = Field(default=3, ge=1)
    memory_kib: int = Field(default=65_536, ge=8)
    parallelism: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _enough_memory(self) -> PasswordHashSettings:
        if self.memory_kib < 8 * self.parallelism:  # argon2's own floor
            raise ValueError("memory_kib must be at least 8 per lane (8 x parallelism)")
        return self


class MarketDataSettings(BaseModel):
    """Where bars come from, asked in order: `db`, `csv:FOLDER`, `ccxt:EXCHANGE`, `alpaca`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sources: str = "db"
    alpaca_key_id: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    alpaca_base_url: str | None = None  # another address for Alpaca's data API
    ccxt_base_url: str | None = None  # another address for the exchange's public API

    def source_list(self) -> list[tuple[str, str]]:
        out = []
        for item in self.sources.split(","):
            kind, _, arg = item.strip().partition(":")
            if kind:
                out.append((kind, arg.strip()))
        return out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRADEWIRE_", env_nested_delimiter="__",
                                       frozen=True, extra="forbid")

    data_dir: Path = Path(".tradewire")
    database_url: str | None = None
    secret_key: SecretStr | None = None
    signals_enabled: bool = True
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # Named crash points for the reliability tests (comma separated); never set in production.
    failpoints: str = ""
    max_in_flight: int = Field(default=32, gt=0)  # more signal requests at once get 503
    # Requests per minute per credential (a burst of this many, refilled evenly); 0: no limit.
    rate_limit_per_minute: int = Field(default=6000, ge=0)
    worker_poll_ms: int = Field(default=250, gt=0)
    # On a SQLite file, `serve` and `api` store waiting signals from a writer process of their
    # own (entrypoints/api/writer_process.py); false: all in the API process.
    writer_process: bool = True
    paper: PaperSettings = PaperSettings()
    market_data: MarketDataSettings = MarketDataSettings()
    # When set, /metrics asks for `Authorization: Bearer <token>`; unset, it is open.
    metrics_token: SecretStr | None = None
    notifications: NotificationSettings = NotificationSettings()
    log_format: str = Field(default="json", pattern="^(json|text)$")  # how serve/api/worker log
    # Fernet keys sealing broker credentials, comma separated, the first one sealing. Unset:
    # the keys file in the data dir (created on first use, 0600), which rotation rewrites.
    credential_keys: SecretStr | None = None
    password_hash: PasswordHashSettings = PasswordHashSettings()

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'tradewire.db').resolve()}"

    def resolved_secret_key(self) -> bytes:
        """The configured key, or one generated into the data dir on first start (0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


    @property
    def credential_keys_file(self) -> Path:
        return self.data_dir / "credentials.keys"

    def resolved_credential_keys(self) -> list[bytes]:
        """The configured keys, or the keys file's (one per line, the first sealing)."""
        if self.credential_keys is not None:
            raw = self.credential_keys.get_secret_value().split(",")
        else:
            path = self.credential_keys_file
            if not path.exists():
                self.data_dir.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o600)
                path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
            raw = path.read_text().splitlines()
        return [k.strip().encode() for k in raw if k.strip()]


def load() -> Settings:
    return Settings()
