import json

from daydream.cli import main


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
