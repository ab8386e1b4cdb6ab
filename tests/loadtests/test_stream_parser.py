"""loadtests.stream_parser: SSE bytes of a streamed chat completion -> token arrivals, usage, completion.

Pure: fed byte chunks with their arrival times, no Locust, no socket.
"""

from __future__ import annotations

import json

import pytest

from loadtests.failures import RequestFailed
from loadtests.stream_parser import ChatStream, LineSplitter


def _event(**chunk: object) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _content(text: str, **extra: object) -> bytes:
    return _event(id="c1", choices=[{"index": 0, "delta": {"content": text}, **extra}])


ROLE = _event(id="c1", choices=[{"index": 0, "delta": {"role": "assistant"}}])
FINISH = _event(id="c1", choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
USAGE = _event(id="c1", choices=[], usage={"prompt_tokens": 3, "completion_tokens": 2})
DONE = b"data: [DONE]\n\n"


def test_lines_cut_between_reads_wait_for_their_end():
    lines = LineSplitter()
    assert lines.split(b"data: a\n\nda") == [b"data: a", b""]
    assert lines.split(b"ta: b") == []
    assert lines.split(b"\n") == [b"data: b"]
    assert lines.rest() == b""
    assert lines.split(b"tail") == []
    assert lines.rest() == b"tail"
    assert lines.rest() == b""


def test_a_whole_stream_gives_token_times_usage_and_completion():
    stream = ChatStream()
    for now, data in enumerate((ROLE, _content("4"), _content("2"), FINISH, USAGE, DONE), start=1):
        stream.feed(data, float(now))
    stream.end(7.0)
    assert stream.content == [2.0, 3.0]  # the role and finish chunks carry no token
    assert stream.usage == 2
    assert stream.finished and stream.done and stream.complete
    assert stream.stream_id == "c1"
    timing = stream.timing(0.0, 8.0)
    assert timing.ttft == 2.0 and timing.tokens == 2 and timing.e2e == 8.0


def test_the_reply_text_and_prompt_tokens_are_kept_when_asked():
    kept, plain = ChatStream(keep_text=True), ChatStream()
    for stream in (kept, plain):
        stream.feed(ROLE + _content("Hello") + _content(" world") + FINISH + USAGE + DONE, 1.0)
        assert stream.prompt_tokens == 3
    assert kept.text == "Hello world"
    assert plain.text == "" and plain.pieces is None  # a single-turn run does not pay for the text


def test_done_alone_completes_the_stream():
    stream = ChatStream()
    stream.feed(_content("x") + DONE, 1.0)
    assert stream.done and not stream.finished and stream.complete


def test_a_stream_without_finish_reason_or_done_is_incomplete():
    stream = ChatStream()
    stream.feed(ROLE + _content("x"), 1.0)
    stream.end(2.0)
    assert not stream.complete and stream.content == [1.0]


def test_comments_and_keepalives_and_other_fields_are_skipped():
    stream = ChatStream()
    stream.feed(b": keep-alive\n\nevent: message\nid: 7\nretry: 100\n\n:\n\n", 1.0)
    stream.feed(_content("x"), 2.0)
    assert stream.content == [2.0]
    assert stream.size == len(_content("x").rstrip(b"\n"))  # only data: lines count


def test_usage_chunk_gives_the_servers_token_count():
    stream = ChatStream()
    stream.feed(_content("a") + _content("b") + _content("c") + USAGE, 1.0)
    assert stream.usage == 2  # the server's count, not the content-chunk count
    assert len(stream.content) == 3


def test_events_in_one_read_share_its_arrival_time():
    stream = ChatStream()
    stream.feed(_content("a") + _content("b") + FINISH, 5.0)
    assert stream.content == [5.0, 5.0] and stream.finished


def test_an_event_split_across_reads_is_timed_when_its_end_arrives():
    data = _content("hello")
    stream = ChatStream()
    stream.feed(data[:9], 1.0)
    stream.feed(data[9:20], 2.0)
    assert stream.content == []
    stream.feed(data[20:], 3.0)
    assert stream.content == [3.0]


def test_an_unterminated_last_line_is_parsed_at_the_end():
    stream = ChatStream()
    stream.feed(b"data: [DONE]", 1.0)
    assert not stream.done
    stream.end(2.0)
    assert stream.done


def test_crlf_line_ends_are_understood():
    stream = ChatStream()
    stream.feed(_content("a").replace(b"\n", b"\r\n") + b"data: [DONE]\r\n\r\n", 1.0)
    assert stream.content == [1.0] and stream.done


def test_an_error_event_fails_the_request():
    stream = ChatStream()
    with pytest.raises(RequestFailed, match="error event in the stream"):
        stream.feed(_event(error={"message": "engine died", "type": "server_error"}), 1.0)


def test_a_malformed_data_line_raises_a_json_error():
    with pytest.raises(json.JSONDecodeError):
        ChatStream().feed(b"data: {not json\n\n", 1.0)
