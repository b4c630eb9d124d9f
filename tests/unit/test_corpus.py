"""The corpus loader (tests/support/corpus.py): every key checked, one-line errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.corpus import CORPUS, CorpusError, corpus_files, load

VALID = CORPUS / "job" / "kubectl-trace-49-quota-requires-limits.yaml"


def base() -> dict[str, Any]:
    return yaml.safe_load(VALID.read_text(encoding="utf-8"))


def write(tmp_path: Path, doc: dict[str, Any], area: str = "job") -> Path:
    path = tmp_path / area / "case.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def edit(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(base())
    fn(doc)
    return doc


CASES = [
    (edit(lambda d: d.pop("says")), "says: missing"),
    (edit(lambda d: d.update(labelz={})), "labelz: unknown key"),
    (edit(lambda d: d["source"].update(url="github.com/x")), "source.url: 'github.com/x' is not"),
    (edit(lambda d: d["source"].update(kind="tweet")), "source.kind: 'tweet' is not one of"),
    (edit(lambda d: d["source"].update(retrieved="last week")), "source.retrieved:"),
    (edit(lambda d: d["excerpts"][0].update(format="html")), "excerpts[0].format: 'html'"),
    (edit(lambda d: d["excerpts"][0].update(now="soon")), "excerpts[0].now: expected an RFC"),
    (edit(lambda d: d["excerpts"][0]["object"].pop("name")), "excerpts[0].object.name: missing"),
    (edit(lambda d: d["excerpts"][0]["object"].pop("namespace")), "object.namespace: missing"),
    (edit(lambda d: d["excerpts"][0].update(text="no table here\n")), "excerpts[0].text: no Event"),
    (
        edit(lambda d: d["excerpts"][0].update(header="NAME   READY   STATUS")),
        "excerpts[0].header: header 'NAME   READY   STATUS' is not",
    ),
    (
        edit(lambda d: d["labels"]["incidents"][0].update(cause=[9])),
        "labels.incidents[0].cause: row 9 does not exist (the excerpts have 4 Event rows)",
    ),
    (edit(lambda d: d["labels"]["incidents"][0].update(cause=[])), "cause: expected a list"),
    (
        edit(lambda d: d["labels"]["incidents"][0].update(symptoms=[1])),
        "labels.incidents[0]: row 1 is both cause and symptom",
    ),
    (edit(lambda d: d["labels"].update(apart=[[1]])), "labels.apart[0]: expected a pair"),
    (edit(lambda d: d["labels"].update(apart=[[1, 5]])), "labels.apart[0]: row 5 does not"),
]


@pytest.mark.parametrize(("doc", "error"), CASES, ids=[c[1][:40] for c in CASES])
def test_errors_name_the_file_and_the_key(tmp_path: Path, doc: dict[str, Any], error: str) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(CorpusError) as raised:
        load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert error in message
    assert "\n" not in message


def test_a_broken_row_fails_the_file_with_its_line(tmp_path: Path) -> None:
    doc = base()
    doc["excerpts"][0]["text"] = doc["excerpts"][0]["text"].replace("3m37s", "3q37s")
    with pytest.raises(CorpusError, match=r"excerpts\[0\]\.text: line 3: Age '3q37s' is not"):
        load(write(tmp_path, doc))


def test_an_area_outside_the_list_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="area directory 'misc'"):
        load(write(tmp_path, base(), area="misc"))


def test_rows_are_numbered_across_excerpts_and_json_excerpts_are_read(tmp_path: Path) -> None:
    doc = base()
    # the Event of https://github.com/Shopify/krane/pull/666 (kubectl get events -o json),
    # trimmed to the fields the excerpt shows
    doc["excerpts"].append(
        {
            "format": "json",
            "text": (
                '{"apiVersion": "v1", "kind": "Event", "count": 25,'
                ' "firstTimestamp": "2020-01-17T04:56:28Z", "lastTimestamp": "2020-01-17T04:56:55Z",'
                ' "involvedObject": {"kind": "Pod", "name": "pvc",'
                ' "namespace": "k8sdeploy-test-pvc-no-pv-f0090cb6f9122249"},'
                ' "message": "0/1 nodes are available: 1 node(s) didn\'t find available'
                ' persistent volumes to bind.", "metadata": {"name": "pvc.15ea93ac7757afb4",'
                ' "uid": "b88a4b0a-38e5-11ea-bfb2-1a9a625dc63b"}, "reason": "FailedScheduling",'
                ' "type": "Warning"}'
            ),
        }
    )
    doc["labels"]["apart"] = [[1, 5]]
    corpus = load(write(tmp_path, doc))
    assert [r.number for r in corpus.rows] == [1, 2, 3, 4, 5]
    assert corpus.row(5).uid == "b88a4b0a-38e5-11ea-bfb2-1a9a625dc63b"
    assert corpus.row(1).obj["involvedObject"]["kind"] == "Job"
    assert len({r.uid for r in corpus.rows}) == 5
    assert corpus.apart == ((1, 5),)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.relative_to(CORPUS).as_posix())
def test_every_committed_corpus_file_loads(path: Path) -> None:
    corpus = load(path)
    assert corpus.incidents
    assert corpus.url.startswith("http")
