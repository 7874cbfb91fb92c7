"""The partner signal dialect (seed 001): V1 and V2 bodies, and the Anny response envelope."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tradewire.adapters.formats.errors import details_of
from tradewire.adapters.formats.fields import Price

OK = "OPERATION_PERFORMED"
MISSING = "INVALID_INPUT_MISSING"
CONTENT = "INVALID_INPUT_CONTENT"
UNAUTHORIZED = "UNAUTHORIZED"
CRITICAL = "CRITICAL"

M = TypeVar("M", bound=BaseModel)


class PartnerInputError(Exception):
    """A refused body: `kind` is INVALID_INPUT_MISSING or INVALID_INPUT_CONTENT."""

    def __init__(self, kind: str, details: list[dict[str, Any]]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.details = details


class _Base(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    coin: str = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$")
    trade_market: str = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$")
    exchange: str | None = Field(default=None, max_length=30)
    stop_loss: Price | None = None
    type: Literal["long", "short"] = "long"
    invest: Decimal = Field(default=Decimal(100), gt=0, le=100)
    ttl_buy_order: int | None = Field(default=None, gt=0, le=30 * 86_400_000)
    attachment_image1_url: str | None = Field(default=None, max_length=2000)
    attachment_image2_url: str | None = Field(default=None, max_length=2000)
    attachment_description: str | None = Field(default=None, max_length=4000)
    # tradewire's addition: move the stop to the entry price once the first target is hit.
    break_even_after_first_target: bool = False


class V1Body(_Base):
    buy_price_min: Price
    buy_price_max: Price
    sell_price_1: Price
    sell_price_2: Price | None = None
    sell_price_3: Price | None = None
    sell_price_4: Price | None = None
    sell_price_5: Price | None = None
    sell_price_6: Price | None = None


class V2Body(_Base):
    entry_price_min: Price
    entry_price_max: Price
    entry_price_mid: Price | None = None
    exit_price_1: Price
    exit_price_2: Price | None = None
    exit_price_3: Price | None = None
    exit_price_4: Price | None = None
    exit_price_5: Price | None = None
    exit_price_6: Price | None = None
    leverage: int = Field(default=1, ge=1, le=125)
    margin_type: Literal["isolated", "cross"] = "isolated"
    # Shares (percent) of the entry placed at entry_price_min, entry_price_mid and
    # entry_price_max; the default puts it all at the top of the range (long) / bottom (short).
    entry_allocation: list[Decimal] | None = Field(default=None, min_length=1, max_length=3)

    @model_validator(mode="after")
    def _allocation_sums_to_100(self) -> V2Body:
        if self.entry_allocation is not None and sum(self.entry_allocation) != 100:
            raise ValueError("entry_allocation must add up to 100")
        return self


@dataclass(frozen=True)
class PartnerSignalSpec:
    """What a partner signal asks for, in tradewire's words."""

    version: str
    symbol: str  # CCXT's unified BASE/QUOTE
    exchange: str | None
    side: str  # long or short
    entry_min: Decimal
    entry_max: Decimal
    entry_mid: Decimal | None
    targets: tuple[Decimal, ...]
    stop_loss: Decimal | None
    invest: Decimal
    ttl_ms: int | None
    leverage: int
    margin_type: str | None
    entry_allocation: tuple[Decimal, ...]
    body: dict[str, Any]
    break_even: bool = False


def parse(body: Any, version: str) -> PartnerSignalSpec:
    if not isinstance(body, dict):
        raise PartnerInputError(CONTENT, [{"message": "the body must be a JSON object",
                                           "path": []}])
    model = V1Body if version == "v1" else V2Body
    try:
        req = model.model_validate(body)
    except ValidationError as exc:
        details = details_of(exc)
        kind = MISSING if all(d["message"] == "Required" for d in details) else CONTENT
        raise PartnerInputError(kind, details) from None
    spec = _spec(req, version, body)
    problems = _problems(spec)
    if problems:
        raise PartnerInputError(CONTENT, problems)
    return spec


def _spec(req: V1Body | V2Body, version: str, body: dict[str, Any]) -> PartnerSignalSpec:
    if isinstance(req, V1Body):
        low, high, mid, leverage, margin, allocation = (req.buy_price_min, req.buy_price_max,
                                                        None, 1, None, ())
        targets = (req.sell_price_1, req.sell_price_2, req.sell_price_3, req.sell_price_4,
                   req.sell_price_5, req.sell_price_6)
    else:
        low, high, mid = req.entry_price_min, req.entry_price_max, req.entry_price_mid
        leverage, margin = req.leverage, req.margin_type
        allocation = tuple(req.entry_allocation or ())
        targets = (req.exit_price_1, req.exit_price_2, req.exit_price_3, req.exit_price_4,
                   req.exit_price_5, req.exit_price_6)
    return PartnerSignalSpec(
        version=version, symbol=f"{req.coin.upper()}/{req.trade_market.upper()}",
        exchange=req.exchange.upper() if req.exchange else None, side=req.type,
        entry_min=low, entry_max=high, entry_mid=mid,
        targets=tuple(t for t in targets if t is not None), stop_loss=req.stop_loss,
        invest=req.invest, ttl_ms=req.ttl_buy_order, leverage=leverage, margin_type=margin,
        entry_allocation=allocation, body=body, break_even=req.break_even_after_first_target,
    )


def _problems(s: PartnerSignalSpec) -> list[dict[str, Any]]:
    p: list[dict[str, Any]] = []
    if s.entry_min > s.entry_max:
        p.append({"message": "the entry range's minimum is above its maximum", "path": ["entry"]})
    if s.entry_mid is not None and not s.entry_min <= s.entry_mid <= s.entry_max:
        p.append({"message": "entry_price_mid is outside the entry range",
                  "path": ["entry_price_mid"]})
    long = s.side == "long"
    if any((t <= s.entry_max) if long else (t >= s.entry_min) for t in s.targets):
        p.append({"message": f"every take-profit target must be {'above' if long else 'below'} "
                             "the entry range", "path": ["targets"]})
    if s.stop_loss is not None and ((s.stop_loss >= s.entry_min) if long
                                    else (s.stop_loss <= s.entry_max)):
        p.append({"message": f"stop_loss must be {'below' if long else 'above'} the entry range",
                  "path": ["stop_loss"]})
    if s.entry_allocation and s.entry_mid is None and len(s.entry_allocation) == 3:
        p.append({"message": "a three-way entry_allocation needs entry_price_mid",
                  "path": ["entry_allocation"]})
    return p


def envelope(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"result": {"type": kind}, "payload": payload}


def performed(parent_signal_id: str, *, success: bool = True, **extra: Any) -> dict[str, Any]:
    """200 OPERATION_PERFORMED; `payload.result` tells success from a refused operation."""
    return envelope(OK, {"parent_signal_id": parent_signal_id,
                         "result": "success" if success else "failed", **extra})


class TakeProfitCall(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    price: Price
    share: Decimal | None = Field(default=None, gt=0, le=100)  # percent of the position


class TrailingCall(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    percent: Decimal | None = Field(default=None, gt=0, lt=100)
    amount: Price | None = None
    activation_price: Price | None = None

    @model_validator(mode="after")
    def _one_of(self) -> TrailingCall:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("send exactly one of percent and amount")
        return self


class LevelCall(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    price: Price
    invest: Decimal = Field(default=Decimal(100), gt=0, le=1000)  # percent of the entry quantity


class UpdatePriceCall(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    stop_loss: Price | None = None

    def targets(self) -> dict[int, Decimal]:
        """sell_price_N (V1) or exit_price_N (V2), by N."""
        out: dict[int, Decimal] = {}
        for key, value in (self.model_extra or {}).items():
            for prefix in ("sell_price_", "exit_price_"):
                if key.startswith(prefix) and key[len(prefix):].isdigit() and value is not None:
                    try:
                        price = Decimal(str(value))
                    except ArithmeticError:
                        raise PartnerInputError(CONTENT, [{"message": "not a price",
                                                           "path": [key]}]) from None
                    if not price.is_finite() or price <= 0:
                        raise PartnerInputError(CONTENT, [{"message": "must be positive",
                                                           "path": [key]}])
                    out[int(key[len(prefix):])] = price
        return out


def parse_call(body: Any, model: type[M]) -> M:
    if not isinstance(body, dict):
        raise PartnerInputError(CONTENT, [{"message": "the body must be a JSON object",
                                           "path": []}])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        details = details_of(exc)
        kind = MISSING if all(d["message"] == "Required" for d in details) else CONTENT
        raise PartnerInputError(kind, details) from None
