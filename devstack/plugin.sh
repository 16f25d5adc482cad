#!/bin/bash
# devstack plugin of the OrionX pool (docs/openstack.md).
#
#   stack install      install the package into devstack's Python
#   stack post-config  orionx.conf, the database, the driver's account,
#                      Nova's compute driver
#   stack extra        start orionx-controller, orionx-api, orionx-agent;
#                      create the vGPU flavors
#   unstack            stop the services
#   clean              remove state and configuration

function install_orionx {
    setup_develop "$ORIONX_DIR"
}

function configure_orionx_placement {
    # The controller mirrors the pool into Placement with its own account.
    create_service_user "orionx" "admin"
    iniset "$ORIONX_CONF" placement sync_enabled True
    iniset "$ORIONX_CONF" placement auth_type password
    iniset "$ORIONX_CONF" placement auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$ORIONX_CONF" placement username orionx
    iniset "$ORIONX_CONF" placement password "$SERVICE_PASSWORD"
    iniset "$ORIONX_CONF" placement project_name "$SERVICE_PROJECT_NAME"
    iniset "$ORIONX_CONF" placement user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$ORIONX_CONF" placement project_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$ORIONX_CONF" placement region_name "$REGION_NAME"
}

function configure_orionx {
    sudo install -d -o "$STACK_USER" "$ORIONX_CONF_DIR" "$ORIONX_STATE_DIR"
    iniset "$ORIONX_CONF" DEFAULT state_dir "$ORIONX_STATE_DIR"
    iniset "$ORIONX_CONF" DEFAULT debug "$ENABLE_DEBUG_LOG_LEVEL"
    iniset "$ORIONX_CONF" DEFAULT transport_url "$(get_transport_url)"
    iniset "$ORIONX_CONF" database connection "$(database_connection_url orionx)"
    iniset "$ORIONX_CONF" api bind_host "$SERVICE_LISTEN_ADDRESS"
    iniset "$ORIONX_CONF" api bind_port "$ORIONX_API_PORT"
    # Local accounts: nova-compute's driver logs in with one (see below).
    iniset "$ORIONX_CONF" api auth_strategy local
    if [[ -n "$ORIONX_SIM_GPUS" ]]; then
        iniset "$ORIONX_CONF" agent sim_gpus "$ORIONX_SIM_GPUS"
    fi
    if is_service_enabled placement; then
        configure_orionx_placement
    fi
}

function init_orionx {
    recreate_database orionx
    orionx-manage --config-file "$ORIONX_CONF" db sync
    ORIONX_PASSWORD="$ORIONX_NOVA_PASSWORD" orionx-manage --config-file "$ORIONX_CONF" \
        user create "$ORIONX_NOVA_USER" --role admin
}

function configure_nova_for_orionx {
    sudo install -d -o "$STACK_USER" "$ORIONX_CHANNEL_DIR"
    iniset "$NOVA_CPU_CONF" DEFAULT compute_driver orionx.driver.OrionXLibvirtDriver
    iniset "$NOVA_CPU_CONF" orionx api_url "$ORIONX_API_URL"
    iniset "$NOVA_CPU_CONF" orionx api_user "$ORIONX_NOVA_USER"
    iniset "$NOVA_CPU_CONF" orionx api_password "$ORIONX_NOVA_PASSWORD"
    iniset "$NOVA_CPU_CONF" orionx channel_dir "$ORIONX_CHANNEL_DIR"
}

function start_orionx {
    local service
    for service in orionx-controller orionx-api orionx-agent; do
        if is_service_enabled "$service"; then
            run_process "$service" "$(which "$service") --config-file $ORIONX_CONF"
        fi
    done
}

function create_orionx_flavors {
    # One vGPU (a quarter of a GPU), two isolated vGPUs, one whole GPU.
    openstack flavor create vgpu.small --vcpus 4 --ram 8192 --disk 20 \
        --property resources1:CUSTOM_VGPU_COMPUTE=25 \
        --property resources1:CUSTOM_VGPU_MEMORY_MB=4096
    openstack flavor create vgpu.2x50 --vcpus 8 --ram 16384 --disk 40 \
        --property resources1:CUSTOM_VGPU_COMPUTE=50 \
        --property resources1:CUSTOM_VGPU_MEMORY_MB=8192 \
        --property resources2:CUSTOM_VGPU_COMPUTE=50 \
        --property resources2:CUSTOM_VGPU_MEMORY_MB=8192 \
        --property group_policy=isolate
    openstack flavor create gpu.native --vcpus 8 --ram 32768 --disk 40 \
        --property resources1:CUSTOM_NATIVE_GPU=1
}

function stop_orionx {
    local service
    for service in orionx-agent orionx-api orionx-controller; do
        if is_service_enabled "$service"; then
            stop_process "$service"
        fi
    done
}

function clean_orionx {
    sudo rm -rf "$ORIONX_STATE_DIR" "$ORIONX_CONF_DIR" "$ORIONX_CHANNEL_DIR"
}

if is_service_enabled orionx-api orionx-controller orionx-agent; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing the OrionX pool"
        install_orionx
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring the OrionX pool"
        configure_orionx
        if is_service_enabled orionx-api orionx-controller; then
            init_orionx
        fi
        if is_service_enabled n-cpu; then
            configure_nova_for_orionx
        fi
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting the OrionX pool"
        start_orionx
        if is_service_enabled n-api && [[ "$ORIONX_CREATE_FLAVORS" == "True" ]]; then
            create_orionx_flavors
        fi
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_orionx
    fi

    if [[ "$1" == "clean" ]]; then
        clean_orionx
    fi
fi
