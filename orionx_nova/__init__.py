"""OrionX pool: controller, REST API and OpenStack integration."""

import warnings

# oslo.messaging imports oslo.service, which imports eventlet, and eventlet
# warns on import that it is deprecated. Nothing of ours runs on eventlet and
# operators cannot act on the warning, so our commands do not print it.
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
