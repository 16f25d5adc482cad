"""Options in ``[agent]``: GPU discovery, the management plane, GPU server
supervision and the gateway that routes guests to their vGPUs."""

from oslo_config import cfg

agent_group = cfg.OptGroup(
    "agent",
    title="Host agent",
    help="orionx-agent: discovers GPUs, registers with the controller, "
    "supervises GPU servers and routes guests to their vGPUs.",
)

agent_opts = [
    cfg.StrOpt(
        "sim_gpus",
        default="",
        help="Simulated GPUs to offer when NVML finds no NVIDIA driver, as "
        "COUNTxMEMORY_MB, for example 2x16384. Empty means none: a host "
        "without GPUs still runs the agent to reach remote GPUs.",
    ),
    cfg.IntOpt(
        "heartbeat_interval",
        default=10,
        min=1,
        help="Seconds between two heartbeats to the controller. Keep it well "
        "below [controller] heartbeat_timeout.",
    ),
    cfg.IntOpt(
        "register_retry_interval",
        default=5,
        min=1,
        help="Seconds between two attempts to register while no controller "
        "answers: the agent may start before the controller.",
    ),
    cfg.StrOpt(
        "gateway_unix_socket_path",
        default="",
        help="Unix socket on which local guests (processes, containers) connect. "
        "Empty means gateway.sock in [DEFAULT] state_dir.",
    ),
    cfg.StrOpt(
        "gateway_tcp_listen",
        default="0.0.0.0:8701",
        help="HOST:PORT on which guests of other hosts and the agents relaying "
        "for them connect. Port 0 picks a free port. Empty disables TCP: "
        "this host's GPUs then serve local guests only.",
    ),
    cfg.StrOpt(
        "gateway_tls_cert_file",
        default="",
        help="PEM certificate (chain) of this host's gateway. Set with "
        "gateway_tls_key_file, gateway_tcp_listen speaks TLS only and is "
        "advertised as tls:HOST:PORT: guests of other hosts and relaying "
        "agents then encrypt everything they send, the GPU's memory included. "
        "The certificate must name gateway_advertise_host (DNS name or IP "
        "address in subjectAltName).",
    ),
    cfg.StrOpt(
        "gateway_tls_key_file",
        default="",
        help="PEM private key of gateway_tls_cert_file.",
    ),
    cfg.StrOpt(
        "gateway_tls_ca_file",
        default="",
        help="CA bundle this agent trusts when it relays a local guest to "
        "another host's TLS gateway. Empty: the system's trusted CAs.",
    ),
    cfg.StrOpt(
        "gateway_advertise_host",
        default="",
        help="Address other hosts use to reach gateway_tcp_listen. Empty means "
        "the listen address, or [DEFAULT] host when listening on all addresses.",
    ),
    cfg.BoolOpt(
        "direct_remote",
        default=False,
        help="Give local guests the endpoint of a remote vGPU's host, so they "
        "connect to it directly instead of through this agent's relay. Enable "
        "it only where guests can reach the other hosts' gateway_tcp_listen; "
        "the relay stays as the fallback.",
    ),
    cfg.IntOpt(
        "gateway_max_connections_per_source",
        default=1024,
        min=1,
        help="Connections one source (a TCP peer address, or a local user id "
        "on the unix socket) may have in the gateway at once: waiting for "
        "HELLO, being routed, or relayed to another host. The next one is "
        "answered CUDA_ERROR_OUT_OF_MEMORY naming this option. Connections "
        "handed to a GPU server no longer count here; [gpu_server] "
        "max_sessions_per_vgpu bounds those.",
    ),
    cfg.StrOpt(
        "metrics_listen",
        default="",
        help="HOST:PORT where the agent serves /metrics in Prometheus format: "
        "per-session device time, memory, evictions and data-plane bytes of "
        "this host's GPU servers, and the gateway's routed connections. A bare "
        "PORT (or :PORT) listens on 127.0.0.1 only. An address other than "
        "loopback needs metrics_token. Empty: not served.",
    ),
    cfg.StrOpt(
        "metrics_token",
        default="",
        secret=True,
        help="Bearer token a scraper must send (Authorization: Bearer TOKEN) "
        "to read /metrics; other requests are answered 401. Required when "
        "metrics_listen is not a loopback address. Empty: no token asked "
        "(loopback only).",
    ),
    cfg.BoolOpt(
        "metrics_allocation_labels",
        default=False,
        help="Label per-session metrics with their allocation and vGPU ids. "
        "Off by default: whoever scrapes the agent sees every project's "
        "sessions, and allocation ids are the project's to see; the "
        "controller's API shows them per project.",
    ),
    cfg.PortOpt(
        "vsock_port",
        default=8702,
        help="vsock port on which KVM guests (virtio-vsock, host CID 2) reach "
        "the agent; the guest runtime connects to it unless ORIONX_VSOCK_PORT "
        "says otherwise. 0 disables vsock: VMs then use their serial channel.",
    ),
    cfg.FloatOpt(
        "gpu_server_restart_delay",
        default=1.0,
        min=0.1,
        help="Seconds before restarting a GPU server that exited; doubled after "
        "each crash that follows quickly on a start, up to "
        "gpu_server_restart_delay_max.",
    ),
    cfg.FloatOpt(
        "gpu_server_restart_delay_max",
        default=60.0,
        min=1.0,
        help="Longest wait, in seconds, before restarting a GPU server that "
        "keeps crashing.",
    ),
]


def register_opts(conf):
    conf.register_group(agent_group)
    conf.register_opts(agent_opts, group=agent_group)


def list_opts():
    return {agent_group: agent_opts}
