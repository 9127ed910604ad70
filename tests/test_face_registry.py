"""Enrolment on SQLite and PostgreSQL: encrypted templates, rejections with reasons, bulk import, deletion, galleries."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import FacePhotoRow, FaceTemplateRow, GalleryVersionRow, StaffRow, make_engine, migrate
from server.faces.registry import FaceRegistry, RegistryError, template_cipher
from vision.faces import FaceSettings
from vision.gallery import TerminalGallery, verify_pin


@pytest.fixture
def registry(db_url: str) -> FaceRegistry:
    engine = make_engine(db_url)
    migrate(engine)
    return FaceRegistry(engine, Fernet(Fernet.generate_key()), FaceSettings())


def _photos(faces_dir: Path, person: str, n: int) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted((faces_dir / "known" / person).iterdir())[:n]]


def test_enrolment_stores_only_encrypted_templates_and_no_photo(registry: FaceRegistry, faces_dir: Path) -> None:
    report = registry.enrol("nuaa_0001", _photos(faces_dir, "nuaa_0001", 3), name="张三", staff_no="1001")
    assert report.accepted == 3 and all(p.accepted for p in report.photos)
    with Session(registry.engine) as session:
        rows = session.scalars(select(FaceTemplateRow)).all()
        assert len(rows) == 3 and session.scalars(select(FacePhotoRow)).all() == []
        templates = registry._templates()["nuaa_0001"]
        for row, template in zip(rows, templates, strict=True):
            assert template.astype("<f8").tobytes() not in row.ciphertext, "no template in clear"
            assert template.shape == (128,)
    assert registry.people() == [{"person_id": "nuaa_0001", "name": "张三", "staff_no": "1001", "templates": 3, "pin": False}]


def test_a_wrong_key_cannot_read_the_templates(registry: FaceRegistry, faces_dir: Path) -> None:
    registry.enrol("nuaa_0002", _photos(faces_dir, "nuaa_0002", 1))
    other = FaceRegistry(registry.engine, Fernet(Fernet.generate_key()), FaceSettings())
    with pytest.raises(RegistryError, match="do not decrypt"):
        other.build_gallery(0.01)


def test_bad_photos_are_rejected_each_with_its_reason_and_nothing_kept(registry: FaceRegistry, faces_dir: Path) -> None:
    photos = [("cat.jpg", (faces_dir / "noface/0.jpg").read_bytes()), ("broken.jpg", b"not a picture")]
    report = registry.enrol("c01", photos)
    assert [(p.name, p.accepted) for p in report.photos] == [("cat.jpg", False), ("broken.jpg", False)]
    assert report.photos[0].reason.startswith("no_face: 未检测到人脸")
    assert report.photos[1].reason.startswith("unreadable")
    assert registry.people() == [], "a person with no usable photo is not created"


def test_kept_photos_are_encrypted_too(db_url: str, faces_dir: Path) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    registry = FaceRegistry(engine, Fernet(Fernet.generate_key()), FaceSettings(), keep_photos=True)
    photos = _photos(faces_dir, "obama", 1)
    registry.enrol("obama", photos)
    with Session(engine) as session:
        [row] = session.scalars(select(FacePhotoRow)).all()
        assert photos[0][1][:200] not in row.ciphertext and registry.cipher.decrypt(row.ciphertext) == photos[0][1]


def test_bulk_enrolment_from_a_zip_with_a_staff_list(registry: FaceRegistry, faces_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "staff.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for person in ("nuaa_0003", "nuaa_0004"):
            for name, data in _photos(faces_dir, person, 2):
                z.writestr(f"photos/{person}/{name}", data)
        z.writestr("photos/staff.csv", "person_id,name,staff_no\nnuaa_0003,李四,2003\nnuaa_0004,王五,2004\n".encode("utf-8-sig"))
        z.writestr("photos/nuaa_0004/readme.txt", "ignored")
    seen: list[str] = []
    reports = registry.enrol_folder(archive, seen.append)
    assert seen == ["nuaa_0003", "nuaa_0004"] and [r.accepted for r in reports] == [2, 2]
    assert [(p["person_id"], p["name"], p["staff_no"]) for p in registry.people()] == [("nuaa_0003", "李四", "2003"), ("nuaa_0004", "王五", "2004")]


def test_a_bad_staff_list_row_names_its_line(registry: FaceRegistry, faces_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "nuaa_0005").mkdir(parents=True)
    (folder / "nuaa_0005" / "a.jpg").write_bytes(_photos(faces_dir, "nuaa_0005", 1)[0][1])
    (folder / "staff.csv").write_text("person_id,name\nnuaa_0005,赵六\nBad Id,钱七\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"staff.csv line 3: person_id: 'Bad Id' is not a valid person id"):
        registry.enrol_folder(folder)
    with pytest.raises(RegistryError, match="neither a folder nor a zip"):
        registry.enrol_folder(folder / "staff.csv")


def test_deleting_a_person_removes_their_data_and_the_next_gallery_leaves_them_out(registry: FaceRegistry, faces_dir: Path) -> None:
    for person in ("nuaa_0001", "nuaa_0002", "obama"):
        registry.enrol(person, _photos(faces_dir, person, 2), staff_no=person[-4:])
    first, calibration = registry.build_gallery(0.01)
    assert first.version == 1 and [p.person_id for p in first.people] == ["nuaa_0001", "nuaa_0002", "obama"]
    assert calibration.stranger_probes == 6
    assert registry.delete("nuaa_0002") and not registry.delete("nuaa_0002")
    with Session(registry.engine) as session:
        assert session.scalars(select(FaceTemplateRow).where(FaceTemplateRow.person_id == "nuaa_0002")).all() == []
        assert session.get(StaffRow, "nuaa_0002") is None
    second, _ = registry.build_gallery(0.01)
    assert second.version == 2 and [p.person_id for p in second.people] == ["nuaa_0001", "obama"]
    with Session(registry.engine) as session:
        assert [r.version for r in session.scalars(select(GalleryVersionRow).order_by(GalleryVersionRow.version))] == [1, 2]
    # The gallery survives its trip as bytes.
    again = TerminalGallery.from_bytes(second.to_bytes())
    assert again.version == 2 and again.thresholds == second.thresholds
    assert np.allclose(again.people[0].templates, second.people[0].templates)


def test_pins_are_hashed_and_need_a_staff_number(registry: FaceRegistry, faces_dir: Path) -> None:
    registry.enrol("nuaa_0001", _photos(faces_dir, "nuaa_0001", 1), staff_no="1001")
    registry.enrol("obama", _photos(faces_dir, "obama", 1))
    registry.set_pin("nuaa_0001", "482913")
    with pytest.raises(RegistryError, match="4 to 8 digits"):
        registry.set_pin("nuaa_0001", "12a4")
    with pytest.raises(RegistryError, match="no staff number"):
        registry.set_pin("obama", "1234")
    gallery, _ = registry.build_gallery(0.01)
    person = gallery.by_staff_no("1001")
    assert person is not None and person.pin_hash and "482913" not in person.pin_hash
    assert verify_pin(person.pin_hash, "482913") and not verify_pin(person.pin_hash, "482914")


def test_the_template_key_comes_from_a_private_file(tmp_path: Path) -> None:
    key = tmp_path / "face.key"
    key.write_bytes(Fernet.generate_key())
    key.chmod(0o644)
    with pytest.raises(RegistryError, match=r"face.key: key file is readable or writable by others .*chmod 600"):
        template_cipher({"HALLWATCH_FACE_KEY_FILE": str(key)})
    key.chmod(0o600)
    assert template_cipher({"HALLWATCH_FACE_KEY_FILE": str(key)})
    with pytest.raises(RegistryError, match="is not set"):
        template_cipher({})
    key.write_bytes(b"short")
    with pytest.raises(RegistryError, match="not a Fernet key"):
        template_cipher({"HALLWATCH_FACE_KEY_FILE": str(key)})
