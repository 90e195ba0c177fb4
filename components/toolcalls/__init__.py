"""The one tool-call parser and scorer: validation, evaluation, RL rewards, pair-making and `tooltune score`
import it, so "correct" means the same thing everywhere.

Parsers. Output is parsed, never executed; malformed output is the verdict `unparsable`, never an exception.
- `parse_output`: the project template, text then `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks
  then `<|im_end|>`; with `require_end=False` it reads Hermes/Qwen-FC text, which carries no end token.
  Given the model's tokenizer (`tok=`) with a response template of its own (Qwen3.5 XML, gpt-oss, ...), it reads the
  model's own syntax through `tokenizer.parse_response` instead (`response`), with the same verdicts.
- `calls_of_message`: OpenAI assistant messages (`tool_calls`, arguments as JSON text or objects).
- `parse_python_calls`: BFCL's prompt syntax `[f(a=1), pkg.g(b="x")]`, read with `ast`: keyword arguments only,
  values literal (a bare name reads as its identifier, as BFCL's decoder does; tuples read as lists).
- `parse_json_calls`: a call `{"name", "arguments"|"parameters"}`, an OpenAI tool call, BFCL's decoded
  `{"<function>": {<arguments>}}`, or a list of those.
- `parse_any`: whichever of these fits a string or an already-decoded object.

Error classes and their detection rules (`score_step` finds the per-step ones, `score_episode` the rest):
- unparsable: the output looks like a call (`<tool_call>`, `{"name":`, `name(key=`, a leading `[` or `{`, a Python
  call list) but breaks the parser's rules.
- no_call: calls were expected and none was made.
- call_when_irrelevant: no call was expected and one was made.
- hallucinated_tool: the called name is not in the episode's catalog.
- wrong_tool: the called name is in the catalog but matches none of the expected calls.
- missing_required_argument: a schema-required argument is absent, or an expected one that may not be omitted
  (its acceptable values lack `""`).
- unknown_argument: an argument the tool's schema does not define.
- unexpected_argument: an argument the schema defines but the expected call does not use.
- wrong_type: a value of the wrong type (BFCL's type rules when the expected call lists acceptable values).
- wrong_value: right type, value not acceptable (or a schema enum, pattern or range broken).
- wrong_call_count: a step makes more or fewer calls than expected, or an extra step matches nothing.
- redundant_call: a call of an expected tool beyond its expected count, or a step repeating earlier work.
- missing_step: an expected step matches no predicted step while a later expected step does.
- wrong_order: matched steps come in another order than expected.
- premature_stop: fewer steps than expected and the last expected step unmatched (the model stopped early).
- step_limit: the rollout hit the turn cap without a final answer (caller's `hit_step_limit`).
- wrong_final_state: the simulator's end state is not the goal (caller's `final_state_ok=False`).

The package: `parse` (the parsers), `response` (parsing through a tokenizer's response template), `check`
(catalog checks and scoring), `schema` (tool parameter schemas: the entry checks `parameters_problem` and RE2-safe
validators) and `bfcl_rules` (BFCL's per-argument rules); import from here.
"""

from components.toolcalls.check import (EpisodeScore, StepScore, call_errors, normalise_text, same_call, same_value,
                                        schema_errors, score_episode, score_step, states_outputs, tool_index)
from components.toolcalls.parse import (CLOSE, END, OPEN, Call, Parsed, calls_of_message, parse_any,
                                        parse_json_calls, parse_output, parse_python_calls, steps_of_messages)

from components.toolcalls.schema import parameters_problem

__all__ = ["CLOSE", "END", "OPEN", "Call", "EpisodeScore", "Parsed", "StepScore", "call_errors", "calls_of_message",
           "normalise_text", "parameters_problem", "parse_any", "parse_json_calls", "parse_output",
           "parse_python_calls", "same_call", "same_value", "schema_errors", "score_episode", "score_step",
           "states_outputs", "steps_of_messages", "tool_index"]
