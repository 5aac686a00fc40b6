"""Where settings come from: defaults < ``pepper.toml`` < environment < explicit arguments."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pepper.errors import ConfigError
from pepper.model.settings import Settings
from pepper.store.location import check_database_url, check_location, is_postgres_url

CONFIG_FILE = "pepper.toml"
#: Environment variables read, and the setting each one sets.
ENVIRONMENT = {"PEPPER_DB": "db", "PEPPER_HOME": "home", "PEPPER_HOST_ID": "host_id"}
DEFAULTS = Settings()


def config_path(environ: Mapping[str, str], cwd: Path) -> Path | None:
    """``$PEPPER_CONFIG`` if set (it must exist), else ``./pepper.toml`` if present."""
    named = environ.get("PEPPER_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"PEPPER_CONFIG names {named!r}, which is not a file")
        return path
    path = cwd / CONFIG_FILE
    return path if path.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a ``pepper.toml`` (its ``[pepper]`` table, or its top level)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from None
    values = data.get("pepper", data)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [pepper] must be a table of settings")
    if values is not data and "alerts" in data:  # [[alerts]] tables beside a [pepper] table
        values["alerts"] = data["alerts"]
    for key in ("db", "home"):  # relative paths are relative to the file
        value = values.get(key)
        if (
            isinstance(value, str)
            and value != ":memory:"
            and not is_postgres_url(value)
            and not Path(value).is_absolute()
        ):
            values[key] = str(path.parent / value)
    try:
        Settings.build(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}", field=exc.field) from None
    return values


def load_settings(
    explicit: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Settings:
    """The runtime's settings; ``explicit`` values that are not ``None`` win over everything."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, Any] = {}
    path = config_path(environ, cwd)
    if path is not None:
        values.update(read_config_file(path))
    for variable, name in ENVIRONMENT.items():
        if environ.get(variable):
            values[name] = environ[variable]
    values.update({k: v for k, v in explicit.items() if v is not None})
    if "db" not in values:
        values["db"] = str(Path(values.get("home", DEFAULTS.home)) / "pepper.db")
    if isinstance(values["db"], str):
        check_location(values["db"])
        check_database_url(values["db"])
    return Settings.build(values)


def make_home_for_db(settings: Settings) -> None:
    """Create pepper's home folder when the database lives in it (the default, ``.pepper/pepper.db``).

    Any other missing folder is left alone: the database refuses to open there, rather than appear in a
    folder made for a mistyped path.
    """
    if settings.db == ":memory:" or is_postgres_url(settings.db):
        return
    folder = Path(os.path.abspath(Path(settings.db).expanduser())).parent
    if folder == Path(os.path.abspath(Path(settings.home).expanduser())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create pepper's folder {str(folder)!r}: {exc.strerror}", field="home") from None
