"""MSR-VTT annotations, split files (real ones when ../shared is present), reduced splits, check."""
from __future__ import annotations

import json
import os

import pytest

from glscl_lite.cli import main as cli_main
from glscl_lite.data.msrvtt import (Caption, all_video_ids, carve_validation, check_dataset,
                                    load_annotations, make_reduced_split, read_caption_csv,
                                    read_video_list, training_pairs, validation_captions)
from glscl_lite.errors import DataError
from glscl_lite.utils import OutputError

try:
    from data_fixtures import (SHARED_MSRVTT, caption_text, corrupt_file, make_corpus, truncate_file,
                               write_annotation_json, write_test_csv, write_video,
                               write_video_list_csv)
except ImportError:  # tests/ imported as a package
    from tests.data_fixtures import (SHARED_MSRVTT, caption_text, corrupt_file, make_corpus,
                                     truncate_file, write_annotation_json, write_test_csv,
                                     write_video, write_video_list_csv)

needs_shared = pytest.mark.skipif(not SHARED_MSRVTT.is_dir(),
                                  reason=f"real MSR-VTT split files not found at {SHARED_MSRVTT}")


# ------------------------------------------------------------------------------ real split files
@needs_shared
def test_real_split_files():
    test = read_caption_csv(SHARED_MSRVTT / "MSRVTT_JSFUSION_test.csv")
    train9k = read_video_list(SHARED_MSRVTT / "MSRVTT_train.9k.csv")
    train7k = read_video_list(SHARED_MSRVTT / "MSRVTT_train.7k.csv")
    assert len(test) == 1000 and len({c.video_id for c in test}) == 1000
    assert test[0] == Caption("video9770", "a person is connecting something to system", None)
    assert all(c.caption.strip() and c.sen_id is None for c in test)
    assert len(train9k) == 9000 and len(set(train9k)) == 9000
    assert len(train7k) == 7010
    assert set(train7k) <= set(train9k)
    # the 1k-A test videos are disjoint from the 9k training list and together cover video0..9999
    test_ids = {c.video_id for c in test}
    assert not (set(train9k) & test_ids)
    assert set(train9k) | test_ids == {f"video{i}" for i in range(10000)}


@pytest.fixture(scope="module")
def real_anno(tmp_path_factory):
    """The real split files next to a fake MSRVTT_data.json with 20 captions per video."""
    if not SHARED_MSRVTT.is_dir():
        pytest.skip(f"real MSR-VTT split files not found at {SHARED_MSRVTT}")
    d = tmp_path_factory.mktemp("real_anno")
    for name in ("MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv", "MSRVTT_JSFUSION_test.csv"):
        os.symlink(SHARED_MSRVTT / name, d / name)
    caps = {f"video{i}": [caption_text(f"video{i}", j) for j in range(20)] for i in range(10000)}
    write_annotation_json(d / "MSRVTT_data.json", caps)
    return d


@needs_shared
def test_training_pairs_real_9k(real_anno):
    anno = load_annotations(real_anno)
    assert len(anno) == 10000 and anno.n_captions == 200000
    pairs = training_pairs(anno, real_anno / "MSRVTT_train.9k.csv")
    assert len(pairs) == 180000
    assert pairs[0] == Caption("video0", caption_text("video0", 0), 0)
    assert pairs[19].caption == caption_text("video0", 19)
    assert pairs[20].video_id == "video1"
    assert pairs == training_pairs(anno, read_video_list(real_anno / "MSRVTT_train.9k.csv"))


@needs_shared
def test_make_reduced_split_real_9k(real_anno, tmp_path):
    out = make_reduced_split(real_anno, tmp_path / "a", train_videos=500, val_videos=100,
                             val_captions=2, seed=0)
    assert out == {"train": tmp_path / "a/MSRVTT_train.sub500.csv",
                   "val": tmp_path / "a/MSRVTT_val.100.csv"}
    train = read_video_list(out["train"])
    val = read_caption_csv(out["val"])
    val_ids = [c.video_id for c in val]
    assert len(train) == 500 and len(val) == 200 and len(set(val_ids)) == 100
    test_ids = {c.video_id for c in read_caption_csv(real_anno / "MSRVTT_JSFUSION_test.csv")}
    nine_k = set(read_video_list(real_anno / "MSRVTT_train.9k.csv"))
    assert not set(train) & set(val_ids)
    assert not (set(train) | set(val_ids)) & test_ids
    assert set(train) | set(val_ids) <= nine_k
    anno = load_annotations(real_anno)
    assert all(c.caption in anno.captions_by_video[c.video_id] for c in val)
    # the header and key format of the validation file follow the real test CSV
    head = out["val"].read_text().splitlines()[:2]
    assert head[0] == "key,vid_key,video_id,sentence"
    vid = head[1].split(",")[2]
    assert head[1].startswith(f"ret0,{vid.replace('video', 'msr')},{vid},")
    # deterministic for a seed, different for another seed
    again = make_reduced_split(real_anno, tmp_path / "b", 500, 100, 2, seed=0)
    other = make_reduced_split(real_anno, tmp_path / "c", 500, 100, 2, seed=1)
    assert again["train"].read_bytes() == out["train"].read_bytes()
    assert again["val"].read_bytes() == out["val"].read_bytes()
    assert other["val"].read_bytes() != out["val"].read_bytes()
    # train_videos=None: every training video that is not a validation video
    full = make_reduced_split(real_anno, tmp_path / "d", None, 100, seed=0)
    assert full["train"].name == "MSRVTT_train.sub8900.csv"
    assert set(read_video_list(full["train"])) == nine_k - set(val_ids)
    # the 7k list works as the source too
    seven = make_reduced_split(real_anno, tmp_path / "e", 50, 10, seed=0, train_csv="MSRVTT_train.7k.csv")
    assert set(read_video_list(seven["train"])) <= set(read_video_list(real_anno / "MSRVTT_train.7k.csv"))


@needs_shared
def test_all_video_ids_real(real_anno):
    ids = all_video_ids(real_anno)
    assert len(ids) == 10000 and ids[0] == "video0"


# ---------------------------------------------------------------------------------- annotations
def _json(tmp_path, text):
    p = tmp_path / "MSRVTT_data.json"
    p.write_text(text)
    return p


def test_load_annotations_groups_captions(tmp_path):
    write_annotation_json(tmp_path / "MSRVTT_data.json", {"video1": ["a", "b"], "video0": ["c"]})
    anno = load_annotations(tmp_path)
    assert anno.captions_by_video == {"video1": ["a", "b"], "video0": ["c"]}
    assert anno.captions("video1") == [Caption("video1", "a", 0), Caption("video1", "b", 1)]
    assert "video0" in anno and "video9" not in anno and len(anno) == 2
    assert anno.videos["video0"]["start time"] == 0.0
    assert load_annotations(tmp_path / "MSRVTT_data.json").captions_by_video == anno.captions_by_video


def test_annotation_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"MSRVTT_data\.json: file not found"):
        load_annotations(tmp_path)


def test_annotation_malformed_json(tmp_path):
    p = _json(tmp_path, '{"sentences": [\n{"caption": "a", }]}')
    with pytest.raises(DataError) as e:
        load_annotations(tmp_path)
    assert str(e.value).startswith(f"{p}: not valid JSON (")
    assert "line 2 column" in str(e.value)


def test_annotation_without_sentences(tmp_path):
    p = _json(tmp_path, json.dumps({"videos": []}))
    with pytest.raises(DataError, match="top level must be an object with a 'sentences' list"):
        load_annotations(tmp_path)
    _json(tmp_path, "[1, 2]")
    with pytest.raises(DataError, match=str(p).replace(".", r"\.")):
        load_annotations(tmp_path)


def test_annotation_empty_and_non_string_captions(tmp_path):
    p = write_annotation_json(tmp_path / "MSRVTT_data.json", {"video0": ["ok"]}, extra_sentences=[
        {"caption": "   ", "video_id": "video0", "sen_id": 7},
        {"caption": 42, "video_id": "video0", "sen_id": 8},
        {"video_id": "video0", "sen_id": 9},
        {"caption": "no video", "sen_id": 10},
    ])
    with pytest.raises(DataError) as e:
        load_annotations(tmp_path)
    assert str(e.value) == (f"{p}: sentences[1] (sen_id 7): caption is empty (video video0) "
                            f"(and 3 more problem(s))")
    problems = check_dataset(tmp_path, tmp_path, decode=False, progress=False)
    assert f"{p}: sentences[2] (sen_id 8): caption is not a string (int: 42) (video video0)" in problems
    assert f"{p}: sentences[3] (sen_id 9): caption is missing (video video0)" in problems
    assert f"{p}: sentences[4] (sen_id 10): video_id is missing or not a non-empty string (None)" in problems


# ------------------------------------------------------------------------------------------ CSVs
def test_video_list_errors(tmp_path):
    p = tmp_path / "MSRVTT_train.9k.csv"
    p.write_text("vid\nvideo0\n")
    with pytest.raises(DataError, match=r"MSRVTT_train\.9k\.csv: header \['vid'\] lacks column\(s\) video_id"):
        read_video_list(p)
    p.write_text("video_id\nvideo0\n\nvideo1\nvideo0\n")
    with pytest.raises(DataError) as e:
        read_video_list(p)
    assert str(e.value) == f"{p}: row 3 (line 5): duplicate video_id video0 (first at row 1)"
    p.write_text("video_id\nvideo0\nvideo1,extra\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\): expected 1 fields \(video_id\), got 2"):
        read_video_list(p)
    p.write_text("video_id,x\nvideo0,1\n ,2\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\): empty video_id"):
        read_video_list(p)
    p.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_video_list(p)
    with pytest.raises(DataError, match=r"nothere\.csv: file not found"):
        read_video_list(tmp_path / "nothere.csv")


def test_caption_csv_parsing_and_errors(tmp_path):
    p = tmp_path / "MSRVTT_JSFUSION_test.csv"
    p.write_text('key,vid_key,video_id,sentence\nret0,msr7,video7,"a man, a plan"\nret1,msr8,video8,x\n')
    assert read_caption_csv(p) == [Caption("video7", "a man, a plan"), Caption("video8", "x")]
    p.write_text("key,vid_key,video_id,sentence\nret0,msr7,video7,ok\nret1,msr8,video8,  \n")
    with pytest.raises(DataError) as e:
        read_caption_csv(p)
    assert str(e.value) == f"{p}: row 2 (line 3): empty caption (video video8)"
    p.write_text("key,vid_key,video_id\nret0,msr7,video7\n")
    with pytest.raises(DataError, match=r"lacks column\(s\) sentence"):
        read_caption_csv(p)
    p.write_text("key,vid_key,video_id,sentence\nret0,msr7,video7\n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\): expected 4 fields"):
        read_caption_csv(p)
    p.write_bytes(b"key,vid_key,video_id,sentence\nret0,msr7,video7,caf\xe9\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_caption_csv(p)


# ---------------------------------------------------------------------------------------- splits
def test_training_pairs_unknown_id_names_id_and_csv(tmp_path):
    c = make_corpus(tmp_path, videos=False)
    anno = load_annotations(c.anno_dir)
    csv_path = write_video_list_csv(tmp_path / "list.csv", ["video0", "video77"])
    with pytest.raises(DataError) as e:
        training_pairs(anno, csv_path)
    assert str(e.value) == f"{csv_path}: video_id video77 has no captions in {anno.path}"
    with pytest.raises(DataError, match="the video list: video_id video77"):
        training_pairs(anno, ["video77"])
    pairs = training_pairs(anno, ["video1", "video0"])
    assert [p.video_id for p in pairs] == ["video1"] * 3 + ["video0"] * 3
    assert [p.sen_id for p in pairs] == [3, 4, 5, 0, 1, 2]


def test_carve_validation():
    ids = [f"v{i}" for i in range(50)]
    train, val = carve_validation(ids, 10, seed=0)
    assert len(val) == 10 and len(train) == 40
    assert sorted(train + val, key=ids.index) == ids and not set(train) & set(val)
    assert val == sorted(val, key=ids.index)  # file order kept
    assert carve_validation(ids, 10, seed=0) == (train, val)
    assert carve_validation(ids, 10, seed=1)[1] != val
    assert carve_validation(ids, 0, 0) == (ids, [])
    with pytest.raises(DataError, match="cannot carve 51 validation videos out of 50"):
        carve_validation(ids, 51, 0)
    with pytest.raises(DataError, match="duplicate"):
        carve_validation(["a", "a"], 1, 0)


def test_validation_captions(tmp_path):
    c = make_corpus(tmp_path, videos=False, captions_per_video=5)
    anno = load_annotations(c.anno_dir)
    one = validation_captions(anno, ["video0", "video3"], 1, seed=0)
    assert [x.video_id for x in one] == ["video0", "video3"]
    three = validation_captions(anno, ["video0"], 3, seed=0)
    assert len({x.caption for x in three}) == 3 and [x.sen_id for x in three] == sorted(x.sen_id for x in three)
    assert validation_captions(anno, ["video0"], 99, seed=0) == anno.captions("video0")
    assert validation_captions(anno, ["video0", "video3"], 1, seed=0) == one
    with pytest.raises(DataError, match="validation video_id nope has no captions"):
        validation_captions(anno, ["nope"])


def test_make_reduced_split_refuses_test_overlap(tmp_path):
    c = make_corpus(tmp_path, videos=False)
    write_video_list_csv(c.anno_dir / "MSRVTT_train.9k.csv", c.train_ids + [c.test_ids[0]])
    with pytest.raises(DataError, match=r"1 training video\(s\) are also in the test set"):
        make_reduced_split(c.anno_dir, tmp_path / "out", 2, 2)
    assert not (tmp_path / "out").exists()


def test_make_reduced_split_bad_sizes(tmp_path):
    c = make_corpus(tmp_path, videos=False)  # 6 training videos
    with pytest.raises(DataError, match="must be between 1 and 4"):
        make_reduced_split(c.anno_dir, tmp_path / "out", 5, 2)
    with pytest.raises(DataError, match="cannot carve 7 validation videos out of 6"):
        make_reduced_split(c.anno_dir, tmp_path / "out", None, 7)


def test_make_reduced_split_unwritable_output(tmp_path):
    c = make_corpus(tmp_path, videos=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"a_file/out: output directory is not writable"):
        make_reduced_split(c.anno_dir, blocker / "out", 2, 2)


def test_make_reduced_split_read_only_dir(tmp_path):
    c = make_corpus(tmp_path, videos=False)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: chmod does not block writes")
        with pytest.raises(OutputError, match="not writable"):
            make_reduced_split(c.anno_dir, ro, 2, 2)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_all_video_ids_includes_val_and_sub_files(tmp_path):
    c = make_corpus(tmp_path, videos=False)
    make_reduced_split(c.anno_dir, c.anno_dir, 2, 2, seed=0)
    assert all_video_ids(c.anno_dir) == c.train_ids + c.test_ids
    with pytest.raises(DataError, match="no MSRVTT_train"):
        all_video_ids(tmp_path / "empty")


def test_cli_data_split(tmp_path, capsys):
    c = make_corpus(tmp_path, videos=False)
    rc = cli_main(["data", "split", "--anno", str(c.anno_dir), "--out", str(tmp_path / "o"),
                   "--train-videos", "3", "--val-videos", "2", "--seed", "4"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"train": str(tmp_path / "o/MSRVTT_train.sub3.csv"),
                   "val": str(tmp_path / "o/MSRVTT_val.2.csv")}
    rc = cli_main(["data", "split", "--anno", str(c.anno_dir), "--val-videos", "60"])
    assert rc == 2
    assert "cannot carve 60 validation videos" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- check
def test_check_dataset_ok_including_short_video(tmp_path, capsys):
    c = make_corpus(tmp_path, frames={"video0": 3, "video1": 200})  # 0.3 s and 20 s at 10 fps
    assert check_dataset(c.anno_dir, c.video_dir, progress=False) == []
    assert cli_main(["data", "check", "--anno", str(c.anno_dir), "--videos", str(c.video_dir),
                     "--quiet"]) == 0
    assert "data check: OK" in capsys.readouterr().err


def test_check_dataset_reports_every_problem(tmp_path, capsys):
    c = make_corpus(tmp_path, n_train=8, n_test=2)
    v = c.video_dir
    (v / "video0.mp4").unlink()                                    # missing
    corrupt_file(v / "video1.mp4")                                 # corrupt
    write_video(v / "video2.mp4", 60, fps=10, pattern="noise")
    truncate_file(v / "video2.mp4", 0.6)                           # truncated
    write_video(v / "video3.mp4", 0)                               # zero-length
    (v / "video4.mp4").write_bytes(b"")                            # empty file
    write_video(v / "video5.mp4", 2, fps=10)                       # short: fine
    # caption problems and a training id without captions
    caps = {k: val for k, val in c.captions.items()}
    caps["video6"] = ["fine", ""]
    write_annotation_json(c.anno_dir / "MSRVTT_data.json", caps,
                          extra_sentences=[{"caption": None, "video_id": "video7", "sen_id": 99}])
    write_video_list_csv(c.anno_dir / "MSRVTT_train.7k.csv", ["video0", "video42"])
    write_test_csv(c.anno_dir / "MSRVTT_JSFUSION_test.csv", [("video8", "ok"), ("video9", " ")])
    json_path = c.anno_dir / "MSRVTT_data.json"
    problems = check_dataset(c.anno_dir, c.video_dir, progress=False)
    by_start = {p.split(":")[0]: p for p in problems}
    assert f"video0: video file not found ({v / 'video0.mp4'})" in problems
    assert by_start["video1"].startswith(f"video1: {v / 'video1.mp4'}: corrupt or truncated video")
    assert by_start["video2"].startswith(f"video2: {v / 'video2.mp4'}: corrupt or truncated video")
    assert by_start["video3"] == f"video3: {v / 'video3.mp4'}: zero-length video (0 frames: no video stream)"
    assert by_start["video4"] == f"video4: {v / 'video4.mp4'}: empty file (0 bytes)"
    assert "video5" not in by_start
    assert f"{json_path}: sentences[19] (sen_id 19): caption is empty (video video6)" in problems
    assert f"{json_path}: sentences[29] (sen_id 99): caption is not a string (NoneType: None) (video video7)" in problems
    assert (f"{c.anno_dir / 'MSRVTT_train.7k.csv'}: video_id video42 has no captions in {json_path}"
            in problems)
    assert f"{c.anno_dir / 'MSRVTT_JSFUSION_test.csv'}: row 2 (line 3): empty caption (video video9)" in problems
    assert "video42: video file not found" in "\n".join(problems)
    assert len(problems) == 10, problems
    # the CLI prints them and exits 1
    rc = cli_main(["data", "check", "--anno", str(c.anno_dir), "--videos", str(c.video_dir), "--quiet"])
    assert rc == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == problems and "data check: 10 problem(s)" in err
    # --no-decode only looks at files
    quick = check_dataset(c.anno_dir, c.video_dir, decode=False, progress=False)
    assert {p.split(":")[0] for p in quick} == {p.split(":")[0] for p in problems} - {
        "video1", "video2", "video3", "video4"}


def test_check_dataset_missing_files(tmp_path):
    (tmp_path / "anno").mkdir()
    problems = check_dataset(tmp_path / "anno", tmp_path / "videos", progress=False)
    assert problems == [f"{tmp_path / 'anno/MSRVTT_data.json'}: file not found",
                        f"{tmp_path / 'anno/MSRVTT_train.9k.csv'}: file not found",
                        f"{tmp_path / 'anno/MSRVTT_JSFUSION_test.csv'}: file not found",
                        f"{tmp_path / 'videos'}: video folder not found"]
    assert check_dataset(tmp_path / "nope", tmp_path, progress=False) == [
        f"{tmp_path / 'nope'}: annotation folder not found"]
