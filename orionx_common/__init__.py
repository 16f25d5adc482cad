"""What the controller side (``orionx_nova``) and the host side
(``orionx_agent``) share, so that neither loads the other: the ``[DEFAULT]``
options and command-line parsing, the management plane's RPC transport and
both rpcapi modules with their topics and versions, and data-plane session
tokens.

It imports oslo libraries and the standard library only: no database, no
scheduler, nothing of either side (``tests/unit/test_import_rules.py``).
"""

import warnings

# oslo.messaging imports oslo.service, which imports eventlet, and eventlet
# warns on import that it is deprecated. Nothing of ours runs on eventlet and
# operators cannot act on the warning, so our commands do not print it.
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
