"""orionx-controller: the management plane's server side and background loops."""
