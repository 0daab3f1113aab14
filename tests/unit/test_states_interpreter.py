"""The States Language interpreter the rollout tests run on, checked on tiny definitions against the documented
semantics: intrinsics and their escapes, ResultPath, Retry and Catch, Choice rules, and what it refuses."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes.states import Execution, StateMachine, TaskFailure, Unsupported, VirtualClock

TASK = "arn:aws:states:::test:task"


def machine(states: dict[str, Any], **top: Any) -> StateMachine:
    return StateMachine({"StartAt": next(iter(states)), "States": states, **top})


def run(states: dict[str, Any], data: Any = None, task: Callable[[dict[str, Any]], Any] | None = None) -> Execution:
    return machine(states).execute({} if data is None else data, {TASK: task or (lambda parameters: parameters)})


def passing(parameters: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"Only": {"Type": "Pass", "Parameters": parameters, "End": True, **fields}}


def value_of(expression: str, data: Any) -> Any:
    execution = run(passing({"value.$": expression}), data)
    assert execution.status == "SUCCEEDED", execution
    return execution.output["value"]


def failing(errors: list[str]) -> Callable[[dict[str, Any]], Any]:
    """A task that fails with each error in turn, then succeeds."""
    queue = list(errors)

    def task(parameters: dict[str, Any]) -> Any:
        if queue:
            raise TaskFailure(queue.pop(0), "it broke")
        return {"done": True}

    return task


# Intrinsics --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("States.Format('{} had {}% ({}, {})', $.id, $.percent, $.on, $.none)", "two had 10% (true, null)"),
        ("States.Format('no placeholder')", "no placeholder"),
        # In the definition's JSON text each backslash is doubled; these are the string values.
        ("States.Format('it\\'s \\{\\} and \\\\ for {}', $.id)", "it's {} and \\ for two"),
        ("States.Format('{}{}', 'a\\{', States.Format('{}', $.percent))", "a{10"),
        ("States.MathAdd(States.ArrayLength($.list), States.ArrayLength($.empty))", 3),
        ("States.MathAdd($.percent, -1)", 9),
        ("States.ArrayGetItem($.list, States.MathAdd($.index, 1))", "c"),
        ("States.JsonToString($.list)", '["a","b","c"]'),
        ("States.JsonToString($.nested)", '{"k":[1,{"x":null}]}'),
        ("States.Format('{} {}', States.JsonToString($.empty), States.JsonToString($.list))", '[] ["a","b","c"]'),
    ],
)
def test_intrinsics_give_the_documented_values(expression: str, expected: Any) -> None:
    data = {
        "id": "two",
        "percent": 10,
        "on": True,
        "none": None,
        "list": ["a", "b", "c"],
        "empty": [],
        "index": 1,
        "nested": {"k": [1, {"x": None}]},
    }
    assert value_of(expression, data) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", {"items": [{"name": "a"}, {"name": "b"}], "none": []}),
        ("$.items[1].name", "b"),
        ("$.items[*].name", ["a", "b"]),
        ("$.none[*].name", []),
    ],
)
def test_paths_select_fields_indexes_and_projections(path: str, expected: Any) -> None:
    assert value_of(path, {"items": [{"name": "a"}, {"name": "b"}], "none": []}) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "States.Format('\\n {}', $.id)",  # an open escape backslash
        "States.Format('{ {}', $.id)",  # a brace that is not a placeholder
        "States.Format('{} {}', $.id)",  # a placeholder without its value
        "States.Format($.template, $.id)",  # a template from the input is not modelled
        "States.UUID()",
        "States.ArrayLength($.a, $.b)",
        "States.JsonToString('text')",
        "States.Format('{}', $.id",
        "States.Format('{}', $$.Task.Token)",
        "States.Format('{}', $.a..b)",
    ],
)
def test_unsupported_or_invalid_intrinsics_are_refused_before_running(expression: str) -> None:
    with pytest.raises(Unsupported):
        machine(passing({"value.$": expression}))


@pytest.mark.parametrize(
    "expression",
    [
        "States.ArrayGetItem($.list, 3)",
        "States.MathAdd($.id, 1)",
        "States.ArrayLength($.id)",
        "States.Format('{}', $.list)",
        "$.missing",
        "$.list[5]",
        "$.missing[*].name",
    ],
)
def test_values_an_intrinsic_or_path_cannot_take_fail_the_execution_with_states_runtime(expression: str) -> None:
    states = {
        "Work": {
            "Type": "Task",
            "Resource": TASK,
            "Parameters": {"value.$": expression},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Succeed"},
    }

    execution = run(states, {"id": "two", "list": ["a", "b", "c"]})

    assert (execution.status, execution.error, execution.visited) == ("FAILED", "States.Runtime", ["Work"])


# ResultPath, Retry and Catch ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result_path", "expected"),
    [
        ({}, {"found": 1}),
        ({"ResultPath": None}, {"keep": 1}),
        ({"ResultPath": "$"}, {"found": 1}),
        ({"ResultPath": "$.a.b"}, {"keep": 1, "a": {"b": {"found": 1}}}),
        ({"ResultPath": "$.keep"}, {"keep": {"found": 1}}),
    ],
)
def test_result_path_places_the_result_in_the_input_or_discards_it(
    result_path: dict[str, Any], expected: dict[str, Any]
) -> None:
    execution = run(passing({"found": 1}, **result_path), {"keep": 1})

    assert execution.output == expected


def test_a_caught_error_is_placed_at_the_catchers_result_path_and_the_first_matching_catcher_wins() -> None:
    states = {
        "Work": {
            "Type": "Task",
            "Resource": TASK,
            "ResultPath": None,
            "Catch": [
                {"ErrorEquals": ["Other"], "Next": "Wrong"},
                {"ErrorEquals": ["Broken", "Other"], "ResultPath": "$.failure", "Next": "Caught"},
                {"ErrorEquals": ["States.ALL"], "Next": "Wrong"},
            ],
            "End": True,
        },
        "Caught": {"Type": "Succeed"},
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
    }

    execution = run(states, {"release": "two"}, failing(["Broken"]))

    assert execution.status == "SUCCEEDED"
    assert execution.output == {"release": "two", "failure": {"Error": "Broken", "Cause": "it broke"}}


@pytest.mark.parametrize(
    ("retry", "errors", "calls", "seconds", "status"),
    [
        (
            [{"ErrorEquals": ["Broken"], "IntervalSeconds": 3, "MaxAttempts": 2}],
            ["Broken", "Broken"],
            3,
            9,
            "SUCCEEDED",
        ),
        ([{"ErrorEquals": ["Broken"], "IntervalSeconds": 3, "MaxAttempts": 2}], ["Broken"] * 3, 3, 9, "FAILED"),
        ([{"ErrorEquals": ["Broken"]}], ["Broken"] * 4, 4, 1 + 2 + 4, "FAILED"),
        ([{"ErrorEquals": ["Broken"], "MaxAttempts": 0}], ["Broken"], 1, 0, "FAILED"),
        ([{"ErrorEquals": ["Broken"], "IntervalSeconds": 5, "BackoffRate": 1.5}], ["Broken"], 2, 5, "SUCCEEDED"),
        ([{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1}], ["Service.Throttled"], 2, 1, "SUCCEEDED"),
        ([{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1}], ["States.Timeout"], 1, 0, "FAILED"),
        ([{"ErrorEquals": ["Other"]}], ["Broken"], 1, 0, "FAILED"),
        # Once the first retrier naming the error is spent, a later one naming it too is not consulted.
        (
            [{"ErrorEquals": ["Broken"], "MaxAttempts": 1}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}],
            ["Broken"] * 2,
            2,
            1,
            "FAILED",
        ),
    ],
)
def test_retry_calls_the_task_again_as_its_first_matching_retrier_says(
    retry: list[dict[str, Any]], errors: list[str], calls: int, seconds: float, status: str
) -> None:
    states = {"Work": {"Type": "Task", "Resource": TASK, "Retry": retry, "End": True}}

    execution = run(states, {}, failing(errors))

    assert (len(execution.calls[TASK]), execution.seconds, execution.status) == (calls, seconds, status)
    if status == "FAILED":
        assert (execution.error, execution.cause) == (errors[calls - 1], "it broke")


def test_a_task_gets_its_parameters_and_its_result_goes_through_the_result_selector() -> None:
    states = {
        "Work": {
            "Type": "Task",
            "Resource": TASK,
            "Parameters": {"Names": ["a"], "Items": [{"Name": "x", "Value.$": "$.id"}]},
            "ResultSelector": {"names.$": "$.Found[*].Name", "fixed": 1},
            "ResultPath": "$.result",
            "End": True,
        }
    }

    execution = run(states, {"id": "two"}, lambda parameters: {"Found": [{"Name": "a"}], "Ignored": 1})

    assert execution.calls[TASK] == [{"Names": ["a"], "Items": [{"Name": "x", "Value": "two"}]}]
    assert execution.output == {"id": "two", "result": {"names": ["a"], "fixed": 1}}


# Choice, Wait, Fail ---------------------------------------------------------------------------------------------------

CHOICE = {
    "Decide": {
        "Type": "Choice",
        "Choices": [
            {
                "Or": [{"Variable": "$.a[0]", "IsPresent": True}, {"Not": {"Variable": "$.b", "IsPresent": True}}],
                "Next": "Any",
            },
            {
                "And": [{"Variable": "$.n", "IsPresent": True}, {"Variable": "$.n", "NumericGreaterThan": 4}],
                "Next": "Big",
            },
            {"Variable": "$.n", "NumericEquals": 1, "Next": "One"},
            {"Variable": "$.n", "NumericLessThan": 4, "Next": "Few"},
        ],
        "Default": "Other",
    },
    **{name: {"Type": "Succeed"} for name in ("Any", "Big", "One", "Few", "Other")},
}


@pytest.mark.parametrize(
    ("data", "chosen"),
    [
        ({"a": [0], "b": []}, "Any"),
        ({"a": []}, "Any"),
        ({"a": [], "b": [], "n": 7}, "Big"),
        ({"a": [], "b": [], "n": 1}, "One"),
        ({"a": [], "b": [], "n": 3}, "Few"),
        ({"a": [], "b": [], "n": 4}, "Other"),
        # A string or a boolean is neither equal to, above nor below a number.
        ({"a": [], "b": [], "n": "1"}, "Other"),
        ({"a": [], "b": [], "n": True}, "Other"),
    ],
)
def test_choice_takes_the_first_matching_rule_or_the_default(data: dict[str, Any], chosen: str) -> None:
    assert run(CHOICE, data).visited == ["Decide", chosen]


def test_choice_on_a_missing_variable_without_is_present_fails_with_states_runtime() -> None:
    execution = run(CHOICE, {"a": [], "b": []})

    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")


def test_choice_without_a_match_or_default_fails() -> None:
    states = {"Decide": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "One"}]}}
    states["One"] = {"Type": "Succeed"}

    assert run(states, {"n": 2}).error == "States.NoChoiceMatched"


def test_wait_advances_the_virtual_clock_and_the_execution_times_out_past_its_timeout() -> None:
    states = {"Nap": {"Type": "Wait", "Seconds": 600, "Next": "Nap"}}
    clock = VirtualClock(seconds=100)

    execution = machine(states, TimeoutSeconds=3600).execute({}, {}, clock)

    assert (execution.status, execution.seconds, clock.seconds) == ("TIMED_OUT", 4200, 4300)
    assert execution.visited == ["Nap"] * 7


def test_fail_takes_its_error_and_cause_from_paths_and_intrinsics() -> None:
    states = {
        "Stop": {
            "Type": "Fail",
            "ErrorPath": "$.reason.error",
            "CausePath": "States.Format('{} at {}%; see {}', $.reason.cause, $.percent, States.JsonToString($.names))",
        }
    }

    execution = run(states, {"reason": {"error": "AlarmFired", "cause": "5xx"}, "percent": 10, "names": ["a"]})

    assert (execution.status, execution.error, execution.cause) == ("FAILED", "AlarmFired", '5xx at 10%; see ["a"]')


# Refused definitions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "message"),
    [
        ({"A": {"Type": "Map", "End": True}}, "Map"),
        ({"A": {"Type": "Pass", "OutputPath": "$.x", "End": True}}, "OutputPath"),
        ({"A": {"Type": "Pass", "InputPath": "$.x", "End": True}}, "InputPath"),
        ({"A": {"Type": "Pass", "Result": 1, "End": True}}, "Result"),
        ({"A": {"Type": "Pass"}}, "Next or End"),
        ({"A": {"Type": "Pass", "Next": "B", "End": True}, "B": {"Type": "Succeed"}}, "Next or End"),
        ({"A": {"Type": "Pass", "Next": "Nowhere"}}, "Nowhere"),
        ({"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}, "cannot be reached"),
        ({"A": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}, "SecondsPath"),
        ({"A": {"Type": "Pass", "ResultPath": "$.a[0]", "End": True}}, "ResultPath"),
        ({"A": {"Type": "Pass", "Parameters": {"a": 1, "a.$": "$"}, "End": True}}, "plain and with .$"),
        ({"A": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}, "exclude each other"),
        ({"A": {"Type": "Fail", "CausePath": "States.MathAdd(1, 2)"}}, "not accepted here"),
        (
            {"A": {"Type": "Choice", "Choices": [{"Variable": "$.s", "StringMatches": "x*", "Next": "A"}]}},
            "choice rule",
        ),
        ({"A": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": "1", "Next": "A"}]}}, "compare"),
        ({"A": {"Type": "Choice", "Choices": [{"Not": {"Variable": "$.n", "IsPresent": True, "Next": "A"}}]}}, "Next"),
        (
            {
                "A": {
                    "Type": "Task",
                    "Resource": TASK,
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}, {"ErrorEquals": ["E"], "Next": "B"}],
                    "End": True,
                },
                "B": {"Type": "Succeed"},
            },
            "States.ALL",
        ),
        (
            {"A": {"Type": "Task", "Resource": TASK, "Catch": [{"ErrorEquals": ["E"]}], "End": True}},
            "ErrorEquals",
        ),
        (
            {
                "A": {
                    "Type": "Task",
                    "Resource": TASK,
                    "Retry": [{"ErrorEquals": ["E"], "JitterStrategy": "FULL"}],
                    "End": True,
                }
            },
            "JitterStrategy",
        ),
    ],
)
def test_definitions_outside_the_modelled_subset_are_refused(states: dict[str, Any], message: str) -> None:
    with pytest.raises(Unsupported, match=re.escape(message)):
        machine(states)


def test_a_definition_with_an_unknown_top_level_field_or_start_is_refused() -> None:
    with pytest.raises(Unsupported, match="QueryLanguage"):
        machine({"A": {"Type": "Succeed"}}, QueryLanguage="JSONata")
    with pytest.raises(Unsupported, match="StartAt"):
        StateMachine({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}})


def test_a_task_without_a_handler_for_its_resource_is_refused() -> None:
    states = {"Work": {"Type": "Task", "Resource": "arn:aws:states:::other:call", "End": True}}

    with pytest.raises(Unsupported, match="other:call"):
        run(states)


@pytest.mark.parametrize(("value", "chosen"), [("stopped", "Stop"), ("shifted", "Go"), (1, "Go")])
def test_string_equals_matches_equal_strings_only(value: Any, chosen: str) -> None:
    states = {
        "Decide": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.outcome", "StringEquals": "stopped", "Next": "Stop"}],
            "Default": "Go",
        },
        "Stop": {"Type": "Succeed"},
        "Go": {"Type": "Succeed"},
    }

    assert run(states, {"outcome": value}).visited == ["Decide", chosen]


def test_string_equals_refuses_a_number_to_compare_with() -> None:
    states = {"A": {"Type": "Choice", "Choices": [{"Variable": "$.s", "StringEquals": 1, "Next": "A"}]}}

    with pytest.raises(Unsupported, match="StringEquals cannot compare"):
        StateMachine({"StartAt": "A", "States": states})


def test_the_context_object_gives_the_executions_name() -> None:
    states = {"Name": {"Type": "Pass", "Parameters": {"rollout.$": "$$.Execution.Name"}, "End": True}}

    execution = StateMachine({"StartAt": "Name", "States": states}).execute({}, {}, name="rollout-docs-1")

    assert execution.output == {"rollout": "rollout-docs-1"}
