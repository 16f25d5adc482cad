#!/bin/bash
# devstack plugin of the OrionX pool.
#
# Phases handled so far: install the package, write orionx.conf with
# devstack's database, sync the schema, run orionx-api, stop it on unstack.
# Nova's compute driver, flavors, the controller and agents are added by the
# OpenStack integration work (see docs/devstack.md).

function install_orionx {
    setup_develop "$ORIONX_DIR"
}

function configure_orionx {
    sudo install -d -o "$STACK_USER" "$ORIONX_CONF_DIR" "$ORIONX_STATE_DIR"
    iniset "$ORIONX_CONF" DEFAULT state_dir "$ORIONX_STATE_DIR"
    iniset "$ORIONX_CONF" DEFAULT debug "$ENABLE_DEBUG_LOG_LEVEL"
    iniset "$ORIONX_CONF" database connection "$(database_connection_url orionx)"
    iniset "$ORIONX_CONF" api bind_host "$SERVICE_LISTEN_ADDRESS"
    iniset "$ORIONX_CONF" api bind_port "$ORIONX_API_PORT"
    iniset "$ORIONX_CONF" api auth_strategy keystone
    iniset "$ORIONX_CONF" DEFAULT transport_url "$(get_transport_url)"
}

function init_orionx {
    recreate_database orionx
    orionx-manage --config-file "$ORIONX_CONF" db sync
}

function start_orionx {
    run_process orionx-api "$(which orionx-api) --config-file $ORIONX_CONF"
}

function stop_orionx {
    stop_process orionx-api
}

if is_service_enabled orionx-api; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing the OrionX pool"
        install_orionx
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring the OrionX pool"
        configure_orionx
        init_orionx
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting the OrionX pool"
        start_orionx
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_orionx
    fi

    if [[ "$1" == "clean" ]]; then
        sudo rm -rf "$ORIONX_STATE_DIR"
    fi
fi
