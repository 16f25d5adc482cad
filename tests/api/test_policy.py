"""The policy defaults: the generated sample is current and every documented
rule names a route the API has."""

import configparser
import pathlib
import re

from oslo_policy import generator

from orionx_nova import policies
from orionx_nova.api import app as api_app

ROOT = pathlib.Path(__file__).parents[2]
SAMPLE = ROOT / "etc" / "orionx" / "policy.yaml.sample"
GENERATOR_CONF = ROOT / "etc" / "orionx" / "orionx-policy-generator.conf"


def test_policy_sample_is_current():
    # Formatted from list_rules() directly rather than through the entry
    # point, so a stale installed package cannot make this pass or fail.
    fresh = "".join(generator._sort_and_format_by_section({"orionx": policies.list_rules()}))
    assert fresh == SAMPLE.read_text(), (
        "%s is stale; regenerate it with oslopolicy-sample-generator "
        "--config-file %s" % (SAMPLE.relative_to(ROOT), GENERATOR_CONF.relative_to(ROOT)))


def test_policy_entry_point_is_registered():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    entry_points = setup["options.entry_points"]["oslo.policy.policies"]
    assert "orionx = orionx_nova.policies:list_rules" in entry_points
    assert "namespace = orionx" in GENERATOR_CONF.read_text()


def test_documented_operations_are_real_routes():
    routes = set()
    for rule in api_app.create_app().url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes.update((method, path) for method in rule.methods)
    for rule in policies.list_rules():
        for operation in getattr(rule, "operations", []):
            assert (operation["method"], operation["path"]) in routes, rule.name


def test_rule_names_are_unique():
    names = [rule.name for rule in policies.list_rules()]
    assert len(names) == len(set(names))
