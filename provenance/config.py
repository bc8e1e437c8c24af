"""Every default and bound in one place.

Precedence for each setting: command-line flag, then environment variable,
then the ``[settings]`` table of the config file, then the default below.
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import BadInputError


# Frame-level Hamming radius per hash algorithm (bits), measured in bench/.
SCHEME_RADIUS = {"phash": 10, "pdq": 31}


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def default_db_path() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "provenance" / "index.db"


def default_cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "provenance"


def default_config_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "provenance" / "feeds.toml"



# The score a match needs to be listed by default (calibrated in bench/).
DEFAULT_MATCH_THRESHOLD = 0.40

@dataclass(frozen=True)
class Settings:
    db_path: Path = field(default_factory=default_db_path)
    cache_dir: Path = field(default_factory=default_cache_dir)
    # Sampling: one frame every `sample_interval_s` plus every stark scene cut
    # (see keyframes: the averaged frames hide most ordinary cuts). The
    # indexed side is sampled densely because two copies never share a sampling
    # phase and fast footage changes within an eighth of a second; queries use
    # every `query_interval_s`, which keeps search cheap (bench/README.md).
    sample_interval_s: float = 0.125
    query_interval_s: float = 0.25
    scene_threshold: float = 0.30
    # Frames under this detail score (0-100, see keyframes.detail_score) are
    # black, flat or blurred to nothing and would match everything alike; a
    # video whose frames are mostly under it (a heavily blurred repost) is
    # judged against its own median instead (keyframes.detail_threshold).
    min_detail: float = 12.0
    # Only the first `max_duration_s` seconds are hashed: enough to identify
    # footage, and a 10-hour upload cannot stall the batch.
    max_duration_s: float = 1800.0
    max_download_bytes: int = 2 * 1024**3
    max_download_seconds: float = 600.0
    socket_timeout_s: float = 20.0
    # How long a write waits for another process's transaction before giving up.
    busy_timeout_s: float = 60.0
    retries: int = 3
    max_height: int = 720
    hash_algorithm: str = "pdq"
    # Matching bounds: the Hamming radius per hash (None: SCHEME_RADIUS) and the
    # score a match needs to be listed, calibrated in bench/.
    match_radius: int | None = None
    match_score_threshold: float = DEFAULT_MATCH_THRESHOLD
    quiet: bool = False

    def radius_for(self, algorithm: str) -> int:
        return self.match_radius if self.match_radius is not None else SCHEME_RADIUS[algorithm]

    def with_overrides(self, **overrides: Any) -> "Settings":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_ENV = {
    "db_path": "PROVENANCE_DB",
    "cache_dir": "PROVENANCE_CACHE",
    "sample_interval_s": "PROVENANCE_SAMPLE_INTERVAL",
    "max_duration_s": "PROVENANCE_MAX_DURATION",
    "max_download_bytes": "PROVENANCE_MAX_DOWNLOAD_BYTES",
    "max_download_seconds": "PROVENANCE_MAX_DOWNLOAD_SECONDS",
    "socket_timeout_s": "PROVENANCE_SOCKET_TIMEOUT",
    "busy_timeout_s": "PROVENANCE_BUSY_TIMEOUT",
    "match_score_threshold": "PROVENANCE_MATCH_THRESHOLD",
    "match_radius": "PROVENANCE_MATCH_RADIUS",
    "hash_algorithm": "PROVENANCE_HASH",
}


# Durations, intervals and caps: zero or less would stop or break every run.
_POSITIVE = {"sample_interval_s", "query_interval_s", "max_duration_s", "max_download_bytes",
             "max_download_seconds", "socket_timeout_s", "busy_timeout_s", "max_height"}
# Bounds a value outside of which every answer would be wrong, not merely slow:
# a score is a share, a radius a count of bits (PDQ has 256).
_RANGES = {"match_score_threshold": (0.0, 1.0), "match_radius": (0, 256),
           "scene_threshold": (0.0, 1.0), "min_detail": (0.0, 100.0)}


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    invalid = BadInputError(f"setting {name}: {raw!r} is not a valid {kind}")
    # TOML and the environment give text, numbers and booleans: a boolean or a
    # table where a number belongs is a mistake, not 1 or 0.
    if kind in ("Path", "str"):
        if not isinstance(raw, str):
            raise invalid
        return Path(raw).expanduser() if kind == "Path" else _checked(name, raw, raw)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            return raw.lower() in {"1", "true", "yes", "on"}
        raise invalid
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise invalid
    try:
        number = float(raw)
    except ValueError as exc:
        raise invalid from exc
    if not math.isfinite(number) or (kind != "float" and not number.is_integer()):
        raise invalid
    return _checked(name, number if kind == "float" else int(number), raw)


def _checked(name: str, value: Any, raw: Any) -> Any:
    """``value`` within its bounds; errors quote ``raw``, the value as written."""
    if name in _POSITIVE and value <= 0:
        raise BadInputError(f"setting {name}: {raw!r} must be greater than 0")
    if name in _RANGES and not _RANGES[name][0] <= value <= _RANGES[name][1]:
        low, high = _RANGES[name]
        raise BadInputError(f"setting {name}: {raw!r} must be from {low:g} to {high:g}")
    if name == "hash_algorithm" and value not in SCHEME_RADIUS:
        raise BadInputError(f"setting {name}: {raw!r} is not one of {', '.join(SCHEME_RADIUS)}")
    return value


def load_settings(config_path: Path | None = None, **flags: Any) -> Settings:
    """Build settings from defaults, the config file, the environment and flags."""
    values: dict[str, Any] = {}
    named = config_path or (Path(os.environ["PROVENANCE_CONFIG"])
                            if os.environ.get("PROVENANCE_CONFIG") else None)
    path = named or default_config_path()
    if named is not None and not path.exists():
        # A file asked for by name and not there is a typo, not "use the defaults".
        raise BadInputError(f"config file {path} not found")
    if named is not None or path.is_file():  # /dev/null names no settings at all
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("settings", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise BadInputError(f"config file {path}: {exc}") from exc
        if not isinstance(table, dict):
            raise BadInputError(f"config file {path}: [settings] must be a table")
        known = {f.name for f in fields(Settings)}
        for key, raw in table.items():
            if key not in known:
                raise BadInputError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw)
    for name, var in _ENV.items():
        if os.environ.get(var):
            values[name] = _coerce(name, os.environ[var])
    values.update({k: v for k, v in flags.items() if v is not None})
    return Settings(**values)
