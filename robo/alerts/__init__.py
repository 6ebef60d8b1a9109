"""Alerts: rules over what the ledger, the queues and the scheduler record; messages by
e-mail (SMTP) and webhooks; one message per storm, one when it clears (docs/alerts.md)."""

from robo.alerts.config import AlertConfig, load_config, parse_config
from robo.alerts.monitor import AlertMonitor, ChannelResult
from robo.alerts.store import AlertStore, AlertView, DeliveryView, Finding, Transition

__all__ = [
    "AlertConfig",
    "AlertMonitor",
    "AlertStore",
    "AlertView",
    "ChannelResult",
    "DeliveryView",
    "Finding",
    "Transition",
    "load_config",
    "parse_config",
]
