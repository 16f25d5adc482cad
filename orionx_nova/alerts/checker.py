"""Raising alerts: rules that fire become events of kind ``alert.<rule>``,
at most once per rule and object per ``[alerts] cooldown_s``, and go to the
webhook when one is configured.

The cooldown is read from the events table, not kept in memory, so several
controllers on one database (or one that restarted) do not repeat alerts.
"""

import datetime

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova.alerts import rules, webhook
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import events
from orionx_nova.objects.formatting import iso8601

LOG = logging.getLogger(__name__)

EVENTS = models.Event.__table__
KIND_PREFIX = "alert."


def _recently_raised(session, alert, now):
    cutoff = now - datetime.timedelta(seconds=CONF.alerts.cooldown_s)
    found = session.execute(
        sa.select(EVENTS.c.id).where(
            EVENTS.c.kind == KIND_PREFIX + alert["rule"],
            EVENTS.c.object_uuid == alert["object_uuid"],
            EVENTS.c.created_at >= cutoff,
        ).limit(1)
    ).first()
    return found is not None


def check(now=None):
    """Evaluate every rule, record the alerts that are not cooling down and
    send them to the webhook; returns the alerts raised."""
    now = now or models.utcnow()
    raised = []
    with db_api.transaction() as session:
        for alert in rules.evaluate(session, now):
            if CONF.alerts.cooldown_s and _recently_raised(session, alert, now):
                continue
            kind = KIND_PREFIX + alert["rule"]
            events.record(session, alert["level"], alert["object_type"],
                          alert["object_uuid"], kind, alert["message"])
            raised.append(dict(alert, kind=kind, raised_at=iso8601(now)))
    # Sent after the commit: a webhook only hears of alerts that exist.
    url = CONF.alerts.webhook_url
    if url:
        for alert in raised:
            webhook.post(url, alert, CONF.alerts.webhook_timeout_s)
    return raised
