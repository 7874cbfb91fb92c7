"""The tables. Column names use the glossary: qty, filled_qty, avg_fill_price, *_at."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

from tradewire.adapters.db.types import ExactDecimal, UTCDateTime


def _where_set(table: str, column: str) -> Index:
    """An index of a mostly-empty column over the rows where it is set (migration 0017): the
    lookups are by equality, which implies it is set, and a row without one writes nothing
    to the index (an index page less in the commit of every signal or order)."""
    where = text(f"{column} IS NOT NULL")
    return Index(f"ix_{table}_{column}", column, sqlite_where=where, postgresql_where=where)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(36)

users = Table(
    "app_user", metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

accounts = Table(
    "account", metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("app_user.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("broker", String(50), nullable=False),
    Column("market", String(20), nullable=False),
    Column("starting_cash", ExactDecimal, nullable=False),
    Column("max_lag_s", Integer, nullable=True),  # refuse alerts older than this (None: off)
    Column("created_at", UTCDateTime, nullable=False),
)

broker_credentials = Table(
    "broker_credential", metadata,
    Column("account_id", ID, ForeignKey("account.id"), primary_key=True),
    Column("ciphertext", Text, nullable=False),  # Fernet token of the JSON keys; key outside the DB
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

account_risk = Table(
    "account_risk", metadata,
    Column("account_id", ID, ForeignKey("account.id"), primary_key=True),
    Column("limits", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The account's total realized P&L when a session began: today's loss is measured from it.
account_session_pnl = Table(
    "account_session_pnl", metadata,
    Column("account_id", ID, ForeignKey("account.id"), primary_key=True),
    Column("session", String(10), primary_key=True),  # the session's date, YYYY-MM-DD
    Column("realized_at_start", ExactDecimal, nullable=False),
)

api_keys = Table(
    "api_key", metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("app_user.id"), nullable=False, index=True),
    Column("prefix", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("account_ids", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

signals = Table(
    "signal", metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("account.id"), nullable=False),
    Column("source_id", String(255), nullable=True),
    # sourceId while the signal holds it; cleared when rejected or replaced (frees a retry).
    Column("dedup_key", String(255), nullable=True),
    Column("route", String(50), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("action", String(20), nullable=False),
    Column("execute_mode", String(20), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("quantity_type", String(20), nullable=False),
    Column("order_type", String(20), nullable=False),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("stop_price", ExactDecimal, nullable=True),
    Column("time_in_force", String(10), nullable=False),
    Column("extended_hours", Boolean, nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=True),
    Column("valid_until", UTCDateTime, nullable=True),
    Column("strategy_id", String(36), nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("exit_rule", JSON, nullable=True),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("replaced_by", ID, nullable=True),
    Column("after_signal_id", ID, nullable=True),
    Column("legs", JSON, nullable=True),  # further legs of a multi-leg signal
    Column("parent_id", ID, nullable=True),  # the partner signal it fans out from
    Column("link", String(10), nullable=True),  # how the legs are linked: oco or all
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("uq_signal_account_dedup", "account_id", "dedup_key", unique=True),
    Index("ix_signal_account_created", "account_id", "created_at"),
    Index("ix_signal_status", "status"),
    *(_where_set("signal", column) for column in ("after_signal_id", "parent_id")),
)

orders = Table(
    "trade_order", metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("account.id"), nullable=False),
    Column("signal_id", ID, ForeignKey("signal.id"), nullable=True, index=True),
    Column("client_order_id", String(48), nullable=False, unique=True),
    Column("broker_order_id", String(100), nullable=True),
    Column("symbol", String(20), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal, nullable=False),
    Column("order_type", String(20), nullable=False),
    Column("time_in_force", String(10), nullable=False),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("stop_price", ExactDecimal, nullable=True),
    Column("extended_hours", Boolean, nullable=False),
    Column("purpose", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("filled_qty", ExactDecimal, nullable=False),
    Column("avg_fill_price", ExactDecimal, nullable=True),
    Column("reason", Text, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("hold_until", UTCDateTime, nullable=True),  # a market order waiting for the open
    Column("expires_at", UTCDateTime, nullable=True),  # gtd: the signal's expiresAt
    Column("link_group", ID, nullable=True),
    Column("link_kind", String(10), nullable=True),
    Column("exit_leg", String(20), nullable=True),  # a native exit of the signal's plan
    Column("created_at", UTCDateTime, nullable=False),
    Column("submitted_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_trade_order_status", "status"),
    Index("ix_trade_order_account_created", "account_id", "created_at"),
    # The working orders of an account in a symbol (sizing every immediate signal).
    Index("ix_trade_order_account_symbol_status", "account_id", "symbol", "status"),
    _where_set("trade_order", "link_group"),
)

fills = Table(
    "fill", metadata,
    Column("fill_id", String(100), primary_key=True),
    Column("order_id", ID, ForeignKey("trade_order.id"), nullable=False, index=True),
    Column("account_id", ID, nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("fee", ExactDecimal, nullable=False),
    Column("filled_at", UTCDateTime, nullable=False),
)

positions = Table(
    "position", metadata,
    Column("account_id", ID, primary_key=True),
    Column("symbol", String(20), primary_key=True),
    Column("qty", ExactDecimal, nullable=False),
    Column("avg_entry_price", ExactDecimal, nullable=False),
    Column("realized_pnl", ExactDecimal, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

jobs = Table(
    "job", metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("signal_id", ID, nullable=True, index=True),
    Column("account_id", ID, nullable=True),
    Column("due_at", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime, nullable=True),
    Column("status", String(20), nullable=False),
    Column("result", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("payload", JSON, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_job_status_due", "status", "due_at"),
)

audit_events = Table(
    "audit_event", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # insertion order
    Column("id", ID, nullable=False, unique=True),
    Column("entity", String(20), nullable=False),
    Column("entity_id", String(100), nullable=False),
    Column("event", String(50), nullable=False),
    Column("account_id", ID, nullable=True),
    Column("signal_id", ID, nullable=True, index=True),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=True),
    Column("data", JSON, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_audit_event_entity_account", "entity", "account_id"),
)

market_prices = Table(
    "market_price", metadata,
    Column("symbol", String(20), primary_key=True),
    Column("price", ExactDecimal, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
)

# The paper broker's own books: it is a separate venue that happens to live in the same DB.
paper_accounts = Table(
    "paper_account", metadata,
    Column("account_ref", String(100), primary_key=True),
    Column("cash", ExactDecimal, nullable=False),
    Column("market", String(20), nullable=False, server_default="XNYS"),
    Column("created_at", UTCDateTime, nullable=False),
)

paper_orders = Table(
    "paper_order", metadata,
    Column("broker_order_id", ID, primary_key=True),
    Column("account_ref", String(100), nullable=False),
    Column("client_order_id", String(48), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal, nullable=False),
    Column("order_type", String(20), nullable=False),
    Column("time_in_force", String(10), nullable=False),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("stop_price", ExactDecimal, nullable=True),
    Column("triggered", Boolean, nullable=False),
    Column("extended_hours", Boolean, nullable=False, server_default=false()),
    Column("active_from", UTCDateTime, nullable=True),  # opg: the open it waits for
    Column("expires_at", UTCDateTime, nullable=True),  # day: the session's close; gtd
    Column("auction_at", UTCDateTime, nullable=True),  # cls: the close it fills at
    Column("oco_group", ID, nullable=True),  # a fill cancels the group's other orders
    Column("status", String(20), nullable=False),
    Column("filled_qty", ExactDecimal, nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("uq_paper_order_client", "account_ref", "client_order_id", unique=True),
    Index("ix_paper_order_symbol_status", "symbol", "status"),
    # The worker's every pass looks for working orders whose expiry or close auction is due.
    Index("ix_paper_order_status", "status"),
)

paper_fills = Table(
    "paper_fill", metadata,
    Column("fill_id", ID, primary_key=True),
    Column("broker_order_id", ID, nullable=False, index=True),
    Column("account_ref", String(100), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("fee", ExactDecimal, nullable=False),
    Column("filled_at", UTCDateTime, nullable=False),
)

access_tokens = Table(
    "access_token", metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("account.id"), nullable=False, index=True),
    Column("prefix", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

triggers = Table(
    "trigger", metadata,
    Column("id", ID, primary_key=True),
    Column("signal_id", ID, ForeignKey("signal.id"), nullable=False, unique=True),
    Column("account_id", ID, ForeignKey("account.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("consumed_at", UTCDateTime, nullable=True),
    Column("consumed_by", String(20), nullable=True),  # "trigger_id" or "encoded_token"
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

partners = Table(
    "partner", metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

partner_grants = Table(
    "partner_grant", metadata,
    Column("partner_id", ID, ForeignKey("partner.id"), primary_key=True),
    Column("account_id", ID, ForeignKey("account.id"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

signal_timings = Table(
    "signal_timing", metadata,
    Column("signal_id", ID, ForeignKey("signal.id"), primary_key=True),
    Column("alert_at", UTCDateTime, nullable=True),  # the sender's own `time`, when sent
    Column("received_at", UTCDateTime, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("submitted_at", UTCDateTime, nullable=True),
    Column("acked_at", UTCDateTime, nullable=True),
)

channels = Table(
    "channel", metadata,
    Column("id", ID, primary_key=True),
    Column("partner_id", ID, ForeignKey("partner.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("api_key", String(64), nullable=False, unique=True),  # public half, sent in anny-api-key
    Column("secret_hash", String(64), nullable=False),  # keyed hash of anny-api-secret
    Column("require_stop_loss", Boolean, nullable=False, server_default=false()),
    Column("max_signals_per_day", Integer, nullable=True),
    Column("max_capital_at_risk", ExactDecimal, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

subscriptions = Table(
    "subscription", metadata,
    Column("channel_id", ID, ForeignKey("channel.id"), primary_key=True),
    Column("account_id", ID, ForeignKey("account.id"), primary_key=True),
    Column("allocation", ExactDecimal, nullable=False),
    Column("allocation_type", String(10), nullable=False),  # amount (quote currency) or percent
    Column("leverage_cap", Integer, nullable=False),
    Column("auto_execute", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

partner_signals = Table(
    "partner_signal", metadata,
    Column("id", ID, primary_key=True),  # the parent_signal_id of the partner API
    Column("channel_id", ID, ForeignKey("channel.id"), nullable=False, index=True),
    Column("version", String(4), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("exchange", String(30), nullable=True),
    Column("side", String(5), nullable=False),  # long or short
    Column("entry_min", ExactDecimal, nullable=False),
    Column("entry_max", ExactDecimal, nullable=False),
    Column("plan", JSON, nullable=False),  # targets, stop, trailing, adds: the exit plan
    Column("invest", ExactDecimal, nullable=False),
    Column("ttl_ms", Integer, nullable=True),
    Column("leverage", Integer, nullable=False),
    Column("margin_type", String(10), nullable=True),
    Column("status", String(12), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

exit_plans = Table(
    "exit_plan", metadata,
    Column("signal_id", ID, ForeignKey("signal.id"), primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("symbol", String(20), nullable=False, index=True),
    Column("plan", JSON, nullable=False),
    Column("state", JSON, nullable=True),  # None until the entry fills
    Column("version", Integer, nullable=False),  # bumped on every change (compare-and-set)
    Column("active", Boolean, nullable=False, index=True),  # the armed are found among the active
    # The legs resting at the broker (domain/native_exits); None: every leg emulated.
    Column("native", JSON, nullable=True),
    # Scale-out workers follow the plans changed since their last pass.
    Column("updated_at", UTCDateTime, nullable=False, index=True),
)

# Scale-out: which worker evaluates the armed exits of which symbol partition, under a lease.
trigger_leases = Table(
    "trigger_lease", metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
)

paper_positions = Table(
    "paper_position", metadata,
    Column("account_ref", String(100), primary_key=True),
    Column("symbol", String(20), primary_key=True),
    Column("qty", ExactDecimal, nullable=False),
)

# Market data for indicators: doubles, as every charting and indicator library uses them
# (account money stays Decimal). One row per bar, keyed by symbol, timeframe and start time.
bars = Table(
    "bar", metadata,
    Column("symbol", String(20), primary_key=True),
    Column("timeframe", String(4), primary_key=True),
    Column("ts", BigInteger, primary_key=True),  # the bar's start, epoch seconds UTC
    Column("open", Float(53), nullable=False),
    Column("high", Float(53), nullable=False),
    Column("low", Float(53), nullable=False),
    Column("close", Float(53), nullable=False),
    Column("volume", Float(53), nullable=False),
)

strategies = Table(
    "strategy", metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("app_user.id"), nullable=False, index=True),
    Column("account_id", ID, ForeignKey("account.id"), nullable=True),  # its orders go here
    Column("name", String(100), nullable=False),
    Column("asset", String(20), nullable=False),
    Column("definition", JSON, nullable=False),  # rules and execution_config, as sent
    Column("execution_state", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("last_bar_ts", BigInteger, nullable=True),  # the last bar it was evaluated on
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

service_flags = Table(
    "service_flag", metadata,
    Column("key", String(50), primary_key=True),
    Column("value", Text, nullable=False),
)


# The notification tables live in their own module, on this metadata.
from tradewire.adapters.db import notification_tables as _notification_tables  # noqa: E402, F401
