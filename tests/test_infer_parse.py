from cosmos_exp.infer.parse import INVALID_JSON, NO_JSON, OK, parse_answer


def test_fenced_block_with_prose_around():
    text = 'Here is the caption:\n```json\n{"weather": "clear", "n": 2}\n```\nHope this helps {not json}'
    assert parse_answer(text) == ({"weather": "clear", "n": 2}, OK)


def test_bare_object_first_brace_to_matching_brace():
    text = 'prefix {"a": {"b": "x}y"}, "c": [1, 2]} trailing {"second": 1}'
    assert parse_answer(text) == ({"a": {"b": "x}y"}, "c": [1, 2]}, OK)


def test_braces_and_escaped_quotes_inside_strings():
    text = '{"s": "a \\"quoted {brace\\" here", "t": "}"}'
    assert parse_answer(text) == ({"s": 'a "quoted {brace" here', "t": "}"}, OK)


def test_no_json_and_truncated_and_invalid():
    assert parse_answer("The road is wet.") == (None, NO_JSON)
    assert parse_answer('```json\n{"weather": "clear", "light') == (None, INVALID_JSON)
    assert parse_answer("{weather: clear}") == (None, INVALID_JSON)


def test_fence_without_object_falls_back_to_bare_text():
    text = "```\nno object here\n```\nthen {\"k\": 1}"
    assert parse_answer(text) == ({"k": 1}, OK)


def test_non_ascii_survives():
    assert parse_answer('{"sign": "no\u2011left\u2011turn"}') == ({"sign": "no\u2011left\u2011turn"}, OK)
