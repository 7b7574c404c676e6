import numpy as np
import pytest

from pipeline import io


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "table.csv"
    io.write_text(target, "old\n")
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_array_archives_are_byte_stable_and_round_trip(tmp_path):
    arrays = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array(["1-01", "1-02"])}
    io.save_arrays(tmp_path / "x.npz", arrays)
    first = (tmp_path / "x.npz").read_bytes()
    io.save_arrays(tmp_path / "x.npz", dict(reversed(arrays.items())))
    assert (tmp_path / "x.npz").read_bytes() == first
    loaded = io.load_arrays(tmp_path / "x.npz")
    np.testing.assert_array_equal(loaded["b"], arrays["b"])
    assert loaded["a"].tolist() == ["1-01", "1-02"]
