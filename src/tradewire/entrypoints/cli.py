"""The `tradewire` command. Every command that creates something takes --json."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tradewire import config
from tradewire.adapters.brokers.registry import known_broker
from tradewire.adapters.calendars import known_market
from tradewire.adapters.db import backup
from tradewire.adapters.formats import bars as bars_format
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.adapters.security import new_credential_key
from tradewire.bootstrap import Container, build
from tradewire.domain.accounts import Scope
from tradewire.domain.channels import AllocationType
from tradewire.domain.errors import TradewireError
from tradewire.entrypoints import logs
from tradewire.services import (
    accounts,
    backtests,
    capabilities,
    channels,
    credentials,
    reconciliation,
    risk,
)
from tradewire.services.market_data import import_bars

app = typer.Typer(help="tradewire: trading signals in, broker orders out.", no_args_is_help=True)
accounts_app = typer.Typer(help="Trading accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
tokens_app = typer.Typer(help="Access tokens for /signal/execute-via-token.", no_args_is_help=True)
partners_app = typer.Typer(help="Partners and the accounts they may trade.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(partners_app, name="partners")
bars_app = typer.Typer(help="Market data bars.", no_args_is_help=True)
app.add_typer(bars_app, name="bars")
channels_app = typer.Typer(help="Partner signal channels and their subscribers.",
                           no_args_is_help=True)
app.add_typer(channels_app, name="channels")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
credentials_app = typer.Typer(help="The keys that seal broker credentials.", no_args_is_help=True)
risk_app = typer.Typer(help="Risk limits per account.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")
app.add_typer(credentials_app, name="credentials")
console = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")]


def _container(role: str = "all") -> Container:
    return build(config.load(), worker_id=f"{socket.gethostname()}:{os.getpid()}", role=role)


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for k, v in data.items():
            typer.echo(f"{k}: {v}")


def _fail(exc: TradewireError, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"error": exc.message, "code": exc.code}))
    else:
        console.print(f"[red]{exc.code}[/red]: {exc.message}")
    raise typer.Exit(1)


def _init(c: Container) -> dict[str, Any]:
    result = accounts.bootstrap(c.deps, c.secrets)
    if not result.created:
        return {"created": False}
    data = {"created": True, "account_id": result.account_id, "api_key": result.api_key,
            "access_token": result.access_token, "admin_username": result.admin_username,
            "admin_password": result.admin_password}
    data["sample_bars"] = _load_samples(c)
    path = c.settings.data_dir / "initial-credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    data["credentials_file"] = str(path)
    return data


@app.command()
def init(as_json: JsonOpt = False) -> None:
    """Migrate and, on an empty database, create an admin, a paper account and an API key."""
    c = _container()
    _emit(_init(c), as_json)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """API, dashboard and worker in one process."""
    from tradewire.entrypoints.api.app import create_app
    from tradewire.entrypoints.worker import Worker

    c = _container()
    logs.configure(c.settings.log_format)
    created = _init(c)
    _welcome(created, host, port, c.settings.data_dir)
    worker = Worker(c)
    worker.start()
    try:
        _serve_http(_with_writer_process(create_app(c), c), host, port)
    finally:
        worker.stop()


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """The API alone (run `tradewire worker` beside it): on PostgreSQL it wakes the workers
    with NOTIFY, and leaves the exits of positions to them."""
    from tradewire.entrypoints.api.app import create_app

    c = _container("api")
    logs.configure(c.settings.log_format)
    _serve_http(_with_writer_process(create_app(c), c), host, port)


def _with_writer_process(app: Any, c: Container) -> Any:
    """`app`, starting a writer process with it and stopping it with it, when `c` wants one
    (entrypoints/api/writer_process.py)."""
    from tradewire.entrypoints.api import writer_process

    if writer_process.wanted(c):
        c.writer_process = writer_process.WriterProcess()
        app.router.on_startup.append(c.writer_process.start)
        app.router.on_shutdown.append(c.writer_process.close)
    return app


def _serve_http(app: Any, host: str, port: int) -> None:
    """Serve `app` with uvicorn, its start-up objects kept out of the garbage collector's
    sight first (`gc.freeze`): a full collection walked every object the imports and the
    application made (routes, models, SQL statements, calendars), 50-80 ms with every request
    of the process waiting, the longest waits of the ingest benchmark (its p99 45 instead of
    100 ms with one process, the slowest request 45 instead of 90-150 ms with two).
    Objects made while serving are collected as before."""
    import uvicorn

    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                log_config=None)


@app.command()
def worker() -> None:
    """The worker alone: due jobs, order submission, reconciliation."""
    from tradewire.entrypoints.worker import Worker

    c = _container("worker")
    logs.configure(c.settings.log_format)
    w = Worker(c)
    w.listen()
    w.start_notifier()
    signal.signal(signal.SIGTERM, lambda *_: w.stop_soon())
    try:
        w.run_forever()
    finally:
        if w.triggers is not None:
            w.triggers.release(c.deps)


BROKER_ENV = {"alpaca": {"key_id": "TRADEWIRE_BROKER_KEY_ID", "secret_key": "TRADEWIRE_BROKER_SECRET"},
              "ccxt": {"apiKey": "TRADEWIRE_BROKER_KEY_ID", "secret": "TRADEWIRE_BROKER_SECRET",
                       "password": "TRADEWIRE_BROKER_PASSWORD"}}


@accounts_app.command("create")
def accounts_create(name: Annotated[str, typer.Option()],
                    broker: Annotated[str, typer.Option(
                        help="paper, alpaca or ccxt:EXCHANGE (ccxt:binance ...)")] = "paper",
                    cash: str = "100000", user: str = "admin",
                    market: Annotated[str, typer.Option(
                        help="exchange calendar code (XNYS, XNAS, XLON ...) or 24/7")] = "XNYS",
                    credentials_file: Annotated[Path | None, typer.Option(
                        help="a JSON file with the broker's keys")] = None,
                    credentials_env: Annotated[bool, typer.Option(
                        help="read the keys from TRADEWIRE_BROKER_KEY_ID, TRADEWIRE_BROKER_SECRET "
                             "(and TRADEWIRE_BROKER_PASSWORD)")] = False,
                    live: Annotated[bool, typer.Option(
                        help="trade the live account (default: the broker's paper or sandbox)")]
                    = False,
                    base_url: Annotated[str | None, typer.Option(
                        help="the broker's API address, when not its usual one")] = None,
                    as_json: JsonOpt = False) -> None:
    """A trading account for a user (the admin by default). A real broker's keys come from a
    hidden prompt, a file or the environment, never from the command line; they are stored
    encrypted with the credential keys kept outside the database."""
    c = _container()
    try:
        if not known_market(market):
            raise TradewireError(f"unknown market {market}", code="UNKNOWN_MARKET")
        if not known_broker(broker):
            raise TradewireError(f"unknown broker {broker}", code="UNKNOWN_BROKER")
        secret = _broker_secret(broker, credentials_file, credentials_env, live, base_url)
        owner = _user(c, user)
        account = accounts.create_account(owner, name, broker=broker, cash=Decimal(cash),
                                          deps=c.deps, market=market, secret=secret)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"id": account.id, "name": account.name, "broker": account.broker,
           "market": account.market}, as_json)


def _broker_secret(broker: str, file: Path | None, from_env: bool, live: bool,
                   base_url: str | None) -> dict[str, Any] | None:
    kind = credentials.broker_kind(broker)
    if not credentials.needs_credentials(broker):
        if file or from_env:
            raise TradewireError(f"broker {broker} takes no credentials", code="UNKNOWN_BROKER")
        return None
    if file is not None:
        try:
            secret = json.loads(file.read_text())
        except (OSError, ValueError):
            raise TradewireError(f"cannot read credentials from {file}: a JSON object is needed",
                                 code="BROKER_CREDENTIALS_INVALID") from None
        if not isinstance(secret, dict):
            raise TradewireError(f"{file} must hold a JSON object",
                                 code="BROKER_CREDENTIALS_INVALID")
    elif from_env:
        secret = {field: os.environ[var] for field, var in BROKER_ENV[kind].items()
                  if os.environ.get(var)}
    else:
        secret = {field: typer.prompt(field, hide_input=True, err=True)
                  for field in ("key_id", "secret_key") if kind == "alpaca"} or {
            field: typer.prompt(field, hide_input=True, err=True) for field in ("apiKey", "secret")}
    flag = "paper" if kind == "alpaca" else "sandbox"
    secret.setdefault(flag, not live)
    if base_url:
        secret["base_url"] = base_url
    return secret


@keys_app.command("create")
def keys_create(scopes: Annotated[str, typer.Option(help="comma separated")] =
                "signals:write,signals:read",
                account: Annotated[list[str] | None, typer.Option()] = None,
                user: str | None = None, as_json: JsonOpt = False) -> None:
    """An API key, shown once. --account narrows it to those accounts (and their owner)."""
    c = _container()
    try:
        wanted = [Scope(s.strip()) for s in scopes.split(",") if s.strip()]
    except ValueError:
        typer.echo(json.dumps({"error": f"unknown scope in {scopes}", "code": "BAD_SCOPE"}))
        raise typer.Exit(2) from None
    try:
        owner = _owner_of(c, account[0]) if account and user is None else _user(c, user or "admin")
        key, plaintext = accounts.create_api_key(owner, wanted, account or None, deps=c.deps,
                                                 secrets=c.secrets)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"id": key.id, "key": plaintext, "prefix": key.prefix, "scopes": sorted(key.scopes)},
          as_json)


@tokens_app.command("create")
def tokens_create(account: Annotated[str, typer.Option()], as_json: JsonOpt = False) -> None:
    """An access token bound to one account, for signal execution only (shown once)."""
    c = _container()
    try:
        token, plaintext = capabilities.create_access_token(account, c.deps, c.secrets)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"id": token.id, "token": plaintext, "account_id": account}, as_json)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Revoke an access token by its id."""
    c = _container()
    _emit({"id": token_id, "revoked": capabilities.revoke_access_token(token_id, c.deps)}, as_json)


@partners_app.command("create")
def partners_create(name: Annotated[str, typer.Option()], as_json: JsonOpt = False) -> None:
    """A partner and its Bearer token (shown once)."""
    c = _container()
    partner, token = capabilities.create_partner(name, c.deps, c.secrets)
    _emit({"id": partner.id, "name": partner.name, "bearer_token": token}, as_json)


@partners_app.command("grant")
def partners_grant(partner: Annotated[str, typer.Option()],
                   account: Annotated[str, typer.Option()], as_json: JsonOpt = False) -> None:
    """Let a partner place orders for an account."""
    c = _container()
    try:
        capabilities.grant_partner(partner, account, c.deps)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"partner_id": partner, "account_id": account, "granted": True}, as_json)


@channels_app.command("create")
def channels_create(partner: Annotated[str, typer.Option()], name: Annotated[str, typer.Option()],
                    require_stop_loss: bool = False, max_signals_per_day: int | None = None,
                    max_capital_at_risk: str | None = None, as_json: JsonOpt = False) -> None:
    """A channel of a partner; its anny-api-key / anny-api-secret pair is shown once."""
    c = _container()
    try:
        channel, secret = channels.create_channel(partner, name, c.deps, c.secrets,
                                                  require_stop_loss=require_stop_loss,
                                                  max_signals_per_day=max_signals_per_day,
                                                  max_capital_at_risk=Decimal(max_capital_at_risk)
                                                  if max_capital_at_risk else None)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"id": channel.id, "api_key": channel.api_key, "api_secret": secret}, as_json)


@channels_app.command("subscribe")
def channels_subscribe(channel: Annotated[str, typer.Option()],
                       account: Annotated[str, typer.Option()], allocation: str = "1000",
                       allocation_type: str = "amount", leverage_cap: int = 1,
                       auto_execute: bool = True, as_json: JsonOpt = False) -> None:
    """An account follows a channel with an allocation (quote currency amount or percent)."""
    c = _container()
    try:
        sub = channels.subscribe(channel, account, c.deps, allocation=Decimal(allocation),
                                 allocation_type=AllocationType(allocation_type),
                                 leverage_cap=leverage_cap, auto_execute=auto_execute)
    except (TradewireError, ValueError) as exc:
        if isinstance(exc, TradewireError):
            _fail(exc, as_json)
        raise typer.BadParameter(str(exc)) from None
    _emit({"channel_id": sub.channel_id, "account_id": sub.account_id,
           "allocation": str(sub.allocation), "allocation_type": str(sub.allocation_type)},
          as_json)


@bars_app.command("import")
def bars_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                symbol: Annotated[str, typer.Option()], timeframe: str = "1d",
                as_json: JsonOpt = False) -> None:
    """Load OHLCV bars from a CSV file (timestamp/date, open, high, low, close, volume)."""

    c = _container()
    try:
        rows = bars_format.parse_csv(file.read_text(encoding="utf-8"))
        count = import_bars(symbol, timeframe, rows, c.deps)
    except BadRequest as exc:
        typer.echo(json.dumps({"error": "invalid bars", "details": exc.details}))
        raise typer.Exit(1) from None
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"symbol": symbol.upper(), "timeframe": timeframe, "imported": count}, as_json)


@app.command()
def backtest(strategy_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
             data: Annotated[Path, typer.Option(exists=True, dir_okay=False)],
             timeframe: str | None = None, fee_bps: float = 0.0, slippage_bps: float = 0.0,
             cash: float = 10_000.0, as_json: JsonOpt = False) -> None:
    """Backtest STRATEGY.json over the bars of a CSV file, with the live rules."""
    c = _container()
    try:
        rows = bars_format.parse_csv(data.read_text(encoding="utf-8"))
        raw = json.loads(strategy_file.read_text())
        _, result = backtests.run(raw, c.deps, bars=rows,
                                  timeframe=timeframe, fee_bps=fee_bps,
                                  slippage_bps=slippage_bps, cash=cash)
    except BadRequest as exc:
        typer.echo(json.dumps({"error": "invalid bars", "details": exc.details}))
        raise typer.Exit(1) from None
    except json.JSONDecodeError as exc:
        _fail(TradewireError(f"{strategy_file} is not JSON: {exc}", code="BAD_STRATEGY"), as_json)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({**result.stats.to_dict(), "trades": len(result.trades)}, as_json)


@risk_app.command("show")
def risk_show(account: str, as_json: JsonOpt = False) -> None:
    """An account's risk limits."""
    c = _container()
    try:
        limits = risk.limits_of(account, c.deps)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"accountId": account, "limits": limits.to_dict()}, as_json)


@risk_app.command("set")
def risk_set(account: str,
             limits: Annotated[str, typer.Option(
                 help='JSON object of limits to change, e.g. \'{"max_position_qty": 100, '
                      '"daily_loss_limit": 500}\' (null lifts one)')],
             as_json: JsonOpt = False) -> None:
    """Change some of an account's risk limits."""
    c = _container()
    try:
        changes = json.loads(limits)
        if not isinstance(changes, dict):
            raise ValueError
    except ValueError:
        _fail(TradewireError("--limits must be a JSON object", code="INVALID_RISK_LIMITS"),
              as_json)
    try:
        result = risk.set_limits(account, changes, c.deps)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"accountId": account, "limits": result.to_dict()}, as_json)


@app.command("halt")
def halt(account: Annotated[str | None, typer.Option(help="one account (default: all)")] = None,
         as_json: JsonOpt = False) -> None:
    """The kill switch: refuse new entries (exits still go) on one account or on all."""
    _switch(account, True, as_json)


@app.command("resume")
def resume(account: Annotated[str | None, typer.Option(help="one account (default: all)")]
           = None, as_json: JsonOpt = False) -> None:
    """Lift the kill switch."""
    _switch(account, False, as_json)


def _switch(account: str | None, halted: bool, as_json: bool) -> None:
    c = _container()
    try:
        if account is None:
            risk.set_global_halt(halted, c.deps)
        else:
            risk.set_limits(account, {"halted": halted}, c.deps)
    except TradewireError as exc:
        _fail(exc, as_json)
    _emit({"scope": account or "all", "halted": halted}, as_json)


@app.command("reconcile")
def reconcile(account: Annotated[str | None, typer.Option(help="one account (default: all)")]
              = None, as_json: JsonOpt = False) -> None:
    """Compare each broker's open orders and positions with tradewire's; record and print
    the differences (an order tradewire never sent is reported, never adopted)."""
    c = _container()
    if account is not None:
        with c.deps.uow(write=False) as uow:
            found = uow.accounts.get(account)
        if found is None:
            _fail(TradewireError(f"account {account} not found", code="ACCOUNT_NOT_FOUND"),
                  as_json)
        outcomes = [reconciliation.reconcile_account(found, c.deps)]
    else:
        outcomes = reconciliation.reconcile_all(c.deps)
    report = {"accounts": [{"accountId": o.account_id, "updated": o.updated, "error": o.error,
                            "differences": [d.to_dict() for d in o.differences]}
                           for o in outcomes]}
    if as_json:
        typer.echo(json.dumps(report))
        return
    for o in report["accounts"]:
        state = o["error"] or f"{o['updated']} updated, {len(o['differences'])} differences"
        typer.echo(f"{o['accountId']}: {state}")
        for d in o["differences"]:
            typer.echo(f"  {d['kind']} {d['key']}: ours {d['ours']} theirs {d['theirs']}")


@credentials_app.command("rotate")
def credentials_rotate(as_json: JsonOpt = False) -> None:
    """Reseal every broker credential under a new key. With the keys file (the default) a key
    is made, put in front, everything resealed, then the old keys dropped. With
    TRADEWIRE_CREDENTIAL_KEYS: put the new key first there, run this, then drop the old ones."""
    settings = config.load()
    from_file = settings.credential_keys is None
    if from_file:
        old = settings.resolved_credential_keys()
        _write_keys(settings.credential_keys_file, [new_credential_key(), *old])
    c = build(config.load(), worker_id=f"{socket.gethostname()}:{os.getpid()}")
    count = credentials.rotate(c.deps)
    if from_file:  # everything is sealed under the new key: the old ones may go
        _write_keys(settings.credential_keys_file, settings.resolved_credential_keys()[:1])
    _emit({"resealed": count, "keys": "file" if from_file else "environment",
           "next": "done" if from_file else
           "remove the old keys from TRADEWIRE_CREDENTIAL_KEYS"}, as_json)


def _write_keys(path: Path, keys: list[bytes]) -> None:
    """Replace the keys file atomically: a crash leaves the old file or the new one."""
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text("".join(k.decode() + "\n" for k in keys))
    os.replace(tmp, path)


@db_app.command("backup")
def db_backup(dest: Path, as_json: JsonOpt = False) -> None:
    """A consistent copy of the SQLite database while the service runs (PostgreSQL: prints
    the pg_dump command to use)."""
    settings = config.load()
    url = settings.resolved_database_url()
    source = backup.sqlite_path(url)
    if source is None:
        _emit({"database": "postgresql", "backup": "use pg_dump",
               "command": backup.pg_dump_command(url, dest)}, as_json)
        raise typer.Exit(2)
    try:
        pages = backup.backup_sqlite(source, dest)
    except (FileExistsError, OSError, RuntimeError) as exc:
        _fail(TradewireError(str(exc), code="BACKUP_FAILED"), as_json)
    _emit({"database": "sqlite", "backup": str(dest), "pages": pages}, as_json)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration."""
    _container()
    typer.echo("database is at the latest revision")


# BTCUSD.csv is monthly, a timeframe tradewire does not keep: it is left out.
SAMPLES = (("GOOG.csv", "GOOG", "1d"), ("EURUSD.csv", "EUR/USD", "1h"))


def _load_samples(c: Container) -> dict[str, int]:
    """The `backtesting` package's sample bars, so a first start has data to evaluate."""
    import backtesting.test as backtesting_samples  # plotting libraries: only when loading

    folder = Path(backtesting_samples.__file__).parent
    loaded = {}
    for name, symbol, tf in SAMPLES:
        rows = bars_format.parse_csv((folder / name).read_text(encoding="utf-8"))
        loaded[symbol] = import_bars(symbol, tf, rows, c.deps)
    return loaded


def _user(c: Container, username: str) -> str:
    with c.deps.uow(write=False) as uow:
        user = uow.users.by_username(username)
    if user is None:
        raise TradewireError(f"user {username} not found (run `tradewire init`)",
                             code="USER_NOT_FOUND")
    return user.id


def _owner_of(c: Container, account_id: str) -> str:
    with c.deps.uow(write=False) as uow:
        account = uow.accounts.get(account_id)
    if account is None:
        raise TradewireError(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
    return account.user_id


def _welcome(created: dict[str, Any], host: str, port: int, data_dir: Path) -> None:
    base = f"http://{host}:{port}"
    if created.get("created"):
        console.print("[bold]First start: credentials (shown once, also in "
                      f"{created['credentials_file']}):[/bold]")
        for k in ("admin_username", "admin_password", "account_id", "api_key"):
            console.print(f"  {k}: {created[k]}")
        key, account = created["api_key"], created["account_id"]
    else:
        key, account = "<your API key>", "<your account id>"
        console.print(f"Credentials from the first start are in {data_dir}/initial-credentials.json")
    console.print(f"\ntradewire on {base}  (dashboard: {base}/ui, API docs: {base}/docs)\n"
                  "The first paper account trades around the clock. Send a first signal:\n"
                  f"  curl -s -X POST {base}/api/v1/market/prices -H 'X-API-Key: {key}' "
                  "-H 'Content-Type: application/json' -d '{\"symbol\":\"AAPL\",\"price\":190}'\n"
                  f"  curl -s -X POST {base}/api/v1/signals -H 'X-API-Key: {key}' "
                  "-H 'Content-Type: application/json' -d '{\"symbol\":\"AAPL\",\"action\":"
                  f"\"openLong\",\"accountId\":\"{account}\",\"quantity\":10,"
                  "\"executeMode\":\"immediate\"}'\n")
