"""Options in ``[api]``: the REST API and operator console."""

from oslo_config import cfg

api_group = cfg.OptGroup(
    "api",
    title="REST API",
    help="The orionx-api service: /v1 JSON API, /ui console and /metrics.",
)

api_opts = [
    cfg.HostAddressOpt(
        "bind_host",
        default="127.0.0.1",
        help="Address the API listens on. Use 0.0.0.0 to serve other hosts.",
    ),
    cfg.PortOpt("bind_port", default=8700, help="TCP port the API listens on."),
    cfg.IntOpt(
        "threads",
        default=8,
        min=1,
        help="Worker threads that serve requests in one API process.",
    ),
    cfg.StrOpt(
        "auth_strategy",
        default="local",
        choices=[
            ("keystone", "Keystone tokens checked by keystonemiddleware's auth_token"),
            ("local", "Users and bearer tokens kept in the controller database"),
            ("noauth", "No authentication: every caller is an admin. Development only."),
        ],
        help="How API callers are authenticated.",
    ),
    cfg.IntOpt(
        "token_lifetime_s",
        default=12 * 3600,
        min=60,
        help="Seconds a bearer token from POST /v1/auth/tokens stays valid "
        "(auth_strategy = local).",
    ),
    cfg.IntOpt(
        "lockout_failure_attempts",
        default=10,
        min=0,
        help="Login attempts one source (client address) may make without "
        "the right password before it takes no password, for any account, "
        "for lockout_duration_s (auth_strategy = local; the API and the "
        "console's login alike). Each wrong password for an account also "
        "makes sources that sent one wait 1, 2, 4 ... s before trying it "
        "again; a source without failures is not kept waiting. 0 disables "
        "both.",
    ),
    cfg.IntOpt(
        "lockout_duration_s",
        default=300,
        min=1,
        help="Seconds a locked source is refused, and the longest an "
        "account makes failed sources wait. An admin ends both early with "
        "'orionx-manage user unlock NAME'.",
    ),
    cfg.StrOpt(
        "console_secret_key",
        secret=True,
        help="Key that signs the operator console's session cookies. Every "
        "orionx-api process behind one address needs the same key. Unset: a "
        "random key is kept in console-secret in the state directory.",
    ),
    cfg.BoolOpt(
        "console_cookie_secure",
        default=False,
        help="Send the console's session cookie only over HTTPS. Turn on "
        "when orionx-api is reached through TLS.",
    ),
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(api_opts, group=api_group)


def list_opts():
    return {api_group: api_opts}
