"""S³ prompt token ids equal the legacy slow SentencePiece tokenisation of the released tokenizer: every text
segment between added tokens encoded by SentencePiece on its own (with its dummy-prefix ``▁``), every added
token as its id. Checked against the real Mistral-7B-v0.1 `tokenizer.model` shipped in mistral-common."""

import re

import pytest
import sentencepiece
import transformers

from s3eval.models.s3.builder import ADDED_TOKENS, mistral_tokenizer_model
from s3eval.models.s3.prompt import (
    NOTEBOOK_SYSTEM_PROMPT, QueryItem, encode_pieces, prompt_pieces, query_items,
)  # fmt: skip
from s3eval.types import Media, Request

MISTRAL_SHA256 = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"


def reference_ids(pieces, sp):
    """Legacy SentencePiece: split each piece at added tokens and "<s>", encode the rest segment by segment."""
    ids = {token: 32000 + i for i, token in enumerate(ADDED_TOKENS)} | {"<s>": 1}
    pattern = re.compile("(" + "|".join(re.escape(t) for t in ids) + ")")
    out = []
    for piece in pieces:
        for part in pattern.split(piece):
            if part in ids:
                out.append(ids[part])
            elif part:
                out.extend(sp.encode(part))
    return out


@pytest.fixture(scope="module")
def sp():
    return sentencepiece.SentencePieceProcessor(model_file=str(mistral_tokenizer_model()))


@pytest.fixture(scope="module")
def tokenizer(tiny_release):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_release[0] / "tokenizer"), use_fast=False)


def test_mistral_tokenizer_model_is_the_real_one():
    import hashlib

    assert hashlib.sha256(mistral_tokenizer_model().read_bytes()).hexdigest() == MISTRAL_SHA256


def test_pinned_transformers_version():
    # 5.x silently breaks LlamaTokenizer(vocab_file=…) and drops the ▁ after added tokens.
    assert transformers.__version__ == "4.57.6"


def test_notebook_prompt_layout():
    image = Media("image", "image_1", data=b"x")
    pieces = prompt_pieces(query_items(Request("t", "1", "Describe this image.", (image,))), NOTEBOOK_SYSTEM_PROMPT)
    assert "".join(pieces) == (
        "<s><RS><system>You are an AI assistant. Answer briefly, using a single phrase.</RS>"
        "<RS><user>Describe this image.</RS><RS><user><MS><img><img><img><img></MS></RS><RS><bot>"
    )


TEXTS = [
    "Describe this image.",
    "What is   shown here?",  # a space run
    "  leading spaces and trailing  ",
    "<image 1> Baxter Company has a relevant range of production between 15,000 and 30,000 units.\n(A) $6\n(B) $7"
    "\n\nAnswer with the option's letter from the given choices directly.",
    "Ünïcødé — ½ ∑ 中文",
    "\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_prompt_ids_equal_legacy_sentencepiece(tokenizer, sp, text):
    items = [QueryItem("text", text=text), QueryItem("image", media=Media("image", "a", data=b"")),
             QueryItem("audio", media=Media("audio", "b", data=b""))]  # fmt: skip
    pieces = prompt_pieces(items, NOTEBOOK_SYSTEM_PROMPT)
    assert encode_pieces(tokenizer, pieces) == reference_ids(pieces, sp)


def test_text_right_after_modality_end_keeps_the_dummy_prefix(tokenizer, sp):
    ids = tokenizer("</MS> What is shown?", add_special_tokens=False).input_ids
    assert ids == [32005, 28705, 1824, 349, 4894, 28804] == reference_ids(["</MS> What is shown?"], sp)


def test_added_tokens(tokenizer):
    assert len(tokenizer) == 32008
    assert [tokenizer.convert_tokens_to_ids(t) for t in ADDED_TOKENS] == list(range(32000, 32008))
    assert tokenizer("<MS><img><img><img><img></MS>", add_special_tokens=False).input_ids == [32004] + [32006] * 4 + [32005]
