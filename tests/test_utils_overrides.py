"""FIELD=VALUE overrides typed by the config's annotations (adaptrl eval --set, benchmarks)."""

import pytest

from adaptrl.algos.maml import MAMLConfig
from adaptrl.algos.rl2 import RL2Config
from adaptrl.utils.overrides import parse_overrides


def test_types_follow_the_annotations():
    got = parse_overrides(["target_kl=0.01", "hidden-size=64", "memory=false", "core=lstm",
                           "embed_sizes=32,16", "learning_rate=1"], RL2Config)  # fmt: skip
    assert got == {"target_kl": 0.01, "hidden_size": 64, "memory": False, "core": "lstm",
                   "embed_sizes": (32, 16), "learning_rate": 1.0}  # fmt: skip
    assert isinstance(got["learning_rate"], float)
    assert parse_overrides(["target_kl=none"], RL2Config) == {"target_kl": None}
    assert parse_overrides(["eval_loss_averaging=steps"], MAMLConfig) == {
        "eval_loss_averaging": "steps"
    }


@pytest.mark.parametrize("item, message", [
    ("no_such_field=1", "FIELD one of"),
    ("hidden_size", "FIELD one of"),
    ("hidden_size=big", "cannot read 'big' as int"),
    ("memory=maybe", "as bool"),
    ("core=rnn", "must be one of gru, lstm"),
    ("target_kl=small", "cannot read 'small' as float"),
])  # fmt: skip
def test_bad_overrides_say_what_is_accepted(item, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides([item], RL2Config)
