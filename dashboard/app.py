"""Earmark dashboard — entry file: page config, session state, the shared sidebar, the router.

Run: ``streamlit run dashboard/app.py``.

``main(page)`` with a page name skips the router and runs that page directly after the sidebar: the tests
use it, because ``AppTest`` reruns only the page script of a ``st.navigation`` app after its first run.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st

from earmark.errors import EarmarkError
from dashboard import figures, links, sidebar, state
from dashboard.state import init_state

#: A wider sidebar so method and model names fit; less padding above the page so one result fits a screen.
CSS = ("<style>section[data-testid='stSidebar']{min-width:320px;}"
       ".block-container{padding:4.2rem 1.5rem 1rem 1.5rem !important;}"
       "h1{font-size:1.7rem !important;padding:0 0 .3rem 0 !important;}"
       ".st-key-players{gap:.45rem !important;}</style>")
#: Presentation mode (projector): no sidebar, larger type.
PRESENT_CSS = ("<style>section[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl'],"
               "[data-testid='stExpandSidebarButton']{display:none !important;}"
               "html,body,[data-testid='stAppViewContainer']{font-size:19px;}"
               "[data-testid='stMarkdownContainer'] p,[data-testid='stCaptionContainer']{font-size:1.05rem;}"
               ".block-container{max-width:100% !important;padding:3.6rem 1.2rem 1rem 1.2rem !important;}"
               "h1{display:none !important;}"
               ".st-key-exit_present{position:fixed;top:.6rem;right:1rem;z-index:999991;width:auto !important;}</style>")
PAGES_DIR = Path(__file__).parent / "pages"
#: (file stem, title, icon), the first is the default page.
PAGES = (
    ("explore", "Explore", ":material/graphic_eq:"),
    ("recording", "Recording", ":material/timeline:"),
    ("segments", "Segments", ":material/segment:"),
    ("compare", "Compare", ":material/view_column:"),
    ("evaluate", "Faithfulness", ":material/monitoring:"),
    ("profiles", "Class profiles", ":material/stacked_bar_chart:"),
    ("quiz", "Listening quiz", ":material/quiz:"),
    ("about", "Models & credits", ":material/info:"),
)


def _sidebar() -> None:
    links.read_once()   # a shared link's settings, on the session's first run, before the widgets
    try:
        sidebar.render()
    except EarmarkError as exc:  # a person's mistake: said once, on the page; the app stays usable
        st.session_state.current = None
        st.session_state.current_error = str(exc)
    links.write()       # the settings back into the URL, so the address bar is a link to this result


def main(page: str | None = None) -> None:
    init_state()
    st.set_page_config(page_title="Earmark", page_icon=":material/hearing:", layout="wide",
                       initial_sidebar_state="collapsed" if state.get("present") else "expanded")
    st.html(CSS)
    present = st.sidebar.toggle("Presentation mode", key=state.bind("present"),
                                help="For a projector: no sidebar, larger type and ticks, colour-blind-safe "
                                     "palettes, and the 'what am I looking at' panels open.")
    if present:  # the sidebar is hidden: the way out is on the page
        st.html(PRESENT_CSS)
        st.button("Exit presentation mode", icon=":material/close_fullscreen:", key="exit_present",
                  on_click=state.put, args=("present", False))
    figures.use_style("presentation" if present else "default")
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
