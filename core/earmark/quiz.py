"""The listening quiz: can a person tell the class from only the salient part of a clip (or from the rest)?

A listener hears the keep-top-k % (or remove-top-k %) version of a clip, rebuilt from an explanation, and
says which class it is. If people recover the class from the kept part and lose it when that part is
removed, the explanation found what matters — the human check the RELAX study asks for. Answers are kept
in SQLite (standard library; one file chosen by the server's owner with ``EARMARK_QUIZ_DB``), one row per
answer; :meth:`QuizStore.summary` gives the recovery rate per explainer, domain and mode with a 95 %
Wilson interval.

Every call opens its own connection, so one store can be shared by the threads of a server.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

from .errors import ConfigError

Mode = Literal["keep", "remove"]
MODES: tuple[Mode, ...] = ("keep", "remove")
#: Environment variable naming the SQLite file; without it, ``earmark-quiz.sqlite`` in the working directory.
ENV = "EARMARK_QUIZ_DB"
DEFAULT_FILE = "earmark-quiz.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    session TEXT NOT NULL,
    clip TEXT NOT NULL,
    model TEXT NOT NULL,
    explainer TEXT NOT NULL,
    transform TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('keep', 'remove')),
    k REAL NOT NULL,
    truth TEXT NOT NULL,
    answer TEXT NOT NULL,
    correct INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_method ON answers (explainer, transform, mode);
"""


@dataclass(frozen=True)
class Question:
    """One clip to listen to: what is played and the class it really is."""

    clip: str
    model: str
    explainer: str
    transform: str
    mode: Mode
    k: float
    truth: str


@dataclass(frozen=True)
class Result:
    """Recovery of the class for one explainer, domain and mode.

    Attributes:
        n: answers.  correct: right answers.  rate: correct / n.  low, high: 95 % Wilson interval.
        mean_k: the average percentage of cells kept / removed in those questions.
    """

    explainer: str
    transform: str
    mode: Mode
    n: int
    correct: int
    rate: float
    low: float
    high: float
    mean_k: float


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``(0, 1)`` for ``n = 0``)."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def store_path(environ=None) -> Path:
    """The quiz file: ``$EARMARK_QUIZ_DB`` or ``earmark-quiz.sqlite`` in the working directory."""
    env = os.environ if environ is None else environ
    return Path(env.get(ENV) or DEFAULT_FILE)


class QuizStore:
    """Answers in one SQLite file (created on first use).

    Args:
        path: the database file; its folder must exist.

    Raises:
        ConfigError: the file cannot be opened or is not a quiz database.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with self._connect() as db:
                db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"The quiz file '{self.path}' cannot be used ({exc}). Set {ENV} to a writable "
                              "file in an existing folder.") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        return db

    def record(self, question: Question, answer: str, *, session: str = "") -> bool:
        """Store one answer; returns whether it was right."""
        if question.mode not in MODES:
            raise ConfigError(f"The quiz mode is 'keep' or 'remove'; got {question.mode!r}.")
        correct = str(answer) == str(question.truth)
        with self._connect() as db:
            db.execute(
                "INSERT INTO answers (created, session, clip, model, explainer, transform, mode, k, truth, answer,"
                " correct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), session, question.clip, question.model, question.explainer, question.transform,
                 question.mode, float(question.k), str(question.truth), str(answer), int(correct)))
        return correct

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def summary(self, *, model: str | None = None) -> list[Result]:
        """Recovery rates per (explainer, transform, mode), most answered first."""
        query = ("SELECT explainer, transform, mode, COUNT(*), SUM(correct), AVG(k) FROM answers"
                 + (" WHERE model = ?" if model else "") + " GROUP BY explainer, transform, mode"
                 " ORDER BY COUNT(*) DESC, explainer, transform, mode")
        with self._connect() as db:
            rows = db.execute(query, (model,) if model else ()).fetchall()
        out = []
        for explainer, transform, mode, n, correct, mean_k in rows:
            low, high = wilson(int(correct), int(n))
            out.append(Result(explainer, transform, mode, int(n), int(correct), int(correct) / int(n), low, high,
                              float(mean_k)))
        return out


def eligible_clips(examples: Iterable, labels: Sequence[str]) -> list[tuple[str, str]]:
    """``(example name, true label)`` for the bundled examples whose class the model has.

    An example qualifies when its ``label`` indexes ``labels`` and names the same class (the digit models'
    labels are ``"0"`` … ``"9"``).
    """
    out = []
    for ex in examples:
        label = getattr(ex, "label", None)
        if label is None or not 0 <= int(label) < len(labels):
            continue
        if str(labels[int(label)]) != str(label):
            continue
        out.append((ex.name, str(labels[int(label)])))
    return out


def next_question(clips: Sequence[tuple[str, str]], *, model: str, explainer: str, transform: str, mode: Mode,
                  k: float, rng: random.Random, previous: str | None = None) -> Question:
    """A random clip (another than ``previous`` when there is a choice).

    Raises:
        ConfigError: no clip the model can be quizzed on.
    """
    if not clips:
        raise ConfigError("No bundled clip has a class this model knows: the quiz needs a model of the spoken "
                          "digits (e.g. audionet-digits).")
    pool = [c for c in clips if c[0] != previous] or list(clips)
    name, truth = pool[rng.randrange(len(pool))]
    return Question(clip=name, model=model, explainer=explainer, transform=transform, mode=mode, k=float(k),
                    truth=truth)
