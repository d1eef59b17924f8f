"""Chronon run environment resolution, following upstream ``api/py/ai/chronon/repo/run.py``.

Upstream ``set_runtime_env`` merges, highest priority first::

    conf.metaData.modeToEnvMap[mode]          ("conf_env")
    teams.json[team][context][mode]           ("team_env")
    teams.json["default"][context][mode]      ("default_env")
    teams.json["default"]["common_env"]       ("common_env")

where ``context`` is the first folder of the conf path (``production``). This package resolves the
same levels with ``context = production`` and lets the ``[chronon] env`` setting add one more,
more specific, level on top of the team's production section (``teams[team][env][mode]``, only
when env is not ``production``), so a staging deployment can override just what differs.

Upstream run.py never reads a team-level ``common_env``; we read it as a level between the default
``common_env`` and the ``production`` sections, because a team-wide value is more specific than
the repo-wide one yet less specific than a per-mode value. With the reference teams.json (no
team ``common_env``) this gives exactly upstream's result.

Upstream also lets variables already set in the submitting process win over everything. We do not:
the worker's environment must not silently change what a reviewed plan says will run.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRODUCTION = "production"

def effective_mode(mode: str) -> str:
    return "streaming" if "streaming" in mode else mode


def env_layers(
    conf: Mapping[str, Any],
    teams: Mapping[str, Any],
    team: str,
    mode: str,
    env: str = PRODUCTION,
) -> list[tuple[str, dict[str, str]]]:
    """The env levels, lowest priority first, each as ``(level name, variables)``.

    Exposed separately from :func:`resolve_env` so tests and the plan can show which level a
    value came from.
    """
    mode = effective_mode(mode)
    default = teams.get("default", {}) or {}
    team_section = teams.get(team, {}) if team else {}
    if team and team not in teams:
        raise ValueError(f"team {team!r} of the config is not in teams.json (known: {sorted(teams)})")
    meta = conf.get("metaData", {}) or {}
    layers: list[tuple[str, dict[str, str]]] = [
        ("default.common_env", dict(default.get("common_env", {}) or {})),
        (f"{team}.common_env", dict(team_section.get("common_env", {}) or {})),
        (f"default.{PRODUCTION}.{mode}", dict((default.get(PRODUCTION, {}) or {}).get(mode, {}) or {})),
        (f"{team}.{PRODUCTION}.{mode}", dict((team_section.get(PRODUCTION, {}) or {}).get(mode, {}) or {})),
    ]
    if env and env != PRODUCTION:
        layers.append((f"{team}.{env}.{mode}", dict((team_section.get(env, {}) or {}).get(mode, {}) or {})))
    layers.append(("metaData.modeToEnvMap", dict((meta.get("modeToEnvMap", {}) or {}).get(mode, {}) or {})))
    return layers


def resolve_env(
    conf: Mapping[str, Any],
    teams: Mapping[str, Any],
    team: str,
    mode: str,
    env: str = PRODUCTION,
) -> dict[str, str]:
    """The merged environment; higher levels override lower ones key by key."""
    merged: dict[str, str] = {}
    for _, layer in env_layers(conf, teams, team, mode, env):
        for key, value in layer.items():
            if value is None:
                continue
            merged[str(key)] = str(value)
    return merged


def env_sources(
    conf: Mapping[str, Any], teams: Mapping[str, Any], team: str, mode: str, env: str = PRODUCTION
) -> dict[str, str]:
    """For each resolved key, the name of the level its value came from."""
    sources: dict[str, str] = {}
    for name, layer in env_layers(conf, teams, team, mode, env):
        for key, value in layer.items():
            if value is not None:
                sources[str(key)] = name
    return sources
