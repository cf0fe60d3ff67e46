"""Settings (SPEC §2.3): a TOML file plus W365_… variables; the environment wins; no secret prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from w365etl.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith("W365_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_have_no_adapter_for_partner_center_and_spec_defaults(tmp_path):
    settings = load_settings()
    assert settings.provider("partner_center").adapter is None  # SPEC §2.2: no silent default
    assert settings.provider("partner_center").kind == "automatic"
    assert settings.provider("manual").adapter == "manual"
    assert settings.defaults.payment_terms == "Net 30"
    assert settings.defaults.process_refunds == "Use Global Setting"
    assert str(settings.defaults.contract_end_date) == "2099-12-31"
    assert settings.defaults.provision_as == "New" and settings.defaults.fulfill_order is True
    assert settings.report_max_rows == 100_000


def test_the_environment_wins_over_the_file_with_nested_keys(tmp_path, monkeypatch):
    config = write(tmp_path, '[providers.partner_center]\nadapter = "record"\n[defaults]\npayment_terms = "Net 45"\n')
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "sandbox")
    settings = load_settings(config)
    assert settings.provider("partner_center").adapter == "sandbox"
    assert settings.defaults.payment_terms == "Net 45"


def test_w365etl_toml_in_the_working_directory_is_read_when_no_file_is_given(tmp_path):
    (tmp_path / "w365etl.toml").write_text('number_locale = "de-DE"\n', encoding="utf-8")
    assert load_settings().number_locale == "de-DE"


def test_command_line_options_win_over_file_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("W365_OUT_DIR", "from-env")
    assert load_settings(out_dir=Path("from-cli")).out_dir == Path("from-cli")
    assert load_settings(out_dir=None).out_dir == Path("from-env")


def test_a_bad_value_names_the_setting_and_its_environment_variable(tmp_path):
    config = write(tmp_path, '[providers.partner_center]\nadapter = "magic"\n')
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    assert "providers.partner_center.adapter" in str(error.value)
    assert "W365_PROVIDERS__PARTNER_CENTER__ADAPTER" in str(error.value)


def test_an_unreadable_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings(write(tmp_path, "this is = = not toml"))


def test_secrets_never_print(tmp_path, monkeypatch):
    monkeypatch.setenv("W365_DB_URL", "postgresql+psycopg://billing:s3cret@db/prod")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__CLIENT_SECRET", "pc-secret")
    settings = load_settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "s3cret" not in shown and "pc-secret" not in shown
    assert settings.db_url.get_secret_value().endswith("@db/prod")
