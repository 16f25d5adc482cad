"""The sample config in the repository matches the options in the code."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
GENERATOR_CONF = REPO / "etc" / "orionx" / "orionx-config-generator.conf"
SAMPLE = REPO / "etc" / "orionx" / "orionx.conf.sample"


def test_sample_config_is_current(tmp_path):
    generated = tmp_path / "orionx.conf.sample"
    subprocess.run(
        [sys.executable, "-m", "oslo_config.generator",
         "--config-file", str(GENERATOR_CONF), "--output-file", str(generated)],
        check=True, cwd=REPO, capture_output=True, timeout=120,
    )
    assert generated.read_text() == SAMPLE.read_text(), (
        "etc/orionx/orionx.conf.sample is stale; regenerate it with "
        "'make sample' (oslo-config-generator --config-file %s)" % GENERATOR_CONF.relative_to(REPO)
    )


def test_every_option_has_help():
    from orionx_agent.conf import opts as agent_opts
    from orionx_nova.conf import opts as controller_opts

    missing = [
        "[%s] %s" % (getattr(group, "name", group), opt.name)
        for list_opts in (controller_opts.list_opts, agent_opts.list_opts)
        for group, options in list_opts()
        for opt in options
        if not (opt.help or "").strip()
    ]
    assert missing == []
