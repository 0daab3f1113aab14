"""A strict interpreter of the part of the Amazon States Language (JSONPath) that the rollout uses.

Tests execute a real definition with it: each task resource is answered by a handler the test passes
in, ``Wait`` advances a virtual clock instead of sleeping, and the definition is checked before it
runs (every target exists, every state is reachable, every path and intrinsic parses). Anything
outside the modelled subset, a state type, field, operator, intrinsic or JSONPath form, raises
``Unsupported``: nothing is guessed at. Runtime errors follow the service: a path that selects
nothing, or an intrinsic given the wrong values, fails the execution with ``States.Runtime``, which
no ``Retry`` or ``Catch`` handles. Stricter than the service: a wildcard over a missing field, and an
index out of range in a payload template, fail rather than select nothing.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any]], Any]

#: The fields each state type may have besides Type and Comment.
_FIELDS = {
    "Pass": {"Parameters", "ResultPath", "Next", "End"},
    "Task": {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "Next", "End"},
    "Choice": {"Choices", "Default"},
    "Wait": {"Seconds", "Next", "End"},
    "Succeed": set(),
    "Fail": {"Error", "ErrorPath", "Cause", "CausePath"},
}
_RETRIER = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate"}
_CATCHER = {"ErrorEquals", "Next", "ResultPath"}
_COMPARE = {
    "NumericEquals": lambda a, b: a == b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericLessThan": lambda a, b: a < b,
    "StringEquals": lambda a, b: a == b,
}
_STRING_COMPARE = {"StringEquals"}
#: The modelled intrinsics and how many arguments each takes (States.Format: its template, then one per ``{}``).
_ARITY = {
    "States.Format": 0,
    "States.ArrayGetItem": 2,
    "States.ArrayLength": 1,
    "States.MathAdd": 2,
    "States.JsonToString": 1,
}
#: The modelled intrinsics that a Fail state's ErrorPath and CausePath accept.
_FAIL_INTRINSICS = {"States.Format", "States.ArrayGetItem", "States.JsonToString"}
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]")
_TOKEN = re.compile(r"\s*(?:(States\.[A-Za-z]+)\(|'((?:[^'\\]|\\.)*)'|(\$[^,)\s]*)|(-?\d+(?:\.\d+)?)|([,)]))")
_MISSING = object()
_MAX_TRANSITIONS = 10_000


class Unsupported(Exception):
    """The definition uses something this interpreter does not model, or that the service rejects."""


class TaskFailure(Exception):
    """An error by name: a handler raises it to fail its task; a Fail state or a runtime error ends the run with it."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass
class VirtualClock:
    """The execution's time: ``Wait`` states and retry intervals advance it, handlers read it."""

    seconds: float = 0.0


@dataclass
class Execution:
    """How an execution ended, the states it entered in order, its virtual duration and its task calls."""

    status: str = "RUNNING"
    error: str | None = None
    cause: str | None = None
    output: Any = None
    visited: list[str] = field(default_factory=list)
    seconds: float = 0.0
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _runtime(cause: str) -> TaskFailure:
    return TaskFailure("States.Runtime", cause)


#: The context object's fields a path may read with ``$$.`` (the running execution's, set by ``execute``).
_CONTEXT_PATHS = {"$$.Execution.Name", "$$.Execution.Id", "$$.StateMachine.Name"}
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("context", default=None)


@functools.cache
def _steps(path: str) -> tuple[str | int, ...]:
    if path.startswith("$$"):
        if path not in _CONTEXT_PATHS:
            raise Unsupported(f"path {path!r}: only {sorted(_CONTEXT_PATHS)} of the context object are supported")
        return ("$$", *path[3:].split("."))
    matches = list(_STEP.finditer(path, 1))
    if path[:1] != "$" or "".join(m.group() for m in matches) != path[1:]:
        raise Unsupported(f"path {path!r}: only $, .name, [n] and [*] into the state's input are supported")
    return tuple(m[1] if m[1] is not None else m[2] if m[2] == "*" else int(m[2]) for m in matches)


def _select(value: Any, steps: tuple[str | int, ...]) -> Any:
    if steps[:1] == ("$$",):
        value, steps = _context.get() or {}, steps[1:]
    for at, step in enumerate(steps):
        if step == "*":
            if not isinstance(value, list):
                return _MISSING
            return [found for item in value if (found := _select(item, steps[at + 1 :])) is not _MISSING]
        if isinstance(step, int) and not (isinstance(value, list) and step < len(value)):
            return _MISSING
        if isinstance(step, str) and not (isinstance(value, dict) and step in value):
            return _MISSING
        value = value[step]
    return value


def _path(path: str, data: Any, where: str) -> Any:
    value = _select(data, _steps(path))
    if value is _MISSING:
        raise _runtime(f"The JSONPath {path!r} specified for {where} could not be found in the input {_json(data)}")
    return value


def _literal(body: str, text: str) -> tuple[str, list[str]]:
    """A string literal's text, split at its unescaped ``{}``; only ``\\' \\{ \\} \\\\`` are escapes."""
    pieces: list[str] = []
    current = ""
    for part in re.split(r"(\\.?|\{\}|[{}])", body):
        if part == "{}":
            pieces, current = [*pieces, current], ""
        elif part[:1] == "\\" and part[1:] in ("'", "{", "}", "\\"):
            current += part[1:]
        elif part[:1] in ("\\", "{", "}"):
            raise Unsupported(f"intrinsic {text!r}: {part!r} must be escaped (\\' \\{{ \\}} \\\\)")
        else:
            current += part
    return ("string", [*pieces, current])


@functools.cache
def _intrinsic(text: str) -> tuple[Any, ...]:
    """Parse ``States.Name(argument, ...)`` into ``("call", name, arguments)``."""
    tokens, at = [], 0
    while at < len(text):
        if (match := _TOKEN.match(text, at)) is None:
            raise Unsupported(f"intrinsic {text!r}: cannot read it from {text[at:]!r}")
        tokens.append(match)
        at = match.end()

    def parse(at: int) -> tuple[tuple[Any, ...], int]:
        name, quoted, path, number, _ = tokens[at].groups()
        if quoted is not None:
            return _literal(quoted, text), at + 1
        if path is not None:
            _steps(path)
            return ("path", path), at + 1
        if number is not None:
            return ("literal", json.loads(number)), at + 1
        if name not in _ARITY:
            raise Unsupported(f"intrinsic {text!r}: {name or tokens[at][5]!r} is not a supported intrinsic or value")
        args: list[tuple[Any, ...]] = []
        at += 1
        while tokens[at][5] != ")":
            if args and tokens[at][5] != ",":
                raise Unsupported(f"intrinsic {text!r}: expected , or ) in {name}")
            arg, at = parse(at + 1 if args else at)
            args.append(arg)
        first = args[0] if args else ("none",)
        if name == "States.Format" and (first[0] != "string" or len(first[1]) != len(args)):
            raise Unsupported(f"intrinsic {text!r}: States.Format takes a template with one {{}} per value")
        wrong_count = name != "States.Format" and len(args) != _ARITY[name]
        if wrong_count or (name == "States.JsonToString" and first[0] != "path"):
            raise Unsupported(f"intrinsic {text!r}: {name} takes {_ARITY[name]} argument(s) (JsonToString: a path)")
        return ("call", name, args), at + 1

    try:
        node, end = parse(0)
    except IndexError:
        raise Unsupported(f"intrinsic {text!r}: it ends too early") from None
    if node[0] != "call" or end != len(tokens):
        raise Unsupported(f"intrinsic {text!r}: one call expected")
    return node


def _evaluate(node: tuple[Any, ...], data: Any, where: str) -> Any:
    kind, *rest = node
    if kind in ("literal", "string"):
        return rest[0] if kind == "literal" else "{}".join(rest[0])
    if kind == "path":
        return _path(rest[0], data, where)
    name, args = rest
    values = [_evaluate(arg, data, where) for arg in args]
    wrong = f"{where}: {name} cannot take {_json(values)}"
    if name == "States.Format":
        if any(isinstance(value, list | dict) for value in values[1:]):
            raise _runtime(wrong)
        texts = [value if isinstance(value, str) else _json(value) for value in values[1:]]
        return "".join(piece + value for piece, value in zip(args[0][1], [*texts, ""], strict=True))
    if name == "States.JsonToString":
        return _json(values[0])
    if name == "States.ArrayLength":
        if not isinstance(values[0], list):
            raise _runtime(wrong)
        return len(values[0])
    if name == "States.ArrayGetItem":
        if not (isinstance(values[0], list) and _integer(values[1]) and 0 <= values[1] < len(values[0])):
            raise _runtime(wrong)
        return values[0][values[1]]
    if not all(_integer(value) and -(2**31) <= value < 2**31 for value in values):
        raise _runtime(wrong)
    return values[0] + values[1]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _expression(text: str, data: Any, where: str) -> Any:
    return _evaluate(_intrinsic(text), data, where) if text.startswith("States.") else _path(text, data, where)


def _template(template: Any, data: Any, where: str) -> Any:
    """A payload template (Parameters, ResultSelector) applied to ``data``: ``name.$`` fields are evaluated."""
    if isinstance(template, list):
        return [_template(item, data, where) for item in template]
    if not isinstance(template, dict):
        return template
    return {
        key.removesuffix(".$"): _expression(value, data, f"the field {key!r} of {where}")
        if key.endswith(".$")
        else _template(value, data, where)
        for key, value in template.items()
    }


def _result_path(state_input: Any, result_path: str | None, result: Any) -> Any:
    if result_path is None:
        return state_input
    *parents, last = ("$", *_steps(result_path))
    if last == "$":
        return result
    output = copy.deepcopy(state_input)
    node = output
    for step in parents[1:]:
        node = node.setdefault(step, {}) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise _runtime(f"ResultPath {result_path!r} cannot be applied to the input {_json(state_input)}")
    node[last] = result
    return output


# The definition check ----------------------------------------------------------------------------------------------


def _check_expression(text: Any, where: str, intrinsics: set[str] | dict[str, int]) -> None:
    if not isinstance(text, str):
        raise Unsupported(f"{where}: {text!r} is not a path or an intrinsic")
    if not text.startswith("States."):
        _steps(text)
    elif _intrinsic(text)[1] not in intrinsics:
        raise Unsupported(f"{where}: {_intrinsic(text)[1]} is not accepted here")


def _check_template(template: Any, where: str) -> None:
    if isinstance(template, dict) and len({key.removesuffix(".$") for key in template}) < len(template):
        raise Unsupported(f"{where}: a field is given both plain and with .$")
    for key, value in template.items() if isinstance(template, dict) else enumerate(template or []):
        if isinstance(key, str) and key.endswith(".$"):
            _check_expression(value, where, _ARITY)
        elif isinstance(value, dict | list):
            _check_template(value, where)


def _check_result_path(path: Any, where: str) -> None:
    if path is not None and (
        not isinstance(path, str) or any(not isinstance(s, str) or s == "*" for s in _steps(path))
    ):
        raise Unsupported(f"{where}: ResultPath {path!r} must be null or name fields only")


def _check_rule(rule: dict[str, Any], where: str, *, top: bool) -> None:
    if ("Next" in rule) != top:
        raise Unsupported(f"{where}: Next belongs to top-level choice rules only: {rule}")
    keys = set(rule) - {"Next"}
    if keys in ({"And"}, {"Or"}, {"Not"}):
        (inner,) = (rule[key] for key in keys)
        rules = [inner] if keys == {"Not"} else inner
        if not isinstance(rules, list) or not rules or not all(isinstance(r, dict) for r in rules):
            raise Unsupported(f"{where}: And and Or take a non-empty list of rules, Not one rule")
        for inner in rules:
            _check_rule(inner, where, top=False)
        return
    operator = next(iter(keys - {"Variable"}), None)
    expected = rule.get(operator or "")
    if len(keys) != 2 or "Variable" not in keys or operator not in {"IsPresent", *_COMPARE}:
        raise Unsupported(f"{where}: unsupported choice rule {rule}")
    wanted_type: type | tuple[type, ...] = str if operator in _STRING_COMPARE else (int, float)
    if isinstance(expected, bool) != (operator == "IsPresent") or not isinstance(expected, wanted_type):
        raise Unsupported(f"{where}: {operator} cannot compare with {expected!r}")
    _check_expression(rule["Variable"], where, set())


def _targets(name: str, state: dict[str, Any]) -> list[str]:
    """Check one state's fields; return the states it can go to."""
    where, kind = f"state {name!r}", state.get("Type")
    if kind not in _FIELDS or set(state) - {"Type", "Comment"} - _FIELDS[kind]:
        raise Unsupported(f"{where}: {kind} with {sorted(state)} (types and fields supported: {_FIELDS})")
    targets = [state["Next"]] if "Next" in state else []
    ends = state.get("End", False)
    if not isinstance(ends, bool) or (kind in ("Pass", "Task", "Wait") and ("Next" in state) == ends):
        raise Unsupported(f"{where}: needs either Next or End: true")
    _check_template(state.get("Parameters"), where)
    _check_template(state.get("ResultSelector"), where)
    _check_result_path(state.get("ResultPath"), where)
    if kind == "Task" and not isinstance(state.get("Resource"), str):
        raise Unsupported(f"{where}: a Task needs a Resource")
    for handlers, allowed in ((state.get("Retry", []), _RETRIER), (state.get("Catch", []), _CATCHER)):
        for at, handler in enumerate(handlers):
            errors = handler.get("ErrorEquals") or []
            misplaced_all = "States.ALL" in errors and (errors != ["States.ALL"] or at < len(handlers) - 1)
            no_next = allowed is _CATCHER and not isinstance(handler.get("Next"), str)
            if set(handler) - allowed or not errors or misplaced_all or no_next:
                raise Unsupported(f"{where}: {handler} (fields {sorted(allowed)}; States.ALL alone and last)")
            if allowed is _CATCHER:
                _check_result_path(handler.get("ResultPath"), where)
                targets.append(handler["Next"])
    if kind == "Wait" and not (_integer(state.get("Seconds")) and state["Seconds"] >= 0):
        raise Unsupported(f"{where}: Seconds must be a whole number of seconds")
    if kind == "Choice":
        if not isinstance(state.get("Choices"), list) or not state["Choices"]:
            raise Unsupported(f"{where}: Choices must be a non-empty list")
        for rule in state["Choices"]:
            _check_rule(rule, where, top=True)
            targets.append(rule["Next"])
        targets += [state["Default"]] if "Default" in state else []
    for fixed in ("Error", "Cause"):
        if fixed in state and f"{fixed}Path" in state:
            raise Unsupported(f"{where}: {fixed} and {fixed}Path exclude each other")
        if f"{fixed}Path" in state:
            _check_expression(state[f"{fixed}Path"], where, _FAIL_INTRINSICS)
    return targets


def check_definition(definition: Mapping[str, Any]) -> None:
    """Raise ``Unsupported`` unless ``definition`` is in the modelled subset with all its states linked."""
    if set(definition) - {"Comment", "StartAt", "States", "TimeoutSeconds", "Version"}:
        raise Unsupported(f"top-level fields {sorted(definition)}: only Comment, StartAt, States, TimeoutSeconds")
    states = definition.get("States")
    if not isinstance(states, dict) or definition.get("StartAt") not in states:
        raise Unsupported(f"StartAt {definition.get('StartAt')!r} is not a state")
    reached, todo = {definition["StartAt"]}, [definition["StartAt"]]
    while todo:
        name = todo.pop()
        for target in _targets(name, states[name]):
            if target not in states:
                raise Unsupported(f"state {name!r} goes to {target!r}, which is not a state")
            if target not in reached:
                reached.add(target)
                todo.append(target)
    if unreachable := sorted(set(states) - reached):
        raise Unsupported(f"states {unreachable} cannot be reached from {definition['StartAt']!r}")


# The execution -----------------------------------------------------------------------------------------------------


def _matches(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule or "Or" in rule:
        rules = rule["And"] if "And" in rule else rule["Or"]
        return (all if "And" in rule else any)(_matches(inner, data) for inner in rules)
    if "Not" in rule:
        return not _matches(rule["Not"], data)
    value = _select(data, _steps(rule["Variable"]))
    if "IsPresent" in rule:
        return (value is not _MISSING) == rule["IsPresent"]
    if value is _MISSING:
        raise _runtime(f"Invalid path {rule['Variable']!r}: the choice state's condition path references nothing")
    (operator,) = set(rule) & set(_COMPARE)
    if operator in _STRING_COMPARE:
        return isinstance(value, str) and _COMPARE[operator](value, rule[operator])
    # The service compares numbers with numbers only: a string is neither equal to, above nor below one.
    return isinstance(value, int | float) and not isinstance(value, bool) and _COMPARE[operator](value, rule[operator])


def _handles(error_equals: list[str], error: str) -> bool:
    """States.ALL matches every error, States.TaskFailed every one but States.Timeout."""
    wildcard = "States.ALL" in error_equals or ("States.TaskFailed" in error_equals and error != "States.Timeout")
    return wildcard or error in error_equals


class StateMachine:
    """A checked definition, run with ``execute``."""

    def __init__(self, definition: Mapping[str, Any]) -> None:
        check_definition(definition)
        self.definition = definition

    def execute(
        self,
        data: Any,
        handlers: Mapping[str, Handler],
        clock: VirtualClock | None = None,
        *,
        name: str = "execution-1",
    ) -> Execution:
        """Run from the input ``data`` to the end, calling ``handlers[resource](parameters)`` for each task.

        ``name`` is the execution's name, which ``$$.Execution.Name`` reads.
        """
        token = _context.set(
            {
                "Execution": {"Name": name, "Id": f"arn:aws:states:us-east-1:123456789012:execution:machine:{name}"},
                "StateMachine": {"Name": "machine"},
            }
        )
        try:
            return self._execute(data, handlers, clock)
        finally:
            _context.reset(token)

    def _execute(self, data: Any, handlers: Mapping[str, Handler], clock: VirtualClock | None) -> Execution:
        clock = clock or VirtualClock()
        started, timeout = clock.seconds, self.definition.get("TimeoutSeconds")
        run, name, data = Execution(), self.definition["StartAt"], copy.deepcopy(data)
        try:
            for _ in range(_MAX_TRANSITIONS):
                run.visited.append(name)
                following, data = self._state(name, data, handlers, clock, run)
                if timeout is not None and clock.seconds - started > timeout:
                    run.status = "TIMED_OUT"
                    break
                if following is None:
                    run.status, run.output = "SUCCEEDED", data
                    break
                name = following
            else:
                raise RuntimeError(f"more than {_MAX_TRANSITIONS} transitions, last {run.visited[-5:]}")
        except TaskFailure as failure:
            run.status, run.error, run.cause = "FAILED", failure.error, failure.cause
        run.seconds = clock.seconds - started
        return run

    def _state(
        self, name: str, data: Any, handlers: Mapping[str, Handler], clock: VirtualClock, run: Execution
    ) -> tuple[str | None, Any]:
        state, where = self.definition["States"][name], f"state {name!r}"
        kind = state["Type"]
        if kind == "Succeed":
            return None, data
        if kind == "Fail":
            raise TaskFailure(*(self._fail_field(state, field, data, where) for field in ("Error", "Cause")))
        if kind == "Wait":
            clock.seconds += state["Seconds"]
            return state.get("Next"), data
        if kind == "Choice":
            following = next((rule["Next"] for rule in state["Choices"] if _matches(rule, data)), state.get("Default"))
            if following is None:
                raise TaskFailure("States.NoChoiceMatched", f"no choice rule of {where} matched, and it has no Default")
            return following, data
        parameters = _template(state["Parameters"], data, where) if "Parameters" in state else data
        if kind == "Pass":
            return state.get("Next"), _result_path(data, state.get("ResultPath", "$"), parameters)
        if state["Resource"] not in handlers:
            raise Unsupported(f"{where}: no handler for the resource {state['Resource']!r}")
        try:
            result = self._call(state, parameters, handlers[state["Resource"]], clock, run)
        except TaskFailure as failure:
            for catcher in state.get("Catch", []):
                if _handles(catcher["ErrorEquals"], failure.error):
                    error_output = {"Error": failure.error, "Cause": failure.cause}
                    return catcher["Next"], _result_path(data, catcher.get("ResultPath", "$"), error_output)
            raise
        if "ResultSelector" in state:
            result = _template(state["ResultSelector"], result, f"the ResultSelector of {where}")
        return state.get("Next"), _result_path(data, state.get("ResultPath", "$"), result)

    @staticmethod
    def _call(state: dict[str, Any], parameters: Any, handler: Handler, clock: VirtualClock, run: Execution) -> Any:
        """The handler's result, retried as the state's Retry says; a failure that is not retried is raised."""
        retriers: list[dict[str, Any]] = state.get("Retry", [])
        attempts = [0] * len(retriers)
        while True:
            run.calls.setdefault(state["Resource"], []).append(copy.deepcopy(parameters))
            try:
                return handler(copy.deepcopy(parameters))
            except TaskFailure as failure:
                # Only the first retrier naming the error counts, even when its attempts are spent.
                at = next((i for i, r in enumerate(retriers) if _handles(r["ErrorEquals"], failure.error)), None)
                if at is None or attempts[at] >= retriers[at].get("MaxAttempts", 3):
                    raise
                interval, backoff = retriers[at].get("IntervalSeconds", 1), retriers[at].get("BackoffRate", 2.0)
                clock.seconds += interval * backoff ** attempts[at]
                attempts[at] += 1

    @staticmethod
    def _fail_field(state: dict[str, Any], name: str, data: Any, where: str) -> str:
        if f"{name}Path" not in state:
            return str(state.get(name, ""))
        value = _expression(state[f"{name}Path"], data, f"the {name}Path of {where}")
        if not isinstance(value, str):
            raise _runtime(f"the {name}Path of {where} must select a string, not {_json(value)}")
        return value
