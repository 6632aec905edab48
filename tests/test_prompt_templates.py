"""Task prompt templates: `prompt_template: <file>` runs any wording, exactly; editing the file
reruns the task's inference; a bad template is named."""

from __future__ import annotations

import pytest

from globalrep import md3
from globalrep.errors import GlobalrepError
from globalrep.models import ModelSpec, inference_fingerprint
from globalrep.tasks import belebele, global_opinions, md3_taboo, tydiqa_goldp

# A wording of our own in the paper's layouts: a legend of the fields, a --- line, then the item.
BELEBELE_TEMPLATE = """Pick the right choice.

Context: the passage.
Question: the question.

---

Context: {{ passage }}
Question: {{ question }}
Choices: {% for choice in choices %}
({{ letters[loop.index0] }}) {{ choice }}{% endfor %}
So the answer is: 
"""


def test_a_template_file_reproduces_a_given_prompt_exactly(tmp_path):
    path = tmp_path / "belebele.jinja"
    path.write_text(BELEBELE_TEMPLATE)
    options = {"prompt_template": str(path)}
    expected = (
        "Pick the right choice.\n\nContext: the passage.\nQuestion: the question.\n\n---\n\n"
        "Context: P.\nQuestion: Q?\nChoices: \n(A) w\n(B) x\n(C) y\n(D) z\nSo the answer is: "
    )
    assert belebele.build_prompt("P.", "Q?", ["w", "x", "y", "z"], options) == expected


def test_every_instruction_task_renders_its_prompt_from_the_option(tmp_path):
    path = tmp_path / "plain.jinja"
    cases = [
        (md3_taboo, "T: {{ transcript }} =", lambda options: md3.build_prompt([("A", "hi")], options), "T: A: hi ="),
        (
            tydiqa_goldp,
            "{% for s in shots %}{{ s.answer }};{% endfor %}{{ question }}",
            lambda options: tydiqa_goldp.build_prompt("C", "Q?", (["c"], ["q"], ["a"]), options),
            "a;Q?",
        ),
        (
            global_opinions,
            "{{ question }} {{ options | join('/') }} (",
            lambda options: global_opinions.build_prompt("Q?", ["x", "y"], options),
            "Q? x/y (",
        ),
    ]
    for task, template, build, expected in cases:
        path.write_text(template)
        assert build({"prompt_template": str(path)}) == expected, task.NAME


def test_editing_the_template_reruns_inference(tmp_path):
    path = tmp_path / "t.jinja"
    path.write_text("{{ question }}")
    spec = ModelSpec(name="m", path="org/m")
    before = inference_fingerprint(spec, {"prompt_template": str(path)}, "1")
    path.write_text("Q: {{ question }}")
    assert inference_fingerprint(spec, {"prompt_template": str(path)}, "1") != before


def test_bad_templates_are_named(tmp_path):
    with pytest.raises(GlobalrepError, match=r"'tasks.belebele.prompt_template'\) does not exist"):
        belebele.build_prompt("P.", "Q?", list("wxyz"), {"prompt_template": str(tmp_path / "none.jinja")})
    typo = tmp_path / "typo.jinja"
    typo.write_text("{{ pasage }}")
    with pytest.raises(GlobalrepError, match=r"'pasage' is undefined; the task's fields are choices, letters, passage"):
        belebele.build_prompt("P.", "Q?", list("wxyz"), {"prompt_template": str(typo)})
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for x in %}")
    with pytest.raises(GlobalrepError, match="not a valid Jinja template"):
        belebele.build_prompt("P.", "Q?", list("wxyz"), {"prompt_template": str(broken)})
