"""provenance.json names the container a run used: image, digest, pin file and Debian snapshot."""
import hashlib

from training import provenance

SNAPSHOT_SOURCE = "deb http://snapshot.debian.org/archive/debian/20261101T000000Z/ bookworm main"


def image_files(tmp_path, monkeypatch, sources: str):
    """An image file and, as inside it, its pin file and apt sources."""
    image = tmp_path / "agent.sif"
    image.write_bytes(b"an image")
    pin_file = tmp_path / "requirements.txt"
    pin_file.write_text("torch==2.13.0\nnumpy==2.4.6\n")
    apt_sources = tmp_path / "sources.list"
    apt_sources.write_text(sources)
    monkeypatch.setattr(provenance, "IMAGE_PIN_FILE", pin_file)
    monkeypatch.setattr(provenance, "IMAGE_APT_SOURCES", apt_sources)
    return image, pin_file


def test_container_records_image_digest_pin_file_and_snapshot(tmp_path, monkeypatch):
    image, pin_file = image_files(tmp_path, monkeypatch, f"# written by debootstrap\n{SNAPSHOT_SOURCE}\n")
    monkeypatch.setenv("APPTAINER_CONTAINER", str(image))
    assert provenance.container() == {
        "image": str(image),
        "digest": "sha256:" + hashlib.sha256(b"an image").hexdigest(),
        "pin_file_sha256": "sha256:" + hashlib.sha256(pin_file.read_bytes()).hexdigest(),
        "apt_sources": [SNAPSHOT_SOURCE],
        "debian_snapshot": "20261101T000000Z",
    }
    # Another pin file is another environment.
    before = provenance.container()["pin_file_sha256"]
    pin_file.write_text("torch==2.13.0\nnumpy==2.4.5\n")
    assert provenance.container()["pin_file_sha256"] not in (before, None)


def test_sandbox_built_from_a_live_mirror_names_no_snapshot(tmp_path, monkeypatch):
    image_files(tmp_path, monkeypatch, "deb http://deb.debian.org/debian bookworm main\n")
    monkeypatch.setenv("APPTAINER_CONTAINER", str(tmp_path))  # a sandbox folder, as `apptainer build --sandbox`
    recorded = provenance.container()
    assert recorded["digest"] is None and recorded["debian_snapshot"] is None
    assert recorded["apt_sources"] == ["deb http://deb.debian.org/debian bookworm main"]


def test_outside_a_container_nothing_is_recorded(monkeypatch):
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    assert provenance.container() is None
