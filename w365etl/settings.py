"""Settings of a run (SPEC §2.3): a TOML file plus ``W365_…`` environment variables.

Read once per run by the entrypoints (CLI, flows) and handed to the library as plain values.
The environment wins over the file; nested keys are joined with ``__``
(``W365_PROVIDERS__PARTNER_CENTER__ADAPTER=sandbox``). Secrets are ``SecretStr`` so that they
never print.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, TypeAdapter, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ProviderKind = Literal["automatic", "manual"]
AdapterName = Literal["live", "sandbox", "record", "manual", "fake"]

from w365etl.ingest.tables import InputLimits

DEFAULT_DB_URL = "sqlite:///w365etl.sqlite"
CONFIG_FILE_NAME = "w365etl.toml"


class SettingsError(Exception):
    """The configuration cannot be read or is incomplete (exit status 2)."""


class ProviderSettings(BaseModel):
    """One provider code: its kind and the adapter that talks to it.

    ``adapter`` has no default for automatic providers: SPEC §2.2 forbids a silent choice.
    """

    kind: ProviderKind = "automatic"
    adapter: AdapterName | None = None
    sandbox_url: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_base_url: str = "https://api.partnercenter.microsoft.com"
    #: throughput at the provider: requests per minute for the partner and per customer
    partner_requests_per_minute: int = Field(default=300, ge=1)
    customer_requests_per_minute: int = Field(default=60, ge=1)
    #: customers provisioned in parallel
    max_workers: int = Field(default=4, ge=1, le=32)
    #: in-process sandbox only: simulated latency and fault rate (0..1)
    sandbox_latency_ms: int = Field(default=0, ge=0)
    sandbox_fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    #: adapter ``fake`` only (tests and demonstrations): product numbers it refuses
    fake_refused_products: list[str] = Field(default_factory=list)
    #: adapter ``fake`` only: provider customer ids it does not know
    fake_unknown_accounts: list[str] = Field(default_factory=list)


def _default_providers() -> dict[str, ProviderSettings]:
    return {
        "partner_center": ProviderSettings(kind="automatic", adapter=None),
        "manual": ProviderSettings(kind="manual", adapter="manual"),
    }


class DefaultSettings(BaseModel):
    """Defaults of SPEC §2.3, used when neither the line nor the catalog says."""

    payment_terms: str = "Net 30"
    process_refunds: Literal["Use Global Setting", "Yes", "No"] = "Use Global Setting"
    contract_end_date: dt.date = dt.date(2099, 12, 31)
    provision_as: Literal["New", "Existing"] = "New"
    fulfill_order: bool = True
    billing_frequency: Literal["Monthly", "Quarterly", "Annually", "Triennial"] = "Monthly"
    provisioning_unit: Literal["Monthly", "Annual"] = "Monthly"
    contract_product_type: Literal["CSP", "Support Contract", "Managed Services"] = "CSP"


_LIMITS = InputLimits()


class LimitSettings(BaseModel):
    """How much one order file may hold (issue 6). A file over a limit is rejected whole
    (``FILE_REJECTED``, the message names the limit and this setting); the other files run.

    Sized for a nightly batch of millions of lines. Checked before loading the whole file where
    the format allows: size on disk first, an xlsx archive's directory before inflating it.
    """

    #: bytes on disk (default 2 GiB)
    max_file_bytes: int = Field(default=_LIMITS.max_file_bytes, ge=1)
    #: data rows in one file, all sheets together, blank rows included (default 10 M)
    max_rows: int = Field(default=_LIMITS.max_rows, ge=1)
    #: data rows × columns in one file (default 250 M)
    max_cells: int = Field(default=_LIMITS.max_cells, ge=1)
    #: inflated size of all parts of an xlsx archive (default 4 GiB)
    max_xlsx_uncompressed_bytes: int = Field(default=_LIMITS.max_xlsx_uncompressed_bytes, ge=1)
    #: inflated : compressed size of any xlsx part over 1 MiB (default 100; real sheets 5–20)
    max_xlsx_compression_ratio: int = Field(default=_LIMITS.max_xlsx_compression_ratio, ge=1)

    def input_limits(self) -> InputLimits:
        return InputLimits(**self.model_dump())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="W365_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    db_url: SecretStr = SecretStr(DEFAULT_DB_URL)
    out_dir: Path = Path("out")
    reference_dir: Path | None = None
    inbox_dir: Path = Path("inbox")
    #: time zone of the nightly schedule (`w365etl serve`)
    schedule_timezone: str = "UTC"
    #: Number locale of money written as text (SPEC §2.1): en-US "1,299.00", de-DE "1.299,00".
    number_locale: Literal["en-US", "de-DE", "fr-FR"] = "en-US"
    #: Order of day and month in text dates: MDY (D365 en-US), DMY or YMD.
    date_order: Literal["MDY", "DMY", "YMD"] = "MDY"
    defaults: DefaultSettings = Field(default_factory=DefaultSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    #: SPEC §5: rows per xlsx sheet before it is cut (Excel's own limit is 1 048 576).
    report_max_rows: int = Field(default=100_000, ge=1, le=1_048_575)
    #: a run with more lines than this is processed in partitions of about this many lines
    #: (whole customers and orders; flat CSV exports only), so memory stays bounded
    partition_lines: int = Field(default=250_000, ge=1)
    #: where partitions are spilled while a partitioned run works (default: the system's temp folder)
    spill_dir: Path | None = None
    #: how much one order file may hold (``[limits]`` in TOML, ``W365_LIMITS__…``)
    limits: LimitSettings = Field(default_factory=LimitSettings)

    @field_validator("providers", mode="after")
    @classmethod
    def _keep_builtin_providers(cls, value: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        merged = _default_providers()
        merged.update({code.lower(): provider for code, provider in value.items()})
        return merged

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init carries the TOML file and CLI options; the environment wins over the file
        # (SPEC §2.3) but explicit command-line options win over both.
        return (env_settings, init_settings)

    def provider(self, code: str) -> ProviderSettings | None:
        return self.providers.get(code.lower())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as error:
        raise SettingsError(f"configuration file {path} does not exist") from error
    except (tomllib.TOMLDecodeError, OSError) as error:
        raise SettingsError(f"configuration file {path} cannot be read: {error}") from error


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (else ``./w365etl.toml`` if present) and the environment.

    ``overrides`` are command-line options; ``None`` values are ignored so that an option
    left out keeps the file's or the environment's value.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        file_values = _read_toml(config_file)
    elif Path(CONFIG_FILE_NAME).is_file():
        file_values = _read_toml(Path(CONFIG_FILE_NAME))
    try:
        settings = Settings(**file_values)
        cli_values = {key: value for key, value in overrides.items() if value is not None}
        if cli_values:
            # validated field by field: re-running the settings sources would let the
            # environment win over an explicit command-line option
            checked = {key: TypeAdapter(Settings.model_fields[key].annotation).validate_python(value)
                       for key, value in cli_values.items()}
            settings = settings.model_copy(update=checked)
    except ValidationError as error:
        raise SettingsError(_describe_validation_error(error)) from None
    return settings


def _describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        env_name = "W365_" + "__".join(str(part).upper() for part in item["loc"])
        parts.append(f"setting {where} ({env_name}): {item['msg']}")
    return "invalid configuration: " + "; ".join(parts)
