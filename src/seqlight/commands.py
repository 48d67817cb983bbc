"""The command line's own subcommands (``configs``, ``forecast``, ``classify``, ``export``, ``report``,
``reproduce``) and the packaged configs it resolves by name.

The book's experiments ship inside the package (``seqlight/configs/*.yaml``), so an installed seqlight runs
them from any folder: ``seqlight fit --config jena_gru`` (or ``jena_gru.yaml``, ``-c jena_gru``,
``--config=jena_gru``) reads the packaged file when no file of that name exists in the current folder; a
path is used as given. ``seqlight configs`` lists them with their book section and title, read from the
first comment line of each file (``# Deep Learning with Python, 6.3.5 "A first recurrent baseline": ...``).

:func:`run_command` is the dispatcher ``seqlight.cli.main`` asks first: a subcommand in :data:`COMMANDS` is
run here, anything else goes to LightningCLI (fit, validate, test, predict).
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from lightning.pytorch.cli import LightningArgumentParser

from seqlight.errors import SeqlightError
from seqlight.home import resolve_run_paths

__all__ = [
    "COMMANDS",
    "CONFIG_DIR",
    "ConfigInfo",
    "UnknownConfigError",
    "config_infos",
    "config_names",
    "packaged_config",
    "resolve_config_args",
    "run_command",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
_CONFIG_FLAGS = ("--config", "-c")
_SUFFIXES = (".yaml", ".yml")
_NAME = re.compile(r"\w[\w.-]*")  # a config name, as opposed to a path or an inline YAML/JSON config


class UnknownConfigError(SeqlightError, FileNotFoundError):
    """``--config`` names neither a file nor a packaged config."""


class ConfigInfo(NamedTuple):
    name: str
    section: str
    title: str
    path: Path


# ---------------------------------------------------------------------------------------------------------
# the packaged configs


def config_names() -> list[str]:
    """The names of the packaged configs (``jena_gru``, ...), sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def packaged_config(name: str) -> Path:
    """The packaged config called ``name`` (with or without ``.yaml``); :class:`UnknownConfigError` listing the
    available names when there is none."""
    stem = next((name[: -len(s)] for s in _SUFFIXES if name.endswith(s)), name)
    path = CONFIG_DIR / f"{stem}.yaml"
    if _NAME.fullmatch(stem) and path.is_file():
        return path
    close = difflib.get_close_matches(stem, config_names(), n=1)
    guess = f"Did you mean {close[0]}? " if close else ""
    raise UnknownConfigError(
        f"--config {name}: there is no such file, and no packaged config of that name. {guess}The packaged configs "
        f"are: {', '.join(config_names())} (`seqlight configs` lists them with their book sections); or give the "
        "path of a YAML file."
    )


def _section_and_title(first_line: str) -> tuple[str, str]:
    """``("6.3.5", "A first recurrent baseline")`` from ``# Deep Learning with Python, 6.3.5 "A first ..." ...``."""
    text = first_line.lstrip("#").strip()
    text = re.sub(r"^Deep Learning with Python,?\s*", "", text)
    section = re.match(r"\d+(?:\.\d+)*", text)
    quoted = re.search(r'"([^"]+)"', text)
    if quoted:
        title = quoted.group(1)
    else:  # no quoted title: what follows the section number
        title = text[section.end() :] if section else text
        title = title.strip(" ,:;.-")
    return (section.group(0) if section else ""), title


def config_infos() -> list[ConfigInfo]:
    """Every packaged config with its book section and title, in the book's order."""
    infos = []
    for name in config_names():
        path = CONFIG_DIR / f"{name}.yaml"
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        section, title = _section_and_title(first) if first.startswith("#") else ("", "")
        infos.append(ConfigInfo(name, section, title, path))
    return sorted(infos, key=lambda i: (tuple(int(x) for x in i.section.split(".") if x.isdigit()), i.name))


# ---------------------------------------------------------------------------------------------------------
# --config NAME


def _resolve_config_value(value: str) -> str:
    if Path(value).expanduser().is_file():
        return value  # a path (a file here wins over a packaged config of the same name)
    if _NAME.fullmatch(value):
        return str(packaged_config(value))
    return value  # a path that does not exist, or an inline config: jsonargparse says what is wrong


def resolve_config_args(args: list[str]) -> list[str]:
    """``args`` with each ``--config``/``-c`` value that names a packaged config (and no existing file) replaced
    by that config's path; :class:`UnknownConfigError` for a name that is neither."""
    out = list(args)
    i = 0
    while i < len(out):
        arg = out[i]
        if arg == "--":
            break
        if arg in _CONFIG_FLAGS and i + 1 < len(out):
            out[i + 1] = _resolve_config_value(out[i + 1])
            i += 2
            continue
        flag, eq, value = arg.partition("=")
        if eq and flag in _CONFIG_FLAGS:
            out[i] = f"{flag}={_resolve_config_value(value)}"
        i += 1
    return out


# ---------------------------------------------------------------------------------------------------------
# the parser LightningCLI builds: relative run folders go to $SEQLIGHT_HOME


class HomeAwareParser(LightningArgumentParser):
    """LightningCLI's parser, except that a relative logger ``save_dir`` is resolved against ``$SEQLIGHT_HOME``
    as soon as the configuration is parsed (before ``--ckpt_path last`` looks for the newest run)."""

    def parse_args(self, *args, **kwargs):
        config = super().parse_args(*args, **kwargs)
        resolve_run_paths(config)
        return config


# ---------------------------------------------------------------------------------------------------------
# subcommands


def list_configs(args: list[str]) -> None:
    """``seqlight configs``: the packaged configs, their book section and title."""
    if args and args[0] in ("-h", "--help"):
        print("usage: seqlight configs\n\nList the packaged configs (the book's experiments) with their book section.")
        return
    if args:
        raise SeqlightError(f"`seqlight configs` takes no arguments, got {' '.join(args)}")
    infos = config_infos()
    width = max(len(i.name) for i in infos)
    print(f"{'config':<{width}}  section  title (Deep Learning with Python, 1st ed., chapter 6)")
    for info in infos:
        print(f"{info.name:<{width}}  {info.section:<7}  {info.title}")
    print(f"\nRun one with `seqlight fit --config <config>` (files in {CONFIG_DIR}).")


def _forecast(args: list[str]) -> int:
    from seqlight.answers import forecast_main

    return forecast_main(args)


def _classify(args: list[str]) -> int:
    from seqlight.answers import classify_main

    return classify_main(args)


def _export(args: list[str]) -> int:
    from seqlight.export import main as export_main

    return export_main(args)


def _report(args: list[str]) -> int:
    from seqlight.results import report_main

    return report_main(args)


def _reproduce(args: list[str]) -> int:
    from seqlight.results import reproduce_main

    return reproduce_main(args)


# Each takes the arguments after its name; returns None or an exit code, or raises SeqlightError for a user's
# mistake (seqlight.cli.main prints it as one paragraph). Imported when run, so `seqlight --help` stays fast.
COMMANDS: dict[str, Callable[[list[str]], int | None]] = {
    "configs": list_configs,
    "forecast": _forecast,
    "classify": _classify,
    "export": _export,
    "report": _report,
    "reproduce": _reproduce,
}


def run_command(args: list[str]) -> bool:
    """Run ``args`` if it starts with one of :data:`COMMANDS` and return True; else False (LightningCLI's).
    A command's non-zero exit code ends the process with it."""
    if not args or args[0] not in COMMANDS:
        return False
    code = COMMANDS[args[0]](list(args[1:]))
    sys.stdout.flush()
    if code:
        raise SystemExit(code)
    return True
