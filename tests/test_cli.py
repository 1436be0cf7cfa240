"""The command line itself: version, and help text for every argument (issue 13 item 13)."""

import argparse

import pytest

from mmjsd import __version__, cli


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mmjsd {__version__}"


def test_every_argument_of_every_command_has_help():
    parser = cli._build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.description, name
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.option_strings)


@pytest.mark.parametrize("command, where", [
    ("train", "runs/DATASET/MODEL/seedSEED"), ("train-classifier", "classifiers/DATASET/MODALITY.pt"),
    ("evaluate", "eval.json"), ("aggregate", "table1.csv"), ("figure", "figure1.png"), ("report", "report.md"),
    ("prepare", "processed/DATASET"),
])
def test_help_says_where_outputs_go(command, where, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert where in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")
