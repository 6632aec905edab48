"""Chat formats: the built-in formats reproduce the paper's published prompts exactly (the oracle,
../shared/data/paper_prompts), through the engine's own rendering and config/paper.yaml's pins."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from globalrep.chat_formats import builtin_names
from globalrep.countries import PLACEHOLDER
from globalrep.engine.prompts import encode, render, render_context
from globalrep.engine.requests import Chat
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec, inference_fingerprint
from globalrep.tasks import askreddit, where_from

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
PAPER_MODELS = PAPER_CONFIG["models"]


def paper_spec(name: str) -> ModelSpec:
    return ModelSpec.from_config(name, PAPER_MODELS[name])


def test_every_paper_model_is_pinned_to_a_builtin_format():
    assert {entry["chat_template"] for entry in PAPER_MODELS.values()} <= set(builtin_names())


def test_askreddit_prompts_match_the_published_ones_for_all_models(shared_data):
    published = pd.read_csv(shared_data / "paper_prompts" / "askreddit_full_prompts.csv", keep_default_na=False)
    assert len(published) == 7756 and set(published["model"]) == set(PAPER_MODELS)
    for model, rows in published.groupby("model"):
        spec = paper_spec(model)
        # One pseudo-country, the placeholder itself, leaves {country} in the reward model's text.
        items = pd.DataFrame(
            {
                "item_id": [f"q{i}" for i in range(len(rows))],
                "question": rows["question"].to_list(),
                "reply": rows["response_format"].to_list(),
                "countries": [[PLACEHOLDER]] * len(rows),
            }
        )
        made = askreddit.requests(items, PAPER_CONFIG["tasks"]["askreddit"], spec.kind)
        if spec.kind == "reward":
            rendered = [render(request.conversations[0], None, spec.chat_template) for request in made]
        else:
            rendered = [render_context(request.context, None, spec.chat_template) for request in made]
        mismatches = [(want, got) for want, got in zip(rows["full_prompt"], rendered) if want != got]
        assert not mismatches, f"{model}: {len(mismatches)} of {len(rows)} differ, e.g. {mismatches[0]}"


def test_where_from_prompts_match_the_published_ones(shared_data):
    published = pd.read_csv(
        shared_data / "paper_outputs" / "reward-testing" / "where_from_starling-rm-7b-alpha.csv", keep_default_na=False
    )
    items = pd.DataFrame({"item_id": [f"wf{i}" for i in range(len(published))], "group": published["country"]})
    spec = paper_spec("starling-rm-7b-alpha")
    rendered = [
        render(request.conversations[0], None, spec.chat_template)
        for request in where_from.requests(items, PAPER_CONFIG["tasks"]["where_from"])
    ]
    assert rendered == published["prompt"].to_list()


@pytest.mark.parametrize("model", ["llama-2-7b", "mistral-7b", "zephyr-7b-beta", "qwen1.5-7b-chat"])
def test_a_reply_starting_with_the_country_scores_the_space_before_it(model):
    items = pd.DataFrame(
        {
            "item_id": ["q"],
            "question": ["Which country is loud?"],
            "reply": ["{country} is loud."],
            "countries": [["Germany", "Netherlands"]],
        }
    )
    request = askreddit.requests(items, {}, "lm")[0]
    context = render_context(request.context, None, paper_spec(model).chat_template)
    assert not context[-1].isspace()
    assert request.continuations == (" Germany", " The Netherlands")


def test_a_chat_format_text_gets_a_second_bos_as_the_paper_tokenized(tiny_tokenizer):
    bos = tiny_tokenizer.bos_token_id
    text = tiny_tokenizer.bos_token + "Hello"
    assert encode(text, tiny_tokenizer, always_add_special_tokens=True)[:2] == [bos, bos]
    assert encode(text, tiny_tokenizer)[:2] != [bos, bos]  # a tokenizer's own template: one BOS


def test_a_template_file_is_a_format(tmp_path):
    path = tmp_path / "mine.jinja"
    path.write_text(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    chat = Chat(messages=(("user", "Hi"),), assistant_prefix="Well,")
    assert render(chat, None, str(path)) == "<user>Hi<assistant>Well,"
    spec = ModelSpec.from_config("m", {"path": "org/m", "chat_template": str(path)})
    before = inference_fingerprint(spec, {}, "1")
    path.write_text(path.read_text() + "!")
    assert inference_fingerprint(spec, {}, "1") != before  # editing the file reruns the model's jobs


def test_an_unknown_format_is_named():
    with pytest.raises(GlobalrepError, match=r"models\.m\.chat_template: 'llama-3' is neither a built-in"):
        ModelSpec.from_config("m", {"path": "org/m", "chat_template": "llama-3"})
