"""Build the demo's tiny local models: offline, deterministic, seconds on a CPU.

The demo and the tests need real Hugging Face checkpoints (so the engine loads them exactly as
it loads hub models) without any network: a byte-level BPE tokenizer trained here on generated
text, tiny Llama-architecture causal LMs with random weights (one seed per alignment stage), and
tiny reward models in both layouts the engine supports.

    python -m globalrep.demo OUT_DIR [TEXT_FILES...]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

# torch, tokenizers and transformers are imported where models are built, so that the workflow
# reads DEMO_MODELS when it parses the config without loading them.
if TYPE_CHECKING:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = [BOS, EOS, PAD, UNK, *ROLE_TOKENS]

# Zephyr's layout: "<|user|>\n{content}</s>\n<|assistant|>\n". Like Zephyr, the template adds no
# BOS: apply_chat_template(tokenize=True) then yields none, while tokenizing the rendered text
# with add_special_tokens=True prepends one, as with the real model.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] in ['system', 'user', 'assistant'] -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{%- else -%}"
    "{{ raise_exception('Unknown role: ' + message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)

DEMO_STAGES = {"demo-base": 0, "demo-sft": 1, "demo-pt": 2}  # model name -> seed
DEMO_REWARD_MODEL = "demo-rm"
DEMO_REWARD_SEED = 3
# Every model build_demo_models writes, by name: the workflow's rule build_demo_models makes them.
DEMO_MODELS = (*DEMO_STAGES, DEMO_REWARD_MODEL)

# Small shapes: the three LMs plus the reward model build and run in seconds on 2 CPU cores.
TINY_SHAPE = dict(
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    intermediate_size=128,
    max_position_embeddings=2048,
)

FUNCTION_WORDS = """
the a an and or but if then than that this these those there here what which who whom whose
when where why how all any both each few more most other some such no nor not only own same so
too very can will just should would could may might must shall do does did done doing have has
had having be is am are was were been being i me my mine we us our ours you your yours he him
his she her hers it its they them their theirs of at by for with about against between into
through during before after above below to from up down in out on off over under again further
once because as until while also yet still ever never always often sometimes usually perhaps
maybe however therefore although though whether either neither one two three four five six
seven eight nine ten first second third last many much less least every another within without
""".split()

CONTENT_WORDS = """
people person man woman child children family friend friends group country countries nation
government state city town village world language languages dialect dialects speaker speakers
word words sentence question questions answer answers option options opinion opinions survey
poll percent majority minority vote election law rights freedom religion economy money work job
jobs school schools student students teacher university education health hospital doctor food
water house home land river mountain sea island weather rain summer winter spring autumn day
night week month year years time morning evening today tomorrow yesterday history culture music
art book books story news newspaper television radio internet phone computer science technology
research study studies data result results number numbers market trade business company price
prices tax taxes war peace army police court judge leader leaders president minister party
parties policy policies problem problems change future past present important good bad better
worse best worst new old young big small large little long short high low great right wrong
true false free fair safe dangerous happy sad rich poor strong weak easy hard public private
local national international foreign global social political economic religious moral modern
traditional agree disagree support oppose believe think know say said says tell told ask asked
give gave take took make made go went come came see saw look find found want need like love
help read write wrote speak spoke spoken learn learned understand live lived move moved play
played pay paid buy sold build built open close choose chose select selected prefer trust
allow accept reject improve increase decrease grow rise fall bring keep hold stand feel felt
become became seem seemed leave left start started end ended happen happened respect
neighbor neighbors community communities society culture cultures tradition traditions
mother father brother sister son daughter husband wife parents grandparents teacher teachers
farmer farmers worker workers soldier soldiers artist artists writer writers church mosque
temple street road car bus train airport border borders capital region regions province
north south east west northern southern eastern western central coast desert forest field
animal animals dog cat horse bird fish tree trees flower flowers stone fire light dark color
red blue green yellow white black brown hand head eye eyes face heart mind body voice name
human assistant response responses reward model models alignment preference preferences
English Spanish French German Italian Portuguese Russian Chinese Mandarin Cantonese Japanese
Korean Arabic Hindi Urdu Bengali Punjabi Tamil Telugu Marathi Swahili Yoruba Igbo Hausa Amharic
Zulu Xhosa Turkish Persian Farsi Hebrew Greek Polish Dutch Swedish Norwegian Danish Finnish
Hungarian Czech Romanian Ukrainian Vietnamese Thai Indonesian Malay Tagalog Filipino Burmese
Khmer Nepali Sinhala Pashto Kurdish Somali
America American Americans Britain British Canada Canadian Australia Australian Ireland Irish
Scotland Scottish India Indian Nigeria Nigerian Kenya Kenyan Ghana Ghanaian Jamaica Jamaican
Philippines Singapore Pakistan Pakistani Bangladesh Egypt Egyptian Jordan Jordanian Lebanon
Morocco Tunisia Algeria Iraq Iran Israel Turkey Greece Germany France Spain Italy Portugal
Netherlands Belgium Sweden Norway Denmark Finland Poland Russia Ukraine Hungary Romania
Switzerland Austria China Japan Korea Vietnam Thailand Indonesia Malaysia Brazil Brazilian
Argentina Chile Colombia Peru Venezuela Mexico Mexican Cuba Ethiopia Tanzania Uganda Senegal
Cameroon Zimbabwe Zambia Mali Sudan Africa African Asia Asian Europe European Latin Arab
Standard Southern Appalachian Chicano Hispanic Indian Colloquial Singlish
""".split()

# Native names: a little non-Latin text so common multibyte sequences get merges of their own.
NATIVE_WORDS = """
español français Deutsch português русский 中文 日本語 한국어 العربية हिन्दी বাংলা
Türkçe Ελληνικά עברית فارسی Kiswahili isiZulu Tiếng Việt ภาษาไทย Côte d'Ivoire México Perú
""".split()

ONSETS = ["", "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "tr"]
NUCLEI = ["a", "e", "i", "o", "u", "ai", "ou"]
CODAS = ["", "", "", "n", "l", "r", "s", "m"]

# Lines shaped like the tasks' prompts, so their scaffolding tokenizes into few tokens.
PROMPT_LINES = [
    "Human: Which of these is true?\n\nHere are the options:\n(A) yes\n(B) no\n(C) maybe\n(D) never",
    "Assistant: If I had to select one of the options, my answer would be (A)",
    "Answer: B) C) D) E) F) 1 2 3 4 5 6 7 8 9 10 100 2024 50% 0.5",
]


def _pseudo_words(count: int, exclude: set[str], rng: random.Random) -> list[str]:
    """Deterministic made-up words from syllables, to give the corpus a realistic vocabulary."""
    words: list[str] = []
    seen = set(exclude)
    while len(words) < count:
        n_syllables = rng.choice((1, 2, 2, 3, 3, 4))
        word = "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) for _ in range(n_syllables))
        if len(word) > 2 and word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _sentences(vocabulary: list[str], rng: random.Random, repeats: int) -> list[str]:
    """Sentences that use every vocabulary word ``repeats`` times, mixed with function words."""
    pool = vocabulary * repeats
    rng.shuffle(pool)
    sentences = []
    i = 0
    while i < len(pool):
        n_content = rng.randint(3, 8)
        words = []
        for word in pool[i : i + n_content]:
            words.append(rng.choice(FUNCTION_WORDS))
            words.append(word)
        i += n_content
        sentence = " ".join(words)
        ending = rng.choice((".", ".", ".", "?", "!"))
        sentences.append(sentence[0].upper() + sentence[1:] + ending)
    return sentences


def demo_corpus(extra_texts: Iterable[str] = (), n_words: int = 3000, seed: int = 0) -> list[str]:
    """Training text for the demo tokenizer: ~``n_words`` distinct words, then ``extra_texts``.

    Generated offline and deterministically (same text on every machine), so the demo needs no
    download and its tokenizer, and hence its results, are reproducible.
    """
    rng = random.Random(seed)
    real = list(dict.fromkeys(FUNCTION_WORDS + CONTENT_WORDS + NATIVE_WORDS))
    pseudo = _pseudo_words(max(0, n_words - len(real)), {w.lower() for w in real}, rng)
    # Real words repeat more than made-up ones, roughly as in natural text, so BPE spends its
    # merges on them (e.g. " country" becomes one token) rather than on syllable soup.
    pool = real * 4 + pseudo
    texts = _sentences(pool, rng, repeats=2)
    texts += PROMPT_LINES
    texts += [t for t in extra_texts if t]
    return texts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (any text round-trips) with BOS prepended and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    # add_prefix_space=False keeps decode(encode(x)) == x exactly.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: no <unk> ever
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    # Like Llama: every encoding starts with BOS (pairs get one BOS each).
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, bos_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS),
        clean_up_tokenization_spaces=False,  # otherwise decode would alter " ." and " 's"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _llama_config(tokenizer: PreTrainedTokenizerFast, **shape) -> LlamaConfig:
    """``shape`` overrides TINY_SHAPE; other LlamaConfig fields (e.g. num_labels) pass through."""
    from transformers import LlamaConfig

    shape = {**TINY_SHAPE, **shape}
    return LlamaConfig(
        vocab_size=len(tokenizer),  # includes the added special tokens
        hidden_size=shape.pop("hidden_size"),
        intermediate_size=shape.pop("intermediate_size"),
        num_hidden_layers=shape.pop("num_layers"),
        num_attention_heads=shape.pop("num_heads"),
        max_position_embeddings=shape.pop("max_position_embeddings"),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
        **shape,
    )


def _save(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, out_dir: Path | str) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # safetensors by default
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _random_causal_lm(tokenizer: PreTrainedTokenizerFast, seed: int, **shape) -> LlamaForCausalLM:
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(_llama_config(tokenizer, **shape)).float().eval()


def build_causal_lm(tokenizer: PreTrainedTokenizerFast, out_dir: Path | str, seed: int, **shape) -> Path:
    """A tiny random-weight ``LlamaForCausalLM`` saved with its tokenizer; ``shape`` overrides
    TINY_SHAPE. Returns ``out_dir``."""
    return _save(_random_causal_lm(tokenizer, seed, **shape), tokenizer, out_dir)


def build_reward_model(tokenizer: PreTrainedTokenizerFast, out_dir: Path | str, seed: int, **shape) -> Path:
    """A tiny random ``LlamaForSequenceClassification`` (one label) saved with its tokenizer."""
    import torch
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_llama_config(tokenizer, num_labels=1, **shape)).float().eval()
    return _save(model, tokenizer, out_dir)


def build_value_head_reward_model(
    tokenizer: PreTrainedTokenizerFast, out_dir: Path | str, seed: int, noise: float = 0.01, **shape
) -> tuple[Path, Path]:
    """The Starling-RM layout: a causal LM ``base`` plus a state dict for body and value head.

    ``reward_head.pt`` holds ``transformer.<LlamaModel param>`` (the base's body weights plus
    seeded noise, so a loader that skips them gives different rewards) and ``v_head.weight``
    of shape (1, hidden). Returns ``(base_dir, state_dict_path)``.
    """
    import torch

    out_dir = Path(out_dir)
    base = _random_causal_lm(tokenizer, seed, **shape)
    base_dir = _save(base, tokenizer, out_dir / "base")
    hidden_size = base.config.hidden_size

    generator = torch.Generator().manual_seed(seed + 1)
    state = {
        f"transformer.{name}": (p + noise * torch.randn(p.shape, generator=generator)).contiguous()
        for name, p in base.model.state_dict().items()
    }
    state["v_head.weight"] = torch.randn(1, hidden_size, generator=generator) / hidden_size**0.5
    state_path = out_dir / "reward_head.pt"
    torch.save(state, state_path)
    return base_dir, state_path


def build_demo_models(out_dir: Path | str, extra_texts: Iterable[str] = (), vocab_size: int = 4096) -> dict[str, Path]:
    """Train the demo tokenizer once and write the demo chain and reward model under ``out_dir``.

    Writes ``demo-base``, ``demo-sft``, ``demo-pt`` (causal LMs, seeds 0, 1, 2: each stage gives
    different outputs) and ``demo-rm`` (sequence-classification reward model). Returns
    name -> directory.
    """
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(demo_corpus(extra_texts), vocab_size=vocab_size)
    built = {name: build_causal_lm(tokenizer, out_dir / name, seed) for name, seed in DEMO_STAGES.items()}
    built[DEMO_REWARD_MODEL] = build_reward_model(tokenizer, out_dir / DEMO_REWARD_MODEL, DEMO_REWARD_SEED)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m globalrep.demo", description="Build the demo's tiny local models.")
    parser.add_argument("out_dir", type=Path, help="directory that receives one folder per model")
    parser.add_argument("text_files", nargs="*", type=Path, help="extra tokenizer training text (e.g. demo data)")
    args = parser.parse_args(argv)
    # Any file is fine (CSV, JSON, text); undecodable bytes are replaced rather than fatal.
    extra = [f.read_text(encoding="utf-8", errors="replace") for f in args.text_files]
    start = time.perf_counter()
    built = build_demo_models(args.out_dir, extra)
    for name, path in built.items():
        print(f"{name}: {path}")
    print(f"built {len(built)} demo models in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
