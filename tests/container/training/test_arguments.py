"""T8: hyperparameters as the script's command line."""

from __future__ import annotations

from container.training.arguments import to_cli_args


def test_t8_the_contract_example() -> None:
    args = to_cli_args({"epochs": 1, "num_labels": 2, "backend": "gloo"})
    assert args == ["--backend", "gloo", "--epochs", "1", "--num_labels", "2"]


def test_t8_one_letter_keys_get_a_single_dash() -> None:
    assert to_cli_args({"k": 3, "lr": 0.1}) == ["-k", "3", "--lr", "0.1"]


def test_t8_scalars_use_str_and_dicts_become_sorted_pairs() -> None:
    args = to_cli_args({"flag": True, "rate": 2e-05, "opts": {"b": 2, "a": "x"}, "items": [1, 2]})
    assert args == ["--flag", "True", "--items", "[1, 2]", "--opts", "a=x,b=2",
                    "--rate", "2e-05"]
