"""The shipped config documents every key, and bad configs name the key and file."""

import dataclasses
from pathlib import Path

import pytest

from sandboxd.config import Config, ConfigError, EngineConfig, find_config, load_config, parse_config

SHIPPED = Path(__file__).parents[2] / "config" / "sandboxd.toml"


def test_shipped_config_loads_and_equals_the_defaults():
    loaded = load_config(SHIPPED)
    assert dataclasses.replace(loaded, source=None) == Config()


def test_shipped_config_mentions_every_key():
    text = SHIPPED.read_text()
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        if section.name == "engines":  # an array of tables, none by default: documented commented out
            assert "# [[engines]]" in text
            for key in dataclasses.fields(EngineConfig):
                assert f"\n# {key.name} = " in text, f"engines.{key.name} is not documented"
            continue
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(section.default_factory()):  # type: ignore[misc]
            if key.name == "settings":  # [plugins.NAME] tables, documented by example
                continue
            assert f"\n{key.name} = " in text, f"{section.name}.{key.name} is not documented"


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[limits]\nexec_timeout = 5\n")
    with pytest.raises(ConfigError, match=r"c\.toml.*\[limits\].*'exec_timeout'"):
        load_config(path)


def test_wrong_type_names_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = "80"\n')
    with pytest.raises(ConfigError, match=r"\[server\] port: expected int, got str"):
        load_config(path)


def test_unknown_section_and_negative_values_are_errors():
    with pytest.raises(ConfigError, match="unknown section"):
        parse_config({"plugin": {}})
    with pytest.raises(ConfigError, match="negative"):
        parse_config({"limits": {"max_output_bytes": -1}})


def test_ints_are_accepted_where_floats_are_expected():
    assert parse_config({"limits": {"kill_grace_seconds": 1}}).limits.kill_grace_seconds == 1.0


def test_search_order_prefers_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.toml"
    path.write_text("[server]\nport = 9999\n")
    monkeypatch.setenv("SANDBOXD_CONFIG", str(path))
    monkeypatch.chdir(tmp_path)
    assert find_config().server.port == 9999


def test_missing_named_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        find_config(tmp_path / "nope.toml")


def test_plugin_settings_tables_are_kept_for_the_plugin():
    cfg = parse_config({"plugins": {"enabled": ["audit_log"], "audit_log": {"path": "/tmp/a"}}})
    assert cfg.plugins.enabled == ("audit_log",)
    assert cfg.plugins.settings == {"audit_log": {"path": "/tmp/a"}}
    with pytest.raises(ConfigError, match="audit_log"):
        parse_config({"plugins": {"audit_log": 5}})
