import json

from hypothesis import given, settings
from hypothesis import strategies as st

from daydream.cli import main
from engine.batch_cli import read_cases

SHAPED_LINES = [
    b'{"name": "Ann", "description": "A nurse.", "situation": "Night."}',
    b'{"Character_name": "Lin", "Character_description": "x", "Context": "y", "Background": ""}',
    b"[" * 5000,
    b"9" * 5000,
    b'{"profile": [], "situation": 5}',
    b'{"name": "\\ud800", "description": "d", "situation": "s"}',
    b"\xef\xbb\xbf{}",
]


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_decide_answers_good_lines_and_names_bad_ones(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_lines(
        src,
        [
            json.dumps(
                {"id": "a", "name": "Ann", "description": "A nurse.", "situation": "Night shift ends."}
            ),
            "{not json",
            json.dumps(
                {
                    "Character_name": "Lin Yu",
                    "Character_description": "Student.",
                    "Context": "Exam day.",
                    "Background": "Breakup.",
                }
            ),
            "",
            json.dumps({"id": "c", "name": "Bo", "description": "A cook."}),
            json.dumps(
                {"id": "d", "name": "Cy", "description": "A pilot.", "situation": "Storm ahead.", "wings": 2}
            ),
        ],
    )
    out = tmp_path / "out.jsonl"
    rc = main(["decide", str(src), "--out", str(out), "--model", "rules", "--seed", "3"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{src}:2: invalid JSON" in err
    assert f"{src}:5: situation: missing" in err
    assert f"{src}:6: unknown keys: wings" in err
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 5, 6]
    good = [r for r in records if "error" not in r]
    assert [r["id"] for r in good] == ["a", None]
    for r in good:
        assert {"purpose_a", "purpose_b", "purpose_c", "source", "latency_ms"} <= set(r)
        assert r["source"] == "rules"  # chosen explicitly, so not flagged as a fallback
    assert good[1]["purpose_a"].startswith("Lin Yu")


def test_decide_reports_a_non_utf8_line_and_answers_the_others(tmp_path, capsys):
    good = [
        json.dumps({"id": f"g{i}", "name": "Zoë", "description": "A nurse.", "situation": "Dusk."})
        for i in range(3)
    ]
    latin1 = '{"name": "Ann", "description": "Runs the café.", "situation": "x"}'.encode("latin-1")
    src = tmp_path / "in.jsonl"
    # line 2: Latin-1 bytes where UTF-8 is expected; line 4: a stray continuation byte
    src.write_bytes(
        b"\xef\xbb\xbf"  # a BOM before line 1 is tolerated
        + good[0].encode()
        + b"\n"
        + latin1
        + b"\r\n"
        + good[1].encode()
        + b"\n\x80\n"
        + good[2].encode()
        + b"\n"
    )
    out = tmp_path / "out.jsonl"
    rc = main(["decide", str(src), "--out", str(out), "--model", "rules"])
    err = capsys.readouterr().err
    assert rc == 1
    at = latin1.index("é".encode("latin-1")) + 1
    assert f"{src}:2: not UTF-8 (invalid continuation byte at byte {at})" in err
    assert f"{src}:4: not UTF-8 (invalid start byte at byte 1)" in err
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]
    assert [r.get("id") for r in records if "error" not in r] == ["g0", "g1", "g2"]
    assert all(r["purpose_a"].startswith("Zoë") for r in records if "error" not in r)
    assert "not UTF-8" in records[1]["error"] and "not UTF-8" in records[3]["error"]


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.binary(max_size=80) | st.sampled_from(SHAPED_LINES), max_size=8))
def test_read_cases_never_raises_on_any_bytes(tmp_path_factory, lines):
    src = tmp_path_factory.mktemp("fuzz") / "in.jsonl"
    src.write_bytes(b"\n".join(lines))
    rows = read_cases(src)
    numbers = [n for n, _, _ in rows]
    assert numbers == sorted(set(numbers))
    for _, case, error in rows:
        assert (case is None) != (error is None)
        assert error is None or error.strip()


def test_decide_is_repeatable_with_a_seed(tmp_path):
    src = tmp_path / "in.jsonl"
    write_lines(
        src,
        [json.dumps({"name": "Ann", "description": "A nurse.", "situation": f"Case {i}."}) for i in range(3)],
    )
    outs = []
    for n in range(2):
        out = tmp_path / f"out{n}.jsonl"
        assert main(["decide", str(src), "--out", str(out), "--model", "rules", "--seed", "9"]) == 0
        outs.append(
            [
                {k: v for k, v in json.loads(line).items() if k != "latency_ms"}
                for line in out.read_text().splitlines()
            ]
        )
    assert outs[0] == outs[1]


def test_decide_missing_input_and_bad_model(tmp_path, capsys):
    assert main(["decide", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "file not found" in capsys.readouterr().err
    src = tmp_path / "in.jsonl"
    write_lines(src, [json.dumps({"name": "A", "description": "d", "situation": "s"})])
    assert main(["decide", str(src), "--out", str(tmp_path / "o.jsonl"), "--model", "missing.gguf"]) == 2
    assert "no such GGUF file" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_help_lists_subcommands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for command in ("decide", "schema", "casts", "models"):
        assert command in out


def test_output_lines_survive_unicode_line_separators(tmp_path):
    # a model can copy U+2028 or NEL from the situation; str.splitlines() must still see one record
    from engine.batch_cli import write_jsonl_atomic

    record = {"id": "1", "purpose_a": "Ada reads\u2028the note\x85aloud\u2029 twice, é"}
    path = tmp_path / "out.jsonl"
    write_jsonl_atomic(path, [record, {"id": "2"}])
    lines = path.read_text("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [record, {"id": "2"}]
