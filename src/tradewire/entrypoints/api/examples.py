"""Request examples for /docs, taken from the signal API's own documentation (seed 004)."""

from __future__ import annotations

from typing import Any

ACCOUNT = "550e8400-e29b-41d4-a716-446655440000"

SIGNAL_EXAMPLES: dict[str, dict[str, Any]] = {
    "immediate": {"summary": "Immediate market order", "value": {
        "symbol": "AAPL", "action": "openLong", "accountId": ACCOUNT, "quantity": 100,
        "executeMode": "immediate"}},
    "timedExit": {"summary": "Immediate with timed exit", "value": {
        "symbol": "AAPL", "action": "openLong", "accountId": ACCOUNT, "quantity": 100,
        "executeMode": "immediate", "exitTriggerType": "timed", "exitTriggerValue": 30,
        "exitOrderType": "market"}},
    "scheduled": {"summary": "Scheduled signal", "value": {
        "symbol": "MSFT", "action": "openLong", "accountId": ACCOUNT, "quantity": 75,
        "executeMode": "scheduled", "scheduledProcessAt": "2026-02-07T09:25:00",
        "timezone": "America/New_York", "sourceId": "my-strategy-signal-001"}},
    "pending": {"summary": "Pending signal for review", "value": {
        "symbol": "TSLA", "action": "openLong", "accountId": ACCOUNT, "quantity": 50,
        "executeMode": "pending", "orderType": "limit", "limitPrice": 250.0}},
    "replace": {"summary": "Stop-limit order with replace", "value": {
        "symbol": "GOOGL", "action": "openShort", "accountId": ACCOUNT, "quantity": 25,
        "executeMode": "immediate", "orderType": "stopLimit", "stopPrice": 145.0,
        "limitPrice": 144.0, "sourceId": "my-ref-456", "replaceExisting": True}},
    "dollarAmount": {"summary": "Dollar amount position sizing", "value": {
        "symbol": "SPY", "action": "openLong", "accountId": ACCOUNT, "quantity": 5000,
        "quantityType": "dollarAmount", "executeMode": "immediate"}},
}

SIGNAL = {"id": "550e8400-e29b-41d4-a716-446655440099"}

SIGNAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Existing signal returned (idempotent)", "content": {"application/json": {
        "example": {"success": True, "message": "Signal with sourceId 'my-ref' already exists "
                    "with status 'pending'. Use replaceExisting=true to supersede.",
                    "signal": {**SIGNAL, "status": "pending", "executeMode": "pending"}}}}},
    201: {"description": "Signal created/executed", "content": {"application/json": {
        "example": {"success": True, "message": "Signal processed successfully",
                    "signal": {**SIGNAL, "status": "executed",
                               "orderId": "550e8400-e29b-41d4-a716-446655440098",
                               "executeMode": "immediate"}}}}},
    202: {"description": "Signal scheduled for future processing",
          "content": {"application/json": {"example": {
              "success": True, "message": "Signal scheduled for processing",
              "signal": {**SIGNAL, "status": "scheduled", "scheduledAt": "2026-02-07T14:25:00.000Z",
                         "executeMode": "scheduled"}}}}},
    400: {"description": "Validation error or signal rejected", "content": {"application/json": {
        "example": {"success": False, "error": "Validation failed", "code": "VALIDATION_ERROR",
                    "details": [{"code": "custom", "message": "scheduledProcessAt is required "
                                 "for scheduled execute mode", "path": ["scheduledProcessAt"]}]}}}},
    401: {"description": "Missing or invalid authentication"},
    404: {"description": "Account or strategy not found"},
    413: {"description": "Body larger than the limit"},
    503: {"description": "Service disabled"},
}

INGEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "minimal": {"summary": "Minimal market order", "value": {
        "symbol": "AAPL", "action": "openLong", "accountId": ACCOUNT, "quantity": 100,
        "processAt": "now"}},
    "limit": {"summary": "Limit order", "value": {
        "symbol": "TSLA", "action": "openLong", "accountId": ACCOUNT, "quantity": 50,
        "orderType": "limit", "limitPrice": 250.0, "processAt": "now"}},
    "scheduledMoc": {"summary": "Scheduled signal with immediate MOC exit", "value": {
        "symbol": "MSFT", "action": "openLong", "accountId": ACCOUNT,
        "strategyId": "550e8400-e29b-41d4-a716-446655440001", "quantity": 75,
        "processAt": "2026-02-07T09:25:00", "timezone": "America/New_York",
        "sourceId": "my-strategy-signal-001",
        "exitRule": {"trigger": "market_close", "immediate": True}}},
    "stopLimitReplace": {"summary": "Stop-limit order with replace", "value": {
        "symbol": "GOOGL", "action": "openShort", "accountId": ACCOUNT, "quantity": 25,
        "orderType": "stop_limit", "stopPrice": 145.0, "limitPrice": 144.0, "processAt": "now",
        "sourceId": "my-ref-456", "replace": True}},
    "dollarAmount": {"summary": "Dollar amount position sizing", "value": {
        "symbol": "SPY", "action": "openLong", "accountId": ACCOUNT, "quantity": 5000,
        "quantityType": "dollarAmount", "processAt": "now"}},
    "scheduledMocBefore": {"summary": "Exit 5 minutes before the close", "value": {
        "symbol": "AAPL", "action": "openLong", "accountId": ACCOUNT, "quantity": 10,
        "processAt": "now", "exitRule": {"trigger": "market_close", "minutesBefore": 5}}},
    "timeExit": {"summary": "Exit at 15:30 New York time", "value": {
        "symbol": "AAPL", "action": "openLong", "accountId": ACCOUNT, "quantity": 10,
        "processAt": "now", "timezone": "America/New_York",
        "exitRule": {"trigger": "time", "exitTime": "15:30"}}},
}

INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "Signal executed immediately", "content": {"application/json": {
        "example": {"message": "Signal processed successfully",
                    "signal": {**SIGNAL, "status": "executed",
                               "orderId": "550e8400-e29b-41d4-a716-446655440098"}}}}},
    202: {"description": "Signal scheduled for future processing",
          "content": {"application/json": {"example": {
              "message": "Signal scheduled for processing",
              "signal": {**SIGNAL, "status": "scheduled",
                         "scheduledAt": "2026-02-07T14:25:00.000Z"}}}}},
    400: {"description": "Validation error or signal rejected", "content": {"application/json": {
        "examples": {
            "validation": {"value": {"error": "Validation failed", "code": "VALIDATION_ERROR",
                                     "details": [{"code": "custom", "message": "limitPrice is "
                                                  "required for limit orders",
                                                  "path": ["limitPrice"]}]}},
            "duplicate": {"value": {"error": "Signal rejected", "message": "Signal with sourceId "
                                    "'my-ref' already exists with status 'PENDING'. Use "
                                    "replace=true to supersede.",
                                    "signal": {**SIGNAL, "status": "pending"},
                                    "code": "SIGNAL_REJECTED"}}}}}},
    401: {"description": "Missing or invalid API key"},
    404: {"description": "Account or strategy not found"},
    503: {"description": "Service disabled"},
}
