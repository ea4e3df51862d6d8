"""harness.local_mode.state: the records one local-mode command leaves for the next."""

from __future__ import annotations

from pathlib import Path

from harness.local_mode.state import (
    ENDPOINT_FILE,
    EndpointRecord,
    LastFit,
    load_endpoint,
    load_last_fit,
    save_endpoint,
    save_last_fit,
)


def test_last_fit_round_trip(tmp_path: Path) -> None:
    fit = LastFit(job_name="job", model_data="/m/model.tar.gz", output_data="/m/output.tar.gz")
    save_last_fit(tmp_path / "root", fit)
    assert load_last_fit(tmp_path / "root") == fit
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["last-fit.json"]


def test_endpoint_record_round_trip(tmp_path: Path) -> None:
    record = EndpointRecord(pid=123, port=8081, name="ep")
    save_endpoint(tmp_path / ENDPOINT_FILE, record)
    assert load_endpoint(tmp_path / ENDPOINT_FILE) == record


def test_missing_or_torn_records_read_as_none(tmp_path: Path) -> None:
    assert load_last_fit(tmp_path) is None
    (tmp_path / ENDPOINT_FILE).write_text('{"pid": 1, "po')
    assert load_endpoint(tmp_path / ENDPOINT_FILE) is None


def test_another_versions_record_is_read_for_its_known_fields_or_not_at_all(
    tmp_path: Path,
) -> None:
    (tmp_path / "last-fit.json").write_text(
        '{"job_name": "j", "model_data": "m", "output_data": "o", "wall_s": 3.0}')
    assert load_last_fit(tmp_path) == LastFit(job_name="j", model_data="m", output_data="o")
    (tmp_path / ENDPOINT_FILE).write_text('{"pid": 1, "name": "ep"}')
    assert load_endpoint(tmp_path / ENDPOINT_FILE) is None
