#!/bin/sh
# Install the Debian packages a make target needs, and only those missing.
#   tools/install-debian-packages.sh base   # python3 with venv support, a C compiler
#   tools/install-debian-packages.sh test   # + PostgreSQL, MariaDB, RabbitMQ, chromium, shellcheck,
#                                           #   libvirt and QEMU (KVM guest tests)
# Runs apt-get (as root, or through sudo) only when something is missing.
set -eu

need=""

have_venv() {
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1
}

have_postgresql() {
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

have_mariadb() {
    command -v mariadbd >/dev/null 2>&1 || test -x /usr/sbin/mariadbd
}

have_rabbitmq() {
    test -x /usr/sbin/rabbitmq-server && test -x /usr/sbin/rabbitmqctl
}

have_shellcheck() {
    command -v shellcheck >/dev/null 2>&1
}

have_libvirt() {
    pkg-config --exists libvirt 2>/dev/null && test -x /usr/sbin/libvirtd \
        && command -v qemu-system-x86_64 >/dev/null 2>&1
}

# The console's browser tests drive Debian's chromium through its driver.
have_chromium() {
    test -x /usr/bin/chromium && test -x /usr/bin/chromedriver
}

command -v python3 >/dev/null 2>&1 || need="$need python3"
have_venv || need="$need python3-venv python3-dev"
command -v make >/dev/null 2>&1 || need="$need make"
# The C client library (guest_runtime/libcuda, libcuda.so.1) is compiled by
# the package's install with the system C compiler.
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"

if [ "${1:-base}" = "test" ]; then
    have_postgresql || need="$need postgresql"
    have_mariadb || need="$need mariadb-server"
    have_rabbitmq || need="$need rabbitmq-server"
    have_chromium || need="$need chromium chromium-driver"
    # The devstack plugin's test lints it.
    have_shellcheck || need="$need shellcheck"
    # KVM guests: libvirt-python builds against libvirt's headers; the
    # end-to-end test runs libvirtd with QEMU under software emulation.
    have_libvirt || need="$need libvirt-dev pkg-config libvirt-daemon-system qemu-system-x86"
fi

if [ -z "$need" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing:$need. This is not a Debian-like system; install them by hand." >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "Missing Debian packages:$need. Install them as root: apt-get install$need" >&2
        exit 1
    fi
fi

echo "Installing Debian packages:$need"
$SUDO apt-get update -q
# The services' own start-up at install time does not matter: the tests start
# private instances when none answers on the standard ports.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need
