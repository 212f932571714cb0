"""Earmark dashboard — entry file: page config, session state, the shared sidebar, the router.

Run: ``streamlit run dashboard/app.py``.

``main(page)`` with a page name skips the router and runs that page directly after the sidebar: the tests
use it, because ``AppTest`` reruns only the page script of a ``st.navigation`` app after its first run.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from earmark.errors import EarmarkError  # noqa: E402
from dashboard import sidebar  # noqa: E402
from dashboard.state import init_state  # noqa: E402

#: A wider sidebar so method and model names fit (readable on a projector).
CSS = "<style>section[data-testid='stSidebar']{min-width:360px;}</style>"
PAGES_DIR = Path(__file__).parent / "pages"
#: (file stem, title, icon), the first is the default page.
PAGES = (
    ("explore", "Explore", ":material/graphic_eq:"),
    ("compare", "Compare", ":material/view_column:"),
    ("evaluate", "Faithfulness", ":material/monitoring:"),
    ("about", "Models & credits", ":material/info:"),
)


def _sidebar() -> None:
    try:
        sidebar.render()
    except EarmarkError as exc:  # a person's mistake: say it, keep the app usable
        st.sidebar.error(str(exc))
        st.session_state.current = None
        st.session_state.current_error = str(exc)


def main(page: str | None = None) -> None:
    st.set_page_config(page_title="Earmark", page_icon=":material/hearing:", layout="wide", initial_sidebar_state="expanded")
    init_state()
    st.html(CSS)
    if page is not None:
        _sidebar()
        runpy.run_path(str(PAGES_DIR / f"{page}.py"), run_name="__page__")
        return
    nav = st.navigation([
        st.Page(PAGES_DIR / f"{stem}.py", title=title, icon=icon, default=(i == 0), url_path=stem)
        for i, (stem, title, icon) in enumerate(PAGES)
    ], position="top")
    _sidebar()
    nav.run()


if __name__ == "__main__":
    main()
