#!/bin/bash
# Stand-ins for the devstack functions plugin.sh calls: each records what it
# was asked to do in $ACTIONS (one line per call) instead of doing it, so a
# test can source settings and plugin.sh for one phase and read the effects.
# Usage: stub_devstack.sh ENABLED_SERVICES PHASE [SUBPHASE]
# shellcheck disable=SC2034  # devstack globals read by the plugin

set -eu
ENABLED_SERVICES=$1
shift

DEST=/opt/stack
DATA_DIR=/opt/stack/data
SERVICE_HOST=192.0.2.10
SERVICE_LISTEN_ADDRESS=0.0.0.0
SERVICE_PASSWORD="service-secret"
SERVICE_PROJECT_NAME=service
SERVICE_DOMAIN_NAME=Default
REGION_NAME=RegionOne
KEYSTONE_SERVICE_URI=http://192.0.2.10/identity
STACK_USER=stack
ENABLE_DEBUG_LOG_LEVEL=True
NOVA_CPU_CONF=/etc/nova/nova-cpu.conf

record() { echo "$*" >> "$ACTIONS"; }

is_service_enabled() {
    local service
    for service in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$service,"* ]] && return 0
    done
    return 1
}
enable_service() {
    local service
    for service in "$@"; do
        is_service_enabled "$service" || ENABLED_SERVICES="$ENABLED_SERVICES,$service"
    done
}
echo_summary() { :; }
setup_develop() { record "setup_develop $*"; }
iniset() { record "iniset $1 [$2] $3 = $4"; }
get_transport_url() { echo "rabbit://stackrabbit:secret@192.0.2.10:5672/"; }
database_connection_url() { echo "mysql+pymysql://root:secret@127.0.0.1/$1"; }
recreate_database() { record "recreate_database $*"; }
create_service_user() { record "create_service_user $*"; }
run_process() { record "run_process $1: $2"; }
stop_process() { record "stop_process $*"; }
sudo() { record "sudo $*"; }
which() { echo "/usr/local/bin/$1"; }
openstack() { record "openstack $*"; }
orionx-manage() { record "ORIONX_PASSWORD=${ORIONX_PASSWORD:-} orionx-manage $*"; }

here=$(dirname "$0")
plugin=$here/../../devstack
# shellcheck source=devstack/settings
source "$plugin/settings"
# shellcheck source=devstack/plugin.sh
source "$plugin/plugin.sh"
