"""One definition per option: names, defaults and old spellings across every subcommand."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from facedub.cli import build_parser
from facedub.cli._options import check_limits, config_class, definitions, field_default
from facedub.convert.config import ConvertConfig
from facedub.convert.detail import DetailConfig
from facedub.errors import BadInput
from facedub.evaluate.core import EvalConfig
from facedub.extract.config import ExtractConfig
from facedub.swap import SwapConfig
from facedub.train.config import AugmentConfig, TrainConfig

# The config dataclasses each command's options fill in.
CONFIGS = {
    "convert": (ConvertConfig,),
    "swap": (SwapConfig, ConvertConfig),
    "extract": (ExtractConfig,),
    "eval": (EvalConfig,),
    "train": (TrainConfig, AugmentConfig),
    "detail": (DetailConfig,),
}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _options(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in sub._actions if a.option_strings and a.default is not argparse.SUPPRESS and a.dest != "help"]


def _fields_with_defaults(config: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def test_commands_with_settings_are_walked():
    subs = _subparsers()
    assert set(CONFIGS) <= set(subs)
    assert "batch" in subs  # its settings come from the job file (SwapConfig fields), checked below


def test_no_option_default_differs_from_its_config_field():
    """Options defined in _options read the field they set; any other option named like a field of
    the command's configs must have that field's default too (no copied literals)."""
    wrong = []
    checked = 0
    for name, sub in _subparsers().items():
        registered = sub.get_default("_fields") or {}
        for action in _options(sub):
            if action.dest in registered:
                cfg, field, _flag = registered[action.dest]
                expected = field_default(config_class(cfg), field)
            else:
                owners = [c for c in CONFIGS.get(name, ()) if action.dest in _fields_with_defaults(c)]
                if action.required or not owners:
                    continue
                expected = field_default(owners[0], action.dest)
            checked += 1
            if action.default != expected:
                wrong.append(f"{name} {action.option_strings[0]}: default {action.default!r}, config says {expected!r}")
    assert not wrong, "\n".join(wrong)
    assert checked > 60  # the walk really saw the options


def test_changed_config_default_reaches_the_parser(monkeypatch):
    """The default is read from the dataclass when the parser is built, not copied."""
    field = next(f for f in dataclasses.fields(ConvertConfig) if f.name == "crf")
    monkeypatch.setattr(field, "default", 23)
    subs = _subparsers()
    for cmd in ("convert", "swap"):
        assert subs[cmd].parse_args([*_required(cmd)]).crf == 23


def test_one_name_per_config_field_across_commands():
    names: dict[tuple[str, str], set[str]] = {}
    for sub in _subparsers().values():
        for cfg, field, flag in (sub.get_default("_fields") or {}).values():
            names.setdefault((cfg, field), set()).add(flag)
    assert names
    several = {k: v for k, v in names.items() if len(v) > 1}
    assert not several, several
    # the same idea in several configs has one name
    assert names[("facedub.convert.config:ConvertConfig", "max_frames")] == {"--max-frames"}
    assert names[("facedub.swap:SwapConfig", "max_frames")] == {"--max-frames"}
    assert names[("facedub.extract.config:ExtractConfig", "max_frames")] == {"--max-frames"}
    assert names[("facedub.evaluate.core:EvalConfig", "max_frames")] == {"--max-frames"}
    assert names[("facedub.convert.config:ConvertConfig", "frame_range")] == {"--frames"}


def test_definitions_name_real_fields_and_swap_takes_converts_settings():
    for opt in definitions():
        for cfg in opt.configs:
            assert opt.field in {f.name for f in dataclasses.fields(config_class(cfg))}, (opt.flag, cfg)
    subs = _subparsers()
    conv = {a.option_strings[0] for a in _options(subs["convert"])}
    swap = {a.option_strings[0] for a in _options(subs["swap"])}
    whole_chain_only_convert = {"--frames", "--fps", "--plate-space", "--reverse", "--preview", "--matte-out", "--face-out", "--model", "--codec", "--c2pa-frames"}  # a video master (ProRes) is convert's; swap writes H.264
    assert conv - swap == whole_chain_only_convert
    for flag in ("--mask", "--erode", "--color", "--crf", "--precision", "--cut-threshold", "--max-distance"):
        a = next(x for x in subs["swap"]._actions if flag in x.option_strings)
        b = next(x for x in subs["convert"]._actions if flag in x.option_strings)
        assert (a.help, a.default, a.type, a.choices) == (b.help, b.default, b.type, b.choices)


def _required(cmd: str) -> list[str]:
    return {
        "convert": ["t.mp4", "--model", "m", "--out", "o.mp4"],
        "swap": ["--source", "s.mp4", "--target", "t.mp4", "--out", "o.mp4"],
        "extract": ["in.mp4", "--out", "fs"],
        "eval": ["o.mp4", "--target", "t.mp4", "--source", "fs"],
        "train": ["--source", "a", "--target", "b", "--out", "m"],
    }[cmd]


@pytest.mark.parametrize("cmd, old, new, dest, value", [
    ("train", "--colour-match", "--color-match", "colour_match", 0.25),
    ("swap", "--frames", "--max-frames", "max_frames", 7),
])
def test_old_spellings_still_parse_and_are_hidden(cmd, old, new, dest, value, capsys):
    sub = _subparsers()[cmd]
    args = sub.parse_args([*_required(cmd), old, str(value)])
    assert getattr(args, dest) == value
    assert f"use {new}" in capsys.readouterr().err
    assert getattr(sub.parse_args([*_required(cmd), new, str(value)]), dest) == value
    assert getattr(sub.parse_args(_required(cmd)), dest) == field_default(SwapConfig if cmd == "swap" else AugmentConfig, dest)
    text = sub.format_help()
    assert new in text and old + " " not in text and old + "\n" not in text


def test_old_spelling_is_range_checked_under_the_new_name():
    args = _subparsers()["train"].parse_args([*_required("train"), "--colour-match", "2"])
    with pytest.raises(BadInput, match="--color-match 2: must be at most 1"):
        check_limits(args)


def test_max_frames_is_a_count_everywhere():
    subs = _subparsers()
    for cmd in ("convert", "swap", "extract", "eval"):
        assert subs[cmd].parse_args([*_required(cmd), "--max-frames", "12"]).max_frames == 12


def test_convert_frames_n_on_a_video_still_means_the_first_n():
    from facedub.cli.convert import _frames
    from facedub.progress import NullReporter

    notes = []

    class Notes(NullReporter):
        def note(self, text: str) -> None:
            notes.append(text)

    assert _frames("8", None, False, Notes()) == (8, None)
    assert notes and "--max-frames 8" in notes[0]
    assert _frames(None, 8, False, Notes()) == (8, None)
    assert _frames("1001-1100", None, True, Notes()) == (None, (1001, 1100))
    with pytest.raises(BadInput, match="give one"):
        _frames("8", 9, False, Notes())
    assert _frames("2-3", None, False, Notes()) == (None, (2, 3))  # a video's range: frame indices from 0
    with pytest.raises(BadInput, match="give one"):
        _frames("2-3", 9, False, Notes())
    with pytest.raises(BadInput, match="last frame comes before the first"):
        _frames("5-3", None, False, Notes())


def test_cut_threshold_zero_still_turns_cut_detection_off():
    from facedub.cli._options import values

    args = _subparsers()["convert"].parse_args([*_required("convert"), "--cut-threshold", "0"])
    assert values(args, ConvertConfig)["cut_threshold"] is None
    assert ConvertConfig(**{k: v for k, v in values(args, ConvertConfig).items() if k != "frame_range"}).cut_threshold is None
