"""Dimension expressions and the parameters they bind (no engine)."""

from __future__ import annotations

from reporting.expressions import Binder, column, dimensions, empty_label, label, time_label


def test_the_binder_names_parameters_in_order() -> None:
    binder = Binder({"site_id": "s"})
    assert binder.bind("a", "String") == "{p1:String}"
    assert binder.bind(["b"], "Array(String)") == "{p2:Array(String)}"
    assert binder.parameters == {"site_id": "s", "p1": "a", "p2": ["b"]}


def test_columns_of_event_visit_and_property_dimensions() -> None:
    binder = Binder()
    assert column("event:page", binder) == "path"
    assert column("visit:exit_page", binder) == "v_exit_page"
    assert column("event:props:plan", binder) == "props[{p0:String}]"
    assert binder.parameters == {"p0": "plan"}


def test_labels_of_empty_values() -> None:
    assert empty_label("visit:source") == "Direct / None"
    assert empty_label("visit:os") == "(not set)"
    assert label("visit:source", "r0") == "if(r0 = '', 'Direct / None', toString(r0))"
    assert time_label("minute", "r1") == "formatDateTime(r1, '%Y-%m-%d %H:%i:00', {tz:String})"


def test_time_buckets_group_events_by_their_time_and_visits_by_their_opening() -> None:
    binder = Binder()
    dims = dimensions(("time:hour", "event:props:k", "visit:country"), "hour", binder)
    assert dims.event == ["toStartOfHour(ts, {tz:String})", "props[{p0:String}]", "v_country"]
    assert dims.visit == ["toStartOfHour(v_opened, {tz:String})", *dims.event[1:]]
    assert dims.labelled == [
        "formatDateTime(r0, '%Y-%m-%d %H:00:00', {tz:String})",
        "if(r1 = '', '(not set)', toString(r1))",
        "if(r2 = '', '(not set)', toString(r2))",
    ]
    assert binder.parameters == {"p0": "k"}  # bound once for both kinds of rows


def test_time_without_a_bucket_is_by_day() -> None:
    assert dimensions(("time",), None, Binder()).event == ["toDate(ts, {tz:String})"]
