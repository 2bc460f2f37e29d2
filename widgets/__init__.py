"""Reusable Textual widgets for the wizard. They know nothing of Backend.AI: plain data in
(widgets.items), messages out. Never import `tui` or `backends` here (docs/tui-contract.md)."""

from widgets.change_table import ChangeTable
from widgets.checks import ChecksView
from widgets.cluster_header import ClusterHeader
from widgets.counters import CounterBar
from widgets.editable_table import EditableTable
from widgets.findings import FindingsView
from widgets.items import ChangeItem, CheckItem, FindingItem, IssueItem, StepItem
from widgets.json_editor import JsonEditor
from widgets.pull_grid import PullGrid
from widgets.step_list import StepList
from widgets.transcript_view import TranscriptView

__all__ = [
    "ChangeItem",
    "ChangeTable",
    "CheckItem",
    "ChecksView",
    "ClusterHeader",
    "CounterBar",
    "EditableTable",
    "FindingItem",
    "FindingsView",
    "IssueItem",
    "JsonEditor",
    "PullGrid",
    "StepItem",
    "StepList",
    "TranscriptView",
]
