"""Listening quiz: hear only the salient part of a clip (or the rest) and say which class it is.

The explainer, domain and model are the sidebar's; the clip is a bundled example the model knows. Answers
go to the SQLite file named by ``EARMARK_QUIZ_DB`` (logic in ``earmark.quiz``); the table below says how
often people recovered the class per explainer, domain and mode.
"""

from __future__ import annotations

import random
import uuid

import streamlit as st

from earmark.errors import EarmarkError
from dashboard import live, state, views
from dashboard import services as sv
from dashboard.common import current

st.title("Listening quiz")
cur = current()
if cur is None:
    st.stop()

from earmark.quiz import MODES, Question, eligible_clips, next_question, store_path  # noqa: E402

views.what_panel(
    "You hear a clip rebuilt from part of its explanation: **keep** plays only the top k % of the map's cells "
    "(what the explainer says matters), **remove** plays everything except them. Say which class you hear. "
    "If people recover the class from the kept part, and lose it when that part is removed, the explanation "
    "points at what carries the class — for people, not only for the model. Chance is one in the number of "
    "classes.", present=state.get("present"))

card, settings = cur["card"], cur["settings"]
labels = [str(label) for label in card.labels]
clips = eligible_clips(sv.list_examples(), labels)
path = store_path()
try:
    store = sv.quiz_store(str(path))
except EarmarkError as exc:
    st.error(str(exc))
    st.stop()
if "quiz_session" not in st.session_state:
    st.session_state.quiz_session = uuid.uuid4().hex[:12]

c1, c2, c3 = st.columns([2, 3, 2], vertical_alignment="bottom")
mode = c1.segmented_control("Play", list(MODES), key=state.bind("quiz_mode"),
                            format_func=lambda m: {"keep": "Keep top k %", "remove": "Remove top k %"}[m])
k = c2.slider("k: share of the map's cells (%)", 1, 90, key=state.bind("quiz_k"), format="%d %%")
new = c3.button("New clip", icon=":material/shuffle:", key="quiz_new", width="stretch")

q: Question | None = st.session_state.quiz_question
wanted = (settings.model, settings.explainer, settings.transform, mode, float(k))
if new or q is None or (q.model, q.explainer, q.transform, q.mode, q.k) != wanted:
    try:
        q = next_question(clips, model=settings.model, explainer=settings.explainer, transform=settings.transform,
                          mode=mode, k=k, rng=random.Random(), previous=q.clip if q else None)
    except EarmarkError as exc:
        st.warning(str(exc))
        st.stop()
    st.session_state.quiz_question = q
    if new:
        st.session_state.quiz_feedback = None

method = sv.explainer_specs()[settings.explainer].title        # the names people read in the menus
domain = sv.transform_classes()[settings.transform].title


def _heard(q: Question, *, watch: bool):
    """The audio of question ``q`` (L,), or ``None`` while its explanation or listening job runs (watched
    on the page when ``watch``; the jobs are submitted either way)."""
    qsettings, ready = sv.quiz_clip(q.clip, settings, card)
    exp = sv.explanation(qsettings)   # the same job service as Explore: a clip explained once is ready for all
    if exp is None:
        job = sv.explanation_job(qsettings) or sv.submit_explanation(qsettings, ready.wave)
        exp = (live.result_or_watch(job, key="quiz_explain", wait=30.0, label=f"Explaining the clip with {method}")
               if watch else sv.job_result(job, wait=5.0))
    if exp is None:
        return None
    job = sv.listen_job(qsettings, ready.wave, exp, q.k / 100, True)
    heard = (live.result_or_watch(job, key="quiz_listen", wait=10.0, label="Rendering the audio") if watch
             else sv.job_result(job, wait=10.0))
    return None if heard is None else heard[q.mode][0]


try:
    first = _heard(q, watch=True)
except EarmarkError as exc:
    st.error(str(exc))
    st.stop()
if first is None:
    st.stop()


def _answer() -> None:
    """The Answer button's callback: store the answer, move on to the next clip (before the fragment reruns)."""
    q, answer = st.session_state.quiz_question, st.session_state.get("quiz_answer")
    st.session_state.quiz_unanswered = answer is None
    if answer is None:
        return
    ok = store.record(q, answer, session=st.session_state.quiz_session)
    st.session_state.quiz_feedback = (ok, q.truth, answer, q.clip)
    st.session_state.quiz_question = _upcoming(q)
    st.session_state.quiz_upcoming = None
    st.session_state.quiz_answer = None


def _upcoming(q: Question) -> Question:
    """The question after ``q``, chosen ahead so its explanation is computed while ``q`` is answered."""
    nxt = st.session_state.get("quiz_upcoming")
    if nxt is None or nxt.clip == q.clip or (nxt.model, nxt.explainer, nxt.transform, nxt.mode, nxt.k) != (
            q.model, q.explainer, q.transform, q.mode, q.k):
        nxt = next_question(clips, model=q.model, explainer=q.explainer, transform=q.transform, mode=q.mode,
                            k=q.k, rng=random.Random(), previous=q.clip)
        st.session_state.quiz_upcoming = nxt
    return nxt


def _prefetch(q: Question) -> None:
    """Queue the explanation of question ``q`` (no wait): the answer to this one then reruns only the fragment."""
    qsettings, ready = sv.quiz_clip(q.clip, settings, card)
    if sv.explanation(qsettings) is None and sv.explanation_job(qsettings) is None:
        sv.submit_explanation(qsettings, ready.wave)


@st.fragment
def _question() -> None:
    """The question, its audio and the answer: an answer reruns only this part (the page is not greyed)."""
    q = st.session_state.quiz_question
    try:
        wave = _heard(q, watch=False)
    except EarmarkError as exc:
        st.error(str(exc))
        return
    if wave is None:      # the next clip's explanation is still running: the whole page watches it
        st.rerun()
    st.markdown(f"**{'Only the top' if q.mode == 'keep' else 'Everything but the top'} {q.k:g} % of the "
                f"{method} map in the {domain} domain.** Which class is it?")
    st.audio(sv.wav_bytes(wave, card.sample_rate), format="audio/wav")
    with st.form("quiz_form", border=False):
        st.radio("Your answer", labels, horizontal=True, index=None, key="quiz_answer")
        st.form_submit_button("Answer", type="primary", on_click=_answer)
    if st.session_state.get("quiz_unanswered"):
        st.warning("Pick a class first.")
    fb = st.session_state.quiz_feedback
    if fb:
        ok, truth, given, name = fb
        (st.success if ok else st.info)(f"{'Right' if ok else 'Not quite'}: the last clip ({name}) was **{truth}**; "
                                        f"you said **{given}**. Here is the next one.")
    try:
        _prefetch(_upcoming(q))
    except EarmarkError:   # a full queue: the next question is explained when it is asked
        pass


_question()

st.subheader("How often people recovered the class")
rows = store.summary(model=settings.model)
if not rows:
    st.caption(f"No answers for {settings.model} yet.")
else:
    st.dataframe({
        "explainer": [r.explainer for r in rows], "domain": [r.transform for r in rows],
        "played": [f"{r.mode} top {r.mean_k:.0f} %" for r in rows], "answers": [r.n for r in rows],
        "recovered": [f"{r.rate:.0%}" for r in rows],
        "95 % interval": [f"{r.low:.0%}–{r.high:.0%}" for r in rows],
    }, hide_index=True, width="stretch", key="quiz_table")
st.caption(f"Chance: {1 / len(labels):.0%}. Answers are stored in `{path.name}` "
           f"({store.count()} in all; the server's owner sets the file with `EARMARK_QUIZ_DB`).")
