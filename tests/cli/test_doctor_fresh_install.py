"""The README's first-run sequence: check-config, then doctor, on a machine with no workspace yet."""

from __future__ import annotations

from tests.daemon import cli


def test_doctor_on_a_fresh_install_passes_and_says_the_repository_comes_at_start(fake_llm, write_config, tmp_path):
    config = write_config(fake_llm)
    assert not (tmp_path / "workspace").exists()
    result = cli(config, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "FAIL" not in result.stdout
    assert lines["git"].split()[1] == "ok" and "creates it at start" in lines["git"]
    fake_llm.fail_next(1, status=429)
    limited = cli(config, "doctor")
    assert limited.returncode == 0 and "reachable, rate-limited (429)" in limited.stdout, limited.stdout
