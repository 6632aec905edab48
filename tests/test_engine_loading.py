"""Model entries' ``options`` reach ``from_pretrained``; keys the entry owns are refused."""

import pytest
import torch

from globalrep.engine.loading import load_causal_lm, load_reward_model
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec

CPU = torch.device("cpu")


def test_options_reach_from_pretrained(tiny_lm_dir, tiny_rm_dir):
    default = load_causal_lm(ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32"), CPU)
    assert default.config._attn_implementation == "sdpa"
    eager = ModelSpec(name="tiny", path=str(tiny_lm_dir), dtype="float32", options={"attn_implementation": "eager"})
    assert load_causal_lm(eager, CPU).config._attn_implementation == "eager"
    # A config override: the loaded model visibly has the option's shape.
    reward = ModelSpec(
        name="rm", path=str(tiny_rm_dir), kind="reward", dtype="float32", options={"num_hidden_layers": 1}
    )
    assert len(load_reward_model(reward, CPU).body.layers) == 1


@pytest.mark.parametrize(
    ("option", "config_key"), [("revision", "revision"), ("torch_dtype", "dtype"), ("device_map", "engine.device")]
)
def test_options_that_the_config_sets_are_named(tiny_lm_dir, option, config_key):
    spec = ModelSpec(name="tiny", path=str(tiny_lm_dir), options={option: "x"})
    with pytest.raises(
        GlobalrepError, match=rf"models\.tiny\.options sets {option}; set the config key\(s\) {config_key} instead"
    ):
        load_causal_lm(spec, CPU)
