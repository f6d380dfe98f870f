"""The S³ backend on a tiny release in fp32 on CPU: batching, splicing, errors, likelihood, feature cache."""

import math

import pytest
import torch

from s3eval.models.s3 import engine
from s3eval.models.s3.model import S3Model
from s3eval.models.s3.spec import S3Spec
from s3eval.types import LikelihoodRequest, Media, Request

from media_factory import audio, image


def requests():
    return [
        Request("t", "1", "Describe this image.", (image(1),)),
        Request("t", "2", "What is shown in both pictures, and which one is brighter overall?", (image(2), image(3, "image_2"))),
        Request("t", "3", "Which sound is this?", (audio(440, 1.0),)),
        Request("t", "4", "A question with no media at all, but with a rather long text to make it the costliest.", ()),
        Request("t", "5", "Image and audio:", (image(4), audio(220, 3.0, rate=44100))),
        Request("t", "6", "Same image again", (image(1),)),
    ]  # fmt: skip


def test_outputs_do_not_depend_on_batch_size(tiny_model):
    one_by_one = []
    tiny_model.batch_size = 1
    for request in requests():
        one_by_one.extend(tiny_model.generate([request]))
    tiny_model.batch_size = None
    together = tiny_model.generate(requests())
    tiny_model.batch_size = 4
    in_fours = tiny_model.generate(requests())
    tiny_model.batch_size = None
    assert [r.error for r in together] == [None] * 6
    assert [r.text for r in one_by_one] == [r.text for r in together] == [r.text for r in in_fours]
    assert len({r.text for r in together}) > 1


def test_media_reach_the_language_model(tiny_model):
    def score(media):
        request = Request("t", "1", "Describe this image.", (media,))
        return tiny_model.loglikelihood([LikelihoodRequest(request, "a cat")])[0].logprob

    assert score(image(1)) == score(image(1))
    assert abs(score(image(1)) - score(image(2))) > 1e-5
    assert abs(score(image(1)) - score(audio(440, 1.0))) > 1e-5


def test_placeholders_receive_the_projected_vectors(tiny_model):
    c = tiny_model.components
    prepared = [engine.prepare(c, r) for r in requests()[:2]]
    vectors = engine.media_vectors(c, prepared)
    embeds, mask = engine.embed_batch(c, prepared, vectors)
    row = 1  # the longer row; row 0 is left-padded
    offset = embeds.shape[1] - len(prepared[0].ids)
    assert mask[0, :offset].sum() == 0 and mask[0, offset:].all()
    for start, media_hash in zip(prepared[row].runs, prepared[row].media_hashes):
        assert torch.equal(embeds[row, start : start + 4], vectors[media_hash])
    start = prepared[0].runs[0]
    assert torch.equal(embeds[0, offset + start : offset + start + 4], vectors[prepared[0].media_hashes[0]])


def test_cost_sorted_batches_keep_input_order():
    prepared = [engine.Prepared(ids=[0] * n, media=[]) for n in (3, 9, 5, 9, 1)]
    assert engine.by_cost(prepared, 2) == [[1, 3], [2, 0], [4]]


def test_placeholder_mismatch_is_an_error_not_nan(tiny_model):
    bad = Request("t", "x", "Text with a literal <img> token", (image(1),))
    (response,) = tiny_model.generate([bad])
    assert response.text is None and response.error.startswith("placeholder mismatch: the prompt has 2 media")


def test_corrupt_media_is_a_per_sample_error(tiny_model):
    broken = Request("t", "bad", "Describe this image.", (Media("image", "image_1", data=b"\x89PNG truncated"),))
    good = requests()[0]
    responses = tiny_model.generate([broken, good])
    assert responses[0].error.startswith("image_1 (bytes): cannot decode image") and responses[0].text is None
    assert responses[0].error_kind == "media"
    assert responses[1].error is None and responses[1].text == tiny_model.generate([good])[0].text


def test_empty_output_fallback_is_optional(tiny_release, monkeypatch):
    checkpoint, base = tiny_release
    monkeypatch.setattr(engine, "generate", lambda c, rows, budget, **kw: [""] * len(rows))
    for flag, expected in (("false", ""), ("true", "I can't answer that question")):
        spec = S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), "empty_fallback": flag})
        assert S3Model(spec).generate([requests()[0]])[0].text == expected


def test_max_new_tokens(tiny_release):
    checkpoint, base = tiny_release
    model = S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), "max_new_tokens": 1}))
    tokenizer = model.facts.tokenizer
    (response,) = model.generate([requests()[0]])
    assert len(tokenizer(response.text, add_special_tokens=False).input_ids) <= 2
    short = Request("t", "1", "Describe this image.", (image(1),), max_new_tokens=3)
    assert len(model.generate([short])[0].text) >= len(response.text)


def test_likelihood_batched_equals_single_and_perplexities(tiny_model):
    reqs = [LikelihoodRequest(r, answer) for r in requests()[:4] for answer in ("a cat", "B")]
    tiny_model.batch_size = None
    together = tiny_model.loglikelihood(reqs)
    singles = [tiny_model.loglikelihood([r])[0] for r in reqs]
    for a, b in zip(together, singles):
        assert a.error is None and a.n_tokens == b.n_tokens
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
    first = together[0]
    assert first.n_tokens == len(tiny_model.facts.tokenizer("a cat</RS>", add_special_tokens=False).input_ids)
    assert first.perplexity == pytest.approx(math.exp(-first.logprob / first.n_tokens))
    assert first.perplexity_exp2 == pytest.approx(2 ** (-first.logprob / first.n_tokens))
    assert first.perplexity == pytest.approx(first.perplexity_exp2 ** (1 / math.log(2)))
    assert first.logprob < 0


def test_likelihood_matches_a_manual_forward(tiny_model):
    c = tiny_model.components
    request = requests()[0]
    (result,) = tiny_model.loglikelihood([LikelihoodRequest(request, "yes")])
    prepared = engine.prepare(c, request)
    cont = c.tokenizer("yes</RS>", add_special_tokens=False).input_ids
    vectors = engine.media_vectors(c, [prepared])
    embeds, mask = engine.embed_batch(c, [prepared], vectors, extra=[cont])
    with torch.inference_mode():
        logprobs = torch.log_softmax(c.lm(inputs_embeds=embeds, attention_mask=mask).logits.float(), dim=-1)[0]
    n = len(prepared.ids)
    manual = sum(float(logprobs[n - 1 + k, token]) for k, token in enumerate(cont))
    assert result.logprob == pytest.approx(manual, abs=1e-4)


def test_feature_cache_on_disk_makes_a_rerun_encode_nothing(tiny_release, tmp_path):
    checkpoint, base = tiny_release
    args = {"checkpoint": str(checkpoint), "base": str(base), "feature_cache": str(tmp_path / "features")}
    first = S3Model(S3Spec.from_args(args))
    out1 = first.generate(requests())
    assert first.components.encoder.calls == 6  # 7 media, one image repeated
    second = S3Model(S3Spec.from_args(args))
    out2 = second.generate(requests())
    assert second.components.encoder.calls == 0 and second.components.cache.hits == 6
    assert [r.text for r in out1] == [r.text for r in out2]


def test_merged_lora_is_close(tiny_release):
    checkpoint, base = tiny_release
    plain = S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base)}))
    merged = S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), "merge_lora": "true"}))
    reqs = [LikelihoodRequest(r, "an answer") for r in requests()[:3]]
    for a, b in zip(plain.loglikelihood(reqs), merged.loglikelihood(reqs)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)


def test_out_of_memory_halves_the_batch_and_loses_nothing(tiny_model, monkeypatch):
    tiny_model.batch_size = None
    expected = [r.text for r in tiny_model.generate(requests())]
    real = engine.generate
    sizes = []

    def small_gpu(c, rows, budget, **kw):
        sizes.append(len(rows))
        if len(rows) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(c, rows, budget, **kw)

    monkeypatch.setattr(engine, "generate", small_gpu)
    tiny_model.batch_size = 6  # a row limit: halved on out-of-memory, and remembered in rows
    before = tiny_model.backoffs
    assert [r.text for r in tiny_model.generate(requests())] == expected
    assert sizes[0] == 6 and max(sizes[1:]) <= 3 and tiny_model.backoffs > before
    assert tiny_model.memory_limit == 2
    sizes.clear()  # the next call starts at the size that worked: no failing attempts
    backoffs = tiny_model.backoffs
    assert [r.text for r in tiny_model.generate(requests())] == expected
    assert sizes == [2, 2, 2] and tiny_model.backoffs == backoffs
    tiny_model.memory_limit, tiny_model.batch_size = None, None


def test_auto_batches_grow_until_memory_says_stop_and_remember_it(tiny_model, monkeypatch):
    """batch_size=auto: a token budget (rows × the costliest row's prompt + budget tokens) that doubles after each
    batch; an out-of-memory error halves it for good; a high peak stops the growth. Outputs never change."""
    from s3eval.models.s3 import model as s3_model

    tiny_model.batch_size = "auto"
    start = s3_model.AUTO_START_TOKENS
    expected = [r.text for r in tiny_model.generate(requests())]
    work = requests() * 4  # 24 requests
    costs = {}
    c = tiny_model.components
    for r in work:
        costs[r.sample_id] = len(engine.prepare(c, r).ids) + 32
    widest = max(costs.values())
    real = engine.generate
    padded = []

    def gpu(c, rows, budget, **kw):
        size = len(rows) * max(len(p.ids) + budget for p in rows)
        padded.append(size)
        if size > 5 * widest:  # this "GPU" holds five of the costliest rows
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(c, rows, budget, **kw)

    monkeypatch.setattr(engine, "generate", gpu)
    monkeypatch.setattr(s3_model, "AUTO_START_TOKENS", 2 * widest)
    tiny_model.token_budget, tiny_model.growing = 2 * widest, True
    assert [r.text for r in tiny_model.generate(work)] == expected * 4
    assert padded[0] <= 2 * widest and padded[1] > padded[0]  # grew after the first batch
    assert not tiny_model.growing and tiny_model.token_budget <= 5 * widest
    padded.clear()
    backoffs = tiny_model.backoffs
    assert [r.text for r in tiny_model.generate(work)] == expected * 4
    assert tiny_model.backoffs == backoffs and max(padded) <= 5 * widest  # remembered: nothing fails again
    # A peak near the device's memory also stops the growth.
    tiny_model.token_budget, tiny_model.growing = 2 * widest, True
    monkeypatch.setattr(s3_model, "_peak_memory_fraction", lambda device: 0.95)
    tiny_model.generate(requests())
    assert not tiny_model.growing and tiny_model.token_budget == 2 * widest
    tiny_model.token_budget, tiny_model.growing, tiny_model.batch_size = start, True, None


def test_non_finite_logits_are_flagged_per_sample(tiny_model):
    c = tiny_model.components
    head = c.lm.get_output_embeddings()

    def poison_first_row(module, inputs, output):
        output[0] = float("nan")
        return output

    handle = head.register_forward_hook(poison_first_row)
    try:
        responses = tiny_model.generate(requests()[:3])
    finally:
        handle.remove()
    flagged = [r for r in responses if r.error]
    assert len(flagged) == 1 and flagged[0].error == "non-finite logits (NaN or inf) during generation"
    assert all(r.text is not None for r in responses if not r.error)


def test_bf16_likelihoods_agree_across_batch_sizes_within_tolerance(tiny_release):
    """bf16 kernels round differently for different batch shapes: the documented tolerance is 0.05 nats of
    mean NLL per token (fp32 is exact, see above)."""
    checkpoint, base = tiny_release
    model = S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), "dtype": "bfloat16"}))
    reqs = [LikelihoodRequest(r, "an answer") for r in requests()]
    together = model.loglikelihood(reqs)
    singles = [model.loglikelihood([r])[0] for r in reqs]
    assert max(abs(a.mean_nll - b.mean_nll) for a, b in zip(together, singles)) <= 0.05


def test_next_batch_media_are_prepared_ahead_exactly_once(tiny_release, monkeypatch):
    checkpoint, base = tiny_release
    model = S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base)}), batch_size=2)
    calls = []
    real = engine.preprocess_batch
    monkeypatch.setattr(engine, "preprocess_batch", lambda c, rows: calls.append(len(rows)) or real(c, rows))
    expected = [r.text for r in S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base)}),
                                        batch_size=1).generate(requests())]  # fmt: skip
    calls.clear()
    preprocessed = []
    original = model.components.encoder.preprocess
    monkeypatch.setattr(model.components.encoder, "preprocess", lambda m: preprocessed.append(m.name) or original(m))
    assert [r.text for r in model.generate(requests())] == expected
    assert calls == [2, 2, 2]  # one look-ahead per GPU batch
    assert len(preprocessed) == 6  # 7 media, one image repeated: each unique one decoded once


def test_shared_prefix_likelihood_equals_one_forward_per_candidate(tiny_model):
    """Each prompt runs once and its key/value cache serves every candidate; scores equal today's one full forward
    per candidate (prompt + continuation) in fp32: mean NLL per token within 1e-5, sums within 1e-5 relative."""
    c = tiny_model.components
    candidates = ["a cat", "B", "a much longer answer with quite a few words in it", "no", "", "yes, certainly"]
    reqs = [LikelihoodRequest(r, answer) for r in requests() for answer in candidates]
    tiny_model.batch_size = None
    shared = tiny_model.loglikelihood(reqs)
    for request, result in zip(reqs, shared):
        prepared = engine.prepare(c, request.request)
        cont = c.tokenizer(request.continuation + "</RS>", add_special_tokens=False).input_ids
        (alone,) = engine.continuation_logprobs(c, [prepared], [cont])  # today's path, one candidate at a time
        assert result.error is None and result.n_tokens == len(cont)
        assert result.mean_nll == pytest.approx(-alone / len(cont), abs=1e-5)
        assert result.logprob == pytest.approx(alone, rel=1e-5, abs=1e-5)
    tiny_model.shared_prefix = False
    try:
        full = tiny_model.loglikelihood(reqs)
    finally:
        tiny_model.shared_prefix = True
    assert max(abs(a.mean_nll - b.mean_nll) for a, b in zip(shared, full)) <= 1e-5


def test_candidates_of_a_prompt_share_one_prompt_run(tiny_model, monkeypatch):
    prompts, rows = [], []
    real = engine.shared_prefix_logprobs

    def counting(c, batch, continuations, **kw):
        prompts.extend(batch)
        rows.extend(len(conts) for conts in continuations)
        return real(c, batch, continuations, **kw)

    monkeypatch.setattr(engine, "shared_prefix_logprobs", counting)
    reqs = [LikelihoodRequest(r, answer) for r in requests()[:3] for answer in ("A", "B", "C", "D")]
    tiny_model.batch_size = None
    results = tiny_model.loglikelihood(reqs)
    assert len(prompts) == 3 and sorted(rows) == [4, 4, 4]  # 3 prompt runs for 12 candidates
    assert [r.error for r in results] == [None] * 12
    # A candidate whose prompt cannot be read fails with its prompt's error; the rest are scored.
    broken = Request("t", "bad", "Describe this image.", (Media("image", "image_1", data=b"\x89PNG truncated"),))
    mixed = tiny_model.loglikelihood([LikelihoodRequest(broken, "A"), LikelihoodRequest(broken, "B")] + reqs[:2])
    assert [r.error_kind for r in mixed[:2]] == ["media", "media"] and mixed[0].error.startswith("image_1 (bytes)")
    assert [r.logprob for r in mixed[2:]] == pytest.approx([r.logprob for r in results[:2]], abs=1e-5)


def test_every_gpu_batch_is_reported_once_as_it_completes(tiny_model):
    """generate_streaming calls on_batch after every GPU batch (the runner stores each durably there), refused
    requests first; together they cover every request once, with the responses generate returns."""
    bad = Request("t", "x", "Text with a literal <img> token", (image(1),))
    work = requests() + [bad]
    calls = []
    tiny_model.batch_size = 2
    try:
        streamed = tiny_model.generate_streaming(work, lambda indices, responses: calls.append((indices, responses)))
        plain = tiny_model.generate(work)
        scored = []
        reqs = [LikelihoodRequest(r, a) for r in requests() for a in ("A", "B")]
        likelihoods = tiny_model.loglikelihood_streaming(reqs, lambda indices, results: scored.append(indices))
    finally:
        tiny_model.batch_size = None
    assert calls[0][0] == [6] and calls[0][1][0].error.startswith("placeholder mismatch")
    assert [len(indices) for indices, _ in calls[1:]] == [2, 2, 2]
    assert sorted(i for indices, _ in calls for i in indices) == list(range(7))
    for indices, responses in calls:
        assert [streamed[i] for i in indices] == responses
    assert [r.text for r in streamed] == [r.text for r in plain]
    assert sorted(i for indices in scored for i in indices) == list(range(12)) and len(scored) == 3
    assert all(r.error is None for r in likelihoods)


def test_batch_size_model_argument_takes_auto_or_a_number(tiny_release):
    from s3eval.models import ModelError, build_model

    checkpoint, base = tiny_release
    args = {"checkpoint": str(checkpoint), "base": str(base), "device": "cpu"}
    assert build_model("s3", {**args, "batch_size": "auto"}).batch_size == "auto"
    assert build_model("s3", {**args, "batch_size": "16"}).batch_size == 16
    model = build_model("s3", args)
    model.set_batch_size(8)
    assert model.batch_size == 8 and not model.auto
    with pytest.raises(ModelError, match="batch_size must be a whole number of at least 1 or auto, got 0"):
        model.set_batch_size(0)
