"""The listening quiz: answers in a real SQLite file (reopened), the rates with their intervals, the page."""

from __future__ import annotations

import random
import sqlite3

import pytest

from earmark.errors import ConfigError
from earmark.quiz import Question, QuizStore, eligible_clips, next_question, store_path, wilson


def q(explainer="ig", transform="stft", mode="keep", truth="7", clip="digit_7_en-us", k=10.0) -> Question:
    return Question(clip=clip, model="audionet-digits", explainer=explainer, transform=transform, mode=mode, k=k,
                    truth=truth)


def test_answers_survive_reopening_and_are_summarised(tmp_path):
    path = tmp_path / "quiz.sqlite"
    store = QuizStore(path)
    assert store.record(q(), "7", session="a") is True
    assert store.record(q(), "1", session="a") is False
    assert store.record(q(), "7", session="b") is True
    store.record(q(mode="remove", k=20.0), "3", session="b")
    store.record(q(explainer="freqrise", transform="fourier"), "7")
    del store
    again = QuizStore(path)               # a new process / server restart
    assert again.count() == 5
    rows = {(r.explainer, r.transform, r.mode): r for r in again.summary()}
    keep = rows[("ig", "stft", "keep")]
    assert (keep.n, keep.correct) == (3, 2) and keep.rate == pytest.approx(2 / 3)
    assert keep.low < 2 / 3 < keep.high and (keep.low, keep.high) == pytest.approx(wilson(2, 3))
    assert rows[("ig", "stft", "remove")].rate == 0.0 and rows[("ig", "stft", "remove")].mean_k == 20.0
    assert rows[("freqrise", "fourier", "keep")].n == 1
    assert list(rows)[0] == ("ig", "stft", "keep")  # most answered first
    with sqlite3.connect(path) as db:        # the file is plain SQLite, readable by anyone's tools
        assert db.execute("SELECT COUNT(*) FROM answers WHERE correct = 1").fetchone()[0] == 3
    assert again.summary(model="other") == []


def test_wilson_interval_known_values():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_bad_file_and_mode_are_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="EARMARK_QUIZ_DB"):
        QuizStore(tmp_path / "no" / "such" / "folder" / "quiz.sqlite")
    with pytest.raises(ConfigError):
        QuizStore(tmp_path / "q.sqlite").record(q(mode="louder"), "7")


def test_store_path_follows_the_environment(tmp_path):
    assert store_path({"EARMARK_QUIZ_DB": str(tmp_path / "x.sqlite")}) == tmp_path / "x.sqlite"
    assert store_path({}).name == "earmark-quiz.sqlite"


def test_questions_come_from_clips_the_model_knows():
    from earmark.examples import list_examples

    clips = eligible_clips(list_examples(), [str(i) for i in range(10)])
    assert clips and all(name.startswith("digit_") and name[6] == truth for name, truth in clips)
    assert eligible_clips(list_examples(), ["cells 1+2", "cells 3"]) == []
    rng = random.Random(0)
    seen = {next_question(clips, model="m", explainer="ig", transform="stft", mode="keep", k=10, rng=rng).clip
            for _ in range(50)}
    assert len(seen) > 5
    one = next_question(clips[:2], model="m", explainer="ig", transform="stft", mode="keep", k=10, rng=rng,
                        previous=clips[0][0])
    assert one.clip == clips[1][0]
    with pytest.raises(ConfigError, match="digits"):
        next_question([], model="m", explainer="ig", transform="stft", mode="keep", k=10, rng=rng)


def test_quiz_page_stores_an_answer(tmp_path, monkeypatch):
    from test_app import make_app, run

    path = tmp_path / "page.sqlite"
    monkeypatch.setenv("EARMARK_QUIZ_DB", str(path))
    at = make_app(w_model="audionet-digits")
    at.session_state["p_explainer_ig_n_steps"] = 4
    run(at, "quiz")
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("audio")) == 1
    question = at.session_state["quiz_question"]
    at.radio(key="quiz_answer").set_value(question.truth)
    submit = at.get("form_submit_button")
    assert len(submit) == 1
    submit[0].click()
    run(at)
    assert "Right" in " ".join(str(s.value) for s in at.success)
    rows = QuizStore(path).summary()
    assert len(rows) == 1 and rows[0].n == 1 and rows[0].correct == 1 and rows[0].explainer == "ig"
    assert any("recovered" in str(df.value.columns.tolist()) for df in at.dataframe)
    # the mode and k persist across pages
    at.segmented_control(key="w_quiz_mode").set_value("remove")
    run(at)
    at.slider(key="w_quiz_k").set_value(30)
    run(at)
    run(at, "explore")
    run(at, "quiz")
    assert at.segmented_control(key="w_quiz_mode").value == "remove"
    assert at.slider(key="w_quiz_k").value == 30
    q = at.session_state["quiz_question"]
    assert (q.mode, q.k) == ("remove", 30.0)
    assert "Everything but the top 30 %" in " ".join(str(m.value) for m in at.markdown)
