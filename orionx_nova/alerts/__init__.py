"""Alerts: rules over the pool's state (rules), raising them as events with
a cooldown (checker) and sending them to a webhook (webhook)."""
