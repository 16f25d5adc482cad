"""Sending an alert to ``[alerts] webhook_url`` as a JSON POST."""

import json
import urllib.error
import urllib.request

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def post(url, alert, timeout_s):
    """POST ``alert`` as JSON to ``url``; True when it answered 2xx. A
    failure is logged, not raised: the alert is already an event."""
    body = json.dumps(alert).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "orionx-controller"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, timed out, bad URL
        LOG.warning("Alert webhook %s failed for %s: %s; the alert is still recorded "
                    "as an event", url, alert["kind"], exc)
        return False
    if not 200 <= status < 300:
        LOG.warning("Alert webhook %s answered HTTP %d for %s; the alert is still "
                    "recorded as an event", url, status, alert["kind"])
        return False
    return True
