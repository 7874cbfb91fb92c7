"""Settings, from TRADEWIRE_* environment variables. Read once, frozen, handed out in slices."""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PaperSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    fee_bps: Decimal = Decimal(0)
    slippage_bps: Decimal = Decimal(0)


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
    worker_poll_ms: int = Field(default=250, gt=0)
    paper: PaperSettings = PaperSettings()

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


def load() -> Settings:
    return Settings()
