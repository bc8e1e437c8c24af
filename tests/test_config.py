"""Settings: a value that would make every answer wrong is refused with a clear
message and exit 3, never quietly turned into something else."""
from __future__ import annotations

import pytest

from conftest import SAMPLES


@pytest.mark.parametrize("line, problem", [
    ("max_duration_s = true", "setting max_duration_s: True is not a valid float"),
    ("match_radius = 31.9", "setting match_radius: 31.9 is not a valid int | None"),
    ("match_radius = [1]", "setting match_radius: [1] is not a valid int | None"),
    ("max_height = 1.5", "setting max_height: 1.5 is not a valid int"),
    ("match_score_threshold = 5", "setting match_score_threshold: 5 must be from 0 to 1"),
    ("hash_algorithm = 5", "setting hash_algorithm: 5 is not a valid str"),
    ("hash_algorithm = \"md5\"", "setting hash_algorithm: 'md5' is not one of phash, pdq"),
])
def test_a_wrong_setting_in_the_config_file_is_refused(cli, tmp_path, line, problem):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[settings]\n{line}\n")
    done = cli("--config", str(cfg), "add", str(SAMPLES / "basketball.mp4"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert problem in done.stderr, done.stderr
    assert done.stdout == ""


def test_a_wrong_setting_in_the_environment_is_refused(cli, monkeypatch):
    monkeypatch.setenv("PROVENANCE_MATCH_RADIUS", "-5")
    done = cli("check", str(SAMPLES / "basketball.mp4"))
    assert done.returncode == 3 and "must be from 0 to 256" in done.stderr, done.stderr


def test_settings_that_are_not_a_table_or_a_config_file_not_there_are_refused(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("settings = 5\n")
    done = cli("--config", str(cfg), "stats")
    assert done.returncode == 3 and "[settings] must be a table" in done.stderr, done.stderr
    missing = tmp_path / "nope.toml"
    for args, env in (((f"--config={missing}", "stats"), {}),
                      (("stats",), {"PROVENANCE_CONFIG": str(missing)})):
        done = cli(*args, env={**cli.keywords["env"], **env})
        assert done.returncode == 3, done.stderr
        assert f"config file {missing} not found" in done.stderr


def test_good_values_are_taken(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[settings]\nmatch_radius = 31\nmatch_score_threshold = 0.4\nquiet = true\n")
    assert cli("--config", str(cfg), "add", str(SAMPLES / "basketball.mp4")).returncode == 0
