"""OrionX pool: controller, REST API and OpenStack integration."""
