"""Plans: chunking invariants (every frame once, in time order, no request over a cap), the
2-hour case, token and cost arithmetic, speech, JSON, and the budget check just under/over."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
from _media import make_video
from conftest import run_cli

from vnarrate.errors import ConfigError
from vnarrate.models import Frame, FrameSet, Plan, PlanLimits, Usage, VideoInfo
from vnarrate.server.prices import chat_cost, load_prices, speech_cost
from vnarrate.server.providers import PROFILES, plan_limits
from vnarrate.session import stage_options
from vnarrate.settings import Settings
from vnarrate.vision import plan as planning
from vnarrate.vision.chunks import frame_bytes
from vnarrate.vision.plan import PlanOptions, check_budget, plan_frameset, reasoning_allowance
from vnarrate.vision.tokens import image_tokens, text_tokens

# The API's own caps (1,500 images, 100k input tokens, 50 MB, 8,000 output tokens): a
# "compatible" server with the default settings.
API = plan_limits(PROFILES["compatible"], max_images=None, max_input_tokens=None,
                  max_output_tokens=8000)  # fmt: skip


def limits(**caps: int) -> PlanLimits:
    return API.model_copy(update=caps)


def options(model: str, provider: str = "openai", **changes: object) -> PlanOptions:
    """The plan options a run with these settings would use (the real defaults)."""
    plan = stage_options(Settings(model=model, provider=provider)).plan  # type: ignore[arg-type]
    return plan.model_copy(update={"limits": API, **changes})


def make_plan(
    frames: list[Frame],
    *,
    model: str,
    duration_s: float,
    task: str = "describe",
    provider: str = "openai",
    limits: PlanLimits | None = None,
    input: str = "",
    prompt_tokens: int | None = None,
    **changes: object,
) -> Plan:
    opts = options(model, provider, **changes)
    if limits is not None:
        opts = opts.model_copy(update={"limits": limits})
    elif provider != "openai":  # the server's own caps
        opts = stage_options(Settings(model=model, provider=provider)).plan  # type: ignore[arg-type]
    return planning.make_plan(
        frames,
        opts,
        duration_s=duration_s,
        task=task,
        input=input,
        prompt_tokens=prompt_tokens,  # type: ignore[arg-type]
    )


def frames(
    n: int, *, step: float = 1.0, size: tuple[int, int] = (320, 180), jpeg: bytes = b""
) -> list[Frame]:
    w, h = size
    return [Frame(index=i, time_s=i * step, width=w, height=h, jpeg=jpeg) for i in range(n)]


def assert_invariants(plan: Plan, n: int, limits: PlanLimits) -> None:
    """Every frame in exactly one request, requests in time order, none over a cap."""
    chunked = [r for r in plan.requests if r.kind == "frames"]
    assert plan.chunks == len(chunked)
    covered = list(
        itertools.chain.from_iterable(
            range(r.first_frame, r.last_frame + 1)  # type: ignore[arg-type, operator]
            for r in chunked
        )
    )
    assert covered == list(range(n))
    assert [r.index for r in plan.requests] == list(range(1, len(plan.requests) + 1))
    assert chunked[0].start_s == 0.0
    assert chunked[-1].end_s == pytest.approx(plan.duration_s)
    for a, b in itertools.pairwise(chunked):
        assert a.end_s == b.start_s  # contiguous, chronological time ranges
        assert plan.frame_times_s[b.first_frame] == b.start_s  # type: ignore[index]
    for r in plan.requests:
        assert r.images <= limits.max_images_per_request
        assert r.input_tokens <= limits.max_input_tokens
        assert r.request_bytes <= limits.max_request_bytes
        assert r.expected_output_tokens <= r.max_output_tokens == limits.max_output_tokens
        assert r.input_tokens == r.image_tokens + r.text_tokens


# --- a short video ---------------------------------------------------------------------------


def test_short_video_is_one_request_with_exact_image_tokens() -> None:
    fs = frames(48, step=1.25, size=(768, 432))
    plan = make_plan(fs, model="gpt-5.4-mini", duration_s=60.0, input="clip.mp4")
    assert plan.chunks == 1 and len(plan.requests) == 1
    req = plan.requests[0]
    per = image_tokens("gpt-5.4-mini", 768, 432, "auto").tokens
    assert plan.image_tokens_per_frame == per == 404  # 24 x 14 patches x 1.2
    assert req.images == 48 and req.image_tokens == 48 * per
    assert req.first_frame == 0 and req.last_frame == 47
    assert (req.start_s, req.end_s) == (0.0, 60.0)
    # Text: the prompt, plus one timestamp label per frame.
    labels = sum(text_tokens(f"[0:{f.time_s:04.1f}]") for f in fs)
    assert req.text_tokens > labels
    assert plan.frame_times_s == [f.time_s for f in fs]
    assert plan.frame_width == 768 and plan.frame_height == 432
    assert plan.image_rule.startswith("gpt-5.4-mini patch-based") and plan.image_rule_known
    assert plan.input == "clip.mp4" and plan.prices_as_of == load_prices().as_of


def test_costs_follow_the_price_table() -> None:
    plan = make_plan(frames(10), model="gpt-4o", duration_s=10.0)
    req = plan.requests[0]
    usage = Usage(prompt_tokens=req.input_tokens, completion_tokens=req.expected_output_tokens)
    assert req.cost_usd == pytest.approx(chat_cost("gpt-4o", usage))
    worst = Usage(prompt_tokens=req.input_tokens, completion_tokens=req.max_output_tokens)
    assert req.max_cost_usd == pytest.approx(chat_cost("gpt-4o", worst))
    assert plan.cost_usd == plan.chat_cost_usd == pytest.approx(req.cost_usd)
    assert plan.max_cost_usd is not None and plan.max_cost_usd > plan.cost_usd  # type: ignore[operator]
    # gpt-4o does not reason: the expected output is the answer alone.
    assert req.expected_output_tokens == 600


def test_prompt_tokens_can_be_given_exactly() -> None:
    a = make_plan(frames(5), model="gpt-4o", duration_s=5.0, prompt_tokens=1000)
    b = make_plan(frames(5), model="gpt-4o", duration_s=5.0, prompt_tokens=2000)
    assert b.input_tokens - a.input_tokens == 1000


def test_detail_changes_image_tokens() -> None:
    low = make_plan(frames(10, size=(1024, 1024)), model="gpt-4o", duration_s=10, detail="low")
    high = make_plan(frames(10, size=(1024, 1024)), model="gpt-4o", duration_s=10, detail="high")
    assert low.requests[0].image_tokens == 10 * 85
    assert high.requests[0].image_tokens == 10 * 765


def test_frames_out_of_order_are_planned_in_time_order() -> None:
    fs = frames(20)
    plan = make_plan(list(reversed(fs)), model="gpt-4o", duration_s=20.0)
    assert plan.frame_times_s == sorted(plan.frame_times_s)


def test_no_frames() -> None:
    plan = make_plan([], model="gpt-4o", duration_s=10.0)
    assert plan.requests == [] and plan.chunks == 0 and plan.cost_usd == 0.0


# --- long videos and caps --------------------------------------------------------------------


@pytest.mark.parametrize("task", ["describe", "script", "voiceover"])
def test_two_hour_video_at_one_frame_a_second(task: str) -> None:
    caps = API
    fs = frames(7200)  # 2 hours, 1 frame/s, 320x180
    started = time.perf_counter()
    plan = make_plan(
        fs,
        model="gpt-5.4-mini",
        duration_s=7200.0,
        task=task,
        limits=caps,
        speech_model="gpt-4o-mini-tts",
    )
    assert time.perf_counter() - started < 3.0
    assert plan.chunks > 1
    assert_invariants(plan, 7200, caps)
    merges = [r for r in plan.requests if r.kind == "merge"]
    assert len(merges) == (1 if task == "describe" else 0)
    # Frames are spread evenly over the requests.
    sizes = [r.images for r in plan.requests if r.kind == "frames"]
    assert max(sizes) - min(sizes) <= 1
    assert any("split into" in n for n in plan.notes)
    assert plan.cost_usd is not None and plan.cost_usd > 0


def test_two_hour_video_under_tight_caps() -> None:
    tight = PlanLimits(
        max_images_per_request=100,
        max_input_tokens=20_000,
        max_request_bytes=3 * 1024 * 1024,
        max_output_tokens=2000,
    )
    plan = make_plan(
        frames(7200), model="gpt-5.4-mini", duration_s=7200.0, task="script", limits=tight
    )
    assert plan.chunks >= 72
    assert_invariants(plan, 7200, tight)
    assert not any("cut short" in n for n in plan.notes)


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2-hour file, tiny (64x48, 1 fps, ~100 KB)."""
    folder = tmp_path_factory.mktemp("long")
    return make_video(folder / "long.mp4", seconds=7200, fps=1, size=(64, 48), gop=600,
                      barcode=False, moving=False)  # fmt: skip


def test_max_frames_is_a_total_split_into_requests(two_hours: Path) -> None:
    """1,800 frames over 2 hours (--every 4 --max-frames 1800) are more than one request may
    carry (OpenAI: 500 here), so the plan splits them; the flag caps the total, not a request."""
    assert Settings(max_frames=1800).max_frames == 1800
    args = ["plan", two_hours, "--every", "4", "--max-frames", "1800", "--provider", "openai"]
    r = run_cli([*args, "--pack", "none", "--json"])
    assert r.code == 0, r
    plan = json.loads(r.out)["plan"]
    assert plan["frame_times_s"] == [4.0 * i for i in range(1800)]
    sizes = [q["images"] for q in plan["requests"] if q["kind"] == "frames"]
    assert sum(sizes) == 1800 and len(sizes) >= 4 and max(sizes) <= 500
    assert run_cli(args).code == 0  # packed into contact sheets instead (--pack auto)


def test_each_cap_alone_forces_a_split() -> None:
    fs = frames(300, size=(768, 432))
    per = image_tokens("gpt-5.4-mini", 768, 432, "auto").tokens
    by_images = make_plan(
        fs, model="gpt-5.4-mini", duration_s=300, limits=limits(max_images_per_request=50)
    )
    assert by_images.chunks == 6
    by_tokens = make_plan(
        fs,
        model="gpt-5.4-mini",
        duration_s=300,
        limits=limits(max_input_tokens=40 * per + 2000),
    )
    assert by_tokens.chunks >= 300 // 45
    assert_invariants(by_tokens, 300, limits(max_input_tokens=40 * per + 2000))
    jpeg = b"\xff" * 30_000
    heavy = frames(300, size=(768, 432), jpeg=jpeg)
    cap = 20 * frame_bytes(heavy[0]) + 10_000
    by_bytes = make_plan(
        heavy, model="gpt-5.4-mini", duration_s=300, limits=limits(max_request_bytes=cap)
    )
    assert by_bytes.chunks >= 15
    assert_invariants(by_bytes, 300, limits(max_request_bytes=cap))


def test_script_chunks_keep_their_answer_inside_the_output_budget() -> None:
    short = limits(max_output_tokens=1500)
    plan = make_plan(frames(600), model="gpt-4o", duration_s=600.0, task="script", limits=short)
    assert plan.chunks > 1
    assert_invariants(plan, 600, short)


def test_a_frame_that_can_never_fit_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="does not fit"):
        make_plan(
            frames(3, size=(2048, 2048)),
            model="gpt-4o",
            duration_s=3,
            limits=limits(max_input_tokens=500),
        )


# --- unknown models, local servers, speech ---------------------------------------------------


def test_unknown_model_is_flagged_and_costs_unknown() -> None:
    plan = make_plan(frames(10), model="mystery-vlm", duration_s=10.0)
    assert not plan.image_rule_known
    assert any("unknown model" in n for n in plan.notes)
    assert any("no price" in n for n in plan.notes)
    assert plan.cost_usd is None and plan.requests[0].cost_usd is None
    assert plan.input_tokens > 0  # tokens are still estimated


def test_local_server_costs_nothing_and_has_its_own_caps() -> None:
    plan = make_plan(frames(10), model="qwen2.5vl:7b", duration_s=10.0, provider="ollama")
    assert plan.cost_usd == 0.0
    assert plan.limits.max_input_tokens == 32_000
    vllm = make_plan(frames(10), model="qwen2.5vl", duration_s=10.0, provider="vllm")
    assert vllm.chunks == 10  # vLLM's default: one image a request
    check_budget(plan, 0.0)


def test_plan_limits_for_providers_and_overrides() -> None:
    def caps(provider: str, **kw: int | None) -> PlanLimits:
        given = {"max_images": None, "max_input_tokens": None, "max_output_tokens": 8000, **kw}
        return plan_limits(PROFILES[provider], **given)  # type: ignore[arg-type]

    assert caps("openai").max_images_per_request == 500  # older deployments' cap
    assert caps("compatible") == API
    assert caps("vllm").max_images_per_request == 1
    assert caps("vllm", max_images=8).max_images_per_request == 8
    assert caps("openai", max_input_tokens=None).max_input_tokens == 100_000
    assert caps("ollama").max_input_tokens == 32_000
    assert caps("openai", max_output_tokens=4000).max_output_tokens == 4000


def test_reasoning_allowance() -> None:
    assert reasoning_allowance("gpt-5.4-mini") == 1024
    assert reasoning_allowance("o4-mini") == 1024
    assert reasoning_allowance("gpt-4o") == 0
    assert reasoning_allowance("gpt-5.4-mini", "none") == 0
    assert reasoning_allowance("gpt-4o", "high") == 4096


def test_voiceover_plans_speech() -> None:
    plan = make_plan(
        frames(60), model="gpt-5.4-mini", duration_s=60.0, task="voiceover", speech_model="tts-1"
    )
    # 60 s x 2.5 words/s x 90% = 135 words x 6 characters.
    assert plan.speech_characters == 810
    assert plan.speech_seconds == pytest.approx(54.0)
    assert plan.speech_cost_usd == pytest.approx(speech_cost("tts-1", 810))
    assert plan.cost_usd == pytest.approx(plan.chat_cost_usd + plan.speech_cost_usd)  # type: ignore[operator]
    unknown = make_plan(
        frames(60), model="gpt-5.4-mini", duration_s=60.0, task="voiceover", speech_model="my-tts"
    )
    assert unknown.speech_cost_usd is None and unknown.cost_usd is None
    assert any("my-tts" in n for n in unknown.notes)


def test_describe_has_no_speech() -> None:
    plan = make_plan(frames(5), model="gpt-4o", duration_s=5.0, speech_model="tts-1")
    assert plan.speech_characters == 0 and plan.speech_cost_usd is None
    assert plan.speech_model is None


# --- JSON and FrameSet -----------------------------------------------------------------------


def test_plan_serialises_to_json_and_back() -> None:
    plan = make_plan(frames(3000), model="gpt-5.4-mini", duration_s=3000.0)
    data = json.loads(plan.model_dump_json())
    for key in (
        "frame_times_s",
        "requests",
        "input_tokens",
        "expected_output_tokens",
        "cost_usd",
        "notes",
        "limits",
    ):
        assert key in data
    assert Plan.model_validate_json(plan.model_dump_json()) == plan


def test_plan_frameset_takes_duration_shots_and_path() -> None:
    info = VideoInfo(path="v.mp4", width=320, height=180, fps=10, frame_count=100, duration_s=10.0)
    fs = FrameSet(video=info, frames=frames(10), mode="scenes", shot_starts_s=[0.0, 4.5])
    plan = plan_frameset(fs, options("gpt-4o"), "script")
    assert plan.input == "v.mp4" and plan.duration_s == 10.0
    assert plan.shot_starts_s == [0.0, 4.5] and plan.task == "script"


# --- budget ----------------------------------------------------------------------------------


def test_check_budget_just_under_and_over() -> None:
    plan = make_plan(frames(7200), model="gpt-5.4-mini", duration_s=7200.0)
    cost = plan.cost_usd
    assert cost is not None
    check_budget(plan, None)
    check_budget(plan, cost)  # equal: allowed
    check_budget(plan, cost + 0.0001)
    with pytest.raises(ConfigError) as exc:
        check_budget(plan, cost - 0.0001)
    assert exc.value.exit_code == 3
    assert "estimated cost" in str(exc.value) and "exceeds" in str(exc.value)
    assert f"${cost:.3f}" in str(exc.value) or f"${cost:,.2f}" in str(exc.value)


def test_check_budget_refuses_when_the_cost_is_unknown() -> None:
    plan = make_plan(frames(5), model="mystery-vlm", duration_s=5.0)
    check_budget(plan, None)  # no budget, no check
    with pytest.raises(ConfigError, match="no price for 'mystery-vlm'") as exc:
        check_budget(plan, 100.0)
    assert "--prices" in str(exc.value)


def test_check_budget_names_an_unpriced_speech_model() -> None:
    plan = make_plan(
        frames(5), model="gpt-4o", duration_s=5.0, task="voiceover", speech_model="my-tts"
    )
    with pytest.raises(ConfigError, match="my-tts"):
        check_budget(plan, 100.0)


def test_frames_too_thin_to_see_are_said() -> None:
    panorama = [Frame(index=0, time_s=0.0, width=768, height=8, jpeg=b"")]
    plan = make_plan(panorama, model="gpt-5.4-mini", duration_s=1.0)
    assert any("768x8" in n and "--resize 0" in n for n in plan.notes)
    assert not any(
        "too thin" in n for n in make_plan(frames(2), model="gpt-4o", duration_s=2).notes
    )
