"""The browser pages in a real headless Chromium (Debian's, driven by Playwright) against uvicorn on loopback.

The database is a real SQLite file filled the way the pipeline fills it (a run with report rows, jobs,
debates with turns and quote checks, a weak member's label); the pages must show that text. A
screenshot of every page goes to $W2S_SCREENSHOT_DIR (default: artifacts/screenshots).
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import Debate, Example, Label, Model, Turn, make_engine, make_session_factory
from service.store.jobs import enqueue_job
from service.store.migrate import upgrade
from tests.support.api_server import running_api
from tests.trainers.test_report import seed_run
from trainers.report import build_report, plot_pgr

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_KEY = "sk-test-pages"
PASSAGE = "Water boils at 100 degrees Celsius at sea level."
DEBATES = 30  # more than one page (25)


@dataclass
class Site:
    url: str
    run_id: int
    first_debate: int


def _turns() -> list[Turn]:
    return [
        Turn(
            index=0,
            speaker="A",
            stance="correct",
            prompt_tokens=120,
            completion_tokens=40,
            finish_reason="stop",
            quotes_verified=1,
            content="The passage says <v_quote>boils at 100 degrees Celsius</v_quote>, so yes.",
        ),
        Turn(
            index=1,
            speaker="B",
            stance="incorrect",
            prompt_tokens=180,
            completion_tokens=35,
            finish_reason="stop",
            quotes_unverified=1,
            content="It also says <u_quote>water freezes at 50 degrees</u_quote>: doubtful.",
        ),
        Turn(
            index=2,
            speaker="A",
            stance="correct",
            prompt_tokens=230,
            completion_tokens=20,
            finish_reason="length",
            content="B's quote is not in the passage; <b>the candidate</b> stands.",
        ),
    ]


def _seed(sessions: sessionmaker[Session], artifacts: Path) -> tuple[int, int]:
    """A finished run (report rows, chart, jobs), DEBATES debates on its examples, a weak member's label."""
    with sessions.begin() as session:
        run_id = seed_run(session, name="sciq-pages")
        chart = artifacts / "runs" / str(run_id) / "pgr.png"
        chart.parent.mkdir(parents=True)
        plot_pgr(build_report(session, run_id), chart)
        done = enqueue_job(session, "debate", {}, run_id=run_id)
        done.status, done.progress = "succeeded", {"done": 30, "total": 30}
        running = enqueue_job(session, "weak", {}, run_id=run_id)
        running.status, running.progress = "running", {"done": 2, "total": 8, "eta_s": 90}
        rows = session.scalars(
            select(Example).where(Example.run_id == run_id).order_by(Example.id).limit(DEBATES)
        ).all()
        rows[0].context = PASSAGE
        debates = [
            Debate(
                example_id=example.id,
                run_id=run_id,
                protocol="consultancy" if i % 3 == 2 else "debate",
                order="sequential",
                num_turns=3,
                seed=i % 2,
                model="strong",
                params={},
                sampling={},
                status="failed" if i == 29 else "succeeded",
                prompt_tokens=530,
                completion_tokens=95,
                turns=_turns() if i == 0 else [],
                error="StrongModelUnavailable: down" if i == 29 else None,
            )
            for i, example in enumerate(rows)
        ]
        session.add_all(debates)
        member = Model(
            name=f"run{run_id}/weak-s0-debate-d0-t0",
            role="weak",
            base="tiny",
            run_id=run_id,
            condition="member:s0-debate-d0-t0",
            member=0,
            seed=0,
        )
        other = Model(
            name=f"run{run_id}/weak-s0-consultancy-d0-t0",
            role="weak",
            base="tiny",
            run_id=run_id,
            condition="member:s0-consultancy-d0-t0",
            member=0,
            seed=0,
        )
        session.add_all([member, other])
        session.flush()
        session.add_all(
            [
                Label(model_id=member.id, example_id=rows[0].id, soft_label=0.731, hard_label=1),
                Label(model_id=other.id, example_id=rows[0].id, soft_label=0.2, hard_label=0),
            ]
        )
        return run_id, debates[0].id


@pytest.fixture
def site(migrated_url: str, tmp_path: Path) -> Iterator[Site]:
    """The seeded pages on SQLite and on PostgreSQL."""
    engine = make_engine(migrated_url)
    run_id, first = _seed(make_session_factory(engine), tmp_path / "artifacts")
    engine.dispose()
    settings = Settings(
        _env_file=None,
        database_url=migrated_url,
        vllm_base_url="http://127.0.0.1:9",
        artifacts_dir=tmp_path / "artifacts",
        api_keys=[API_KEY],
    )
    with running_api(settings) as base:
        yield Site(base, run_id, first)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "needs Debian's chromium: apt-get install -y chromium (deploy/setup.sh does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def _shot(page: Page, name: str) -> None:
    folder = Path(os.environ.get("W2S_SCREENSHOT_DIR", "artifacts/screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png", full_page=True)


def _log_in(page: Page, site: Site, path: str) -> None:
    page.goto(site.url + path)
    expect(page).to_have_url(f"{site.url}/ui/login?next={path.replace('/', '%2F')}")
    page.fill("input[name=key]", API_KEY)
    page.click("button[type=submit] >> text=Log in")
    expect(page).to_have_url(site.url + path)


def test_pages_need_the_api_key_and_the_login_form_sets_it(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/ui/runs")
    expect(page.locator("h1")).to_have_text("Log in")
    page.fill("input[name=key]", "wrong")
    page.click("button[type=submit] >> text=Log in")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    _shot(page, "login")
    page.fill("input[name=key]", API_KEY)
    page.click("button[type=submit] >> text=Log in")
    expect(page).to_have_url(f"{site.url}/ui/runs")
    page.click("text=Log out")
    page.goto(f"{site.url}/ui/debates/{site.first_debate}")
    expect(page.locator("h1")).to_have_text("Log in")


def test_run_list_and_run_page_show_stages_report_and_chart(site: Site, page: Page) -> None:
    _log_in(page, site, "/ui/runs")
    row = page.locator("table.runs tr", has_text="sciq-pages")
    expect(row).to_contain_text("running")  # its weak job runs
    expect(row).to_contain_text(str(DEBATES))
    _shot(page, "runs")
    row.get_by_role("link", name="sciq-pages").click()
    expect(page).to_have_url(f"{site.url}/ui/runs/{site.run_id}")
    expect(page.locator("table.stages")).to_contain_text("30/30")
    expect(page.locator("table.stages tr", has_text="weak")).to_contain_text("90 s")
    report = page.locator("table.report")
    expect(report.locator("tr", has_text="no_debate")).to_contain_text("50.0")  # PGR (0.71-0.61)/(0.81-0.61)
    expect(report.locator("tr", has_text="consultancy")).to_contain_text("undefined")
    chart = page.locator("img.chart")
    expect(chart).to_be_visible()
    page.wait_for_load_state("load")
    assert chart.evaluate("img => img.complete && img.naturalWidth") > 100  # the PNG loaded with the cookie
    _shot(page, "run")
    page.click(f"text={DEBATES} debates")
    expect(page).to_have_url(f"{site.url}/ui/debates?run_id={site.run_id}")


def test_debate_list_filters_and_pages(site: Site, page: Page) -> None:
    _log_in(page, site, "/ui/debates")
    expect(page.locator("nav.paging")).to_contain_text(f"1–25 of {DEBATES}")
    expect(page.locator("table.debates tr")).to_have_count(26)
    _shot(page, "debates")
    page.click("text=next →")
    expect(page.locator("nav.paging")).to_contain_text(f"26–{DEBATES} of {DEBATES}")
    expect(page.locator("table.debates tr")).to_have_count(DEBATES - 25 + 1)

    page.goto(f"{site.url}/ui/debates")
    page.select_option("select[name=protocol]", "consultancy")
    page.click("button >> text=Filter")
    expect(page.locator("nav.paging")).to_contain_text("1–10 of 10")
    for cell in page.locator("table.debates tr td:nth-child(3)").all():
        expect(cell).to_have_text("consultancy")
    page.select_option("select[name=status]", "failed")
    page.click("button >> text=Filter")
    expect(page.locator("table.debates tr")).to_have_count(2)
    expect(page.locator("table.debates")).to_contain_text("Q29?")
    _shot(page, "debates-filtered")

    page.goto(f"{site.url}/ui/debates?q=q2&seed=0&run_id={site.run_id}")  # any case
    shown = page.locator("table.debates tr td:nth-child(6)").all_inner_texts()
    assert shown == ["Q2?", "Q20?", "Q22?", "Q24?", "Q26?", "Q28?"]
    page.goto(f"{site.url}/ui/debates?run_id=999")
    expect(page.locator("main")).to_contain_text("No debates match these filters.")


def test_debate_page_shows_the_transcript_quotes_and_weak_label(site: Site, page: Page) -> None:
    _log_in(page, site, f"/ui/debates/{site.first_debate}")
    expect(page.locator(".example .question")).to_have_text("Q0?")
    expect(page.locator(".example .passage")).to_have_text(PASSAGE)
    turns = page.locator("article.turn")
    expect(turns).to_have_count(3)
    expect(turns.nth(0).locator(".speaker")).to_have_text("Debater A (arguing the answer is correct)")
    expect(turns.nth(1).locator(".speaker")).to_have_text("Debater B (arguing the answer is incorrect)")
    expect(turns.nth(0)).to_contain_text("120 prompt / 40 completion tokens")
    expect(turns.nth(0).locator("mark.quote.verified")).to_have_text("boils at 100 degrees Celsius")
    expect(turns.nth(1).locator("mark.quote.unverified")).to_have_text("water freezes at 50 degrees")
    expect(turns.nth(2)).to_contain_text("B's quote is not in the passage; <b>the candidate</b> stands.")  # escaped
    expect(turns.nth(2)).to_contain_text("finish: length")
    labels = page.locator("table.weak-labels tr")
    expect(labels).to_have_count(2)  # the debate member's label only, not the consultancy member's
    expect(labels.nth(1)).to_contain_text("weak-s0-debate-d0-t0")
    expect(labels.nth(1)).to_contain_text("0.731")
    _shot(page, "debate")
    page.goto(f"{site.url}/ui/debates/99999")
    expect(page.locator("main")).to_contain_text("No debate with id 99999.")


def test_without_api_keys_the_pages_are_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    settings = Settings(_env_file=None, database_url=url, vllm_base_url="http://127.0.0.1:9", artifacts_dir=tmp_path)
    with running_api(settings) as base, httpx.Client(base_url=base) as client:
        assert client.get("/").headers["location"] == "/ui/runs"
        assert "No experiment runs yet" in client.get("/ui/runs").text
        assert "has no API keys" in client.get("/ui/login").text
        assert client.get("/ui/runs/7").status_code == 404
        assert client.get("/ui/debates", params={"page": 0}).status_code == 422


def test_login_sets_a_cookie_the_api_accepts_and_never_redirects_off_site(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        assert client.get("/v1/runs").status_code == 401
        for unsafe in ("https://elsewhere.example/ui/", "//elsewhere.example/ui/", "/v1/runs"):
            answer = client.post("/ui/login", data={"key": API_KEY, "next": unsafe})
            assert (answer.status_code, answer.headers["location"]) == (303, "/ui/runs")
        assert "httponly" in answer.headers["set-cookie"].lower()
        assert [run["name"] for run in client.get("/v1/runs").json()] == ["sciq-pages"]
        client.cookies.set("w2s_api_key", "wrong")
        assert client.get("/v1/runs").status_code == 403
