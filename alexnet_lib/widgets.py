"""ipywidgets explorers used by the chapters (each returns a widget; display it as a cell's last line).

In the built book the widgets are static (no kernel); their first frame is drawn as a normal figure above them.
"""
from __future__ import annotations

__all__: list[str] = []
