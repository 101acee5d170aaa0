"""``khaibao keys init`` and ``khaibao keys rotate``: the files a deployment mounts, and a
rotation that does not sign everyone out (tokens) nor lose the passwords waiting in the
Support Channel (credentials)."""
from __future__ import annotations

import os
import stat
import uuid

import pytest
from cryptography.hazmat.primitives import serialization

from libs.common import sealed
from libs.common.auth import AuthError, Principal, Role, TokenSigner, load_private_key
from libs.common.cli import main
from libs.common.keys import FILES
from libs.common.runtime import Runtime

EXPECTED = ["token_private.pem", "token_public.pem", "pass_private.pem", "pass_public.pem",
            "credentials_private.pem", "credentials_public.pem", "secret_key", "db_password"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("KHAIBAO_") and not name.startswith("KHAIBAO_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def secrets_dir(tmp_path, capsys):
    directory = tmp_path / "secrets"
    assert main(["keys", "init", str(directory)]) == 0
    capsys.readouterr()
    return directory


def test_init_writes_every_file_with_mode_0600(tmp_path, capsys):
    directory = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert main(["keys", "init", str(directory)]) == 0
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    assert set(EXPECTED) <= set(FILES)
    for name in FILES:
        path = directory / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert name in out
        if not name.endswith(".pem"):
            value = path.read_text().strip()
            assert len(value) >= 32 and all(c in "0123456789abcdef" for c in value), name
            assert value not in out, "a secret is never printed"
    assert len(out.strip().splitlines()) == len(FILES)
    for kind in ("token", "pass"):
        key = load_private_key(directory / f"{kind}_private.pem")
        public = serialization.load_pem_public_key((directory / f"{kind}_public.pem").read_bytes())
        assert key.public_key() == public
    assert sealed.key_id(sealed.load_private(directory / "credentials_private.pem").public_key()) == \
        sealed.key_id(sealed.load_public(directory / "credentials_public.pem"))
    assert (directory / "secret_key").read_text() != (directory / "db_password").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_init_gives_each_file_to_its_container(tmp_path, capsys):
    """--compose-owners: the three first steps of deploy/README.md need no chown by hand."""
    directory = tmp_path / "out"
    assert main(["keys", "init", "--compose-owners", str(directory)]) == 0
    owners = {name: (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
              for name in FILES for st in [(directory / name).stat()]}
    assert owners["token_private.pem"] == (10001, 10001, 0o600)
    assert owners["secret_key"] == (10001, 10001, 0o600)
    assert owners["db_password"] == (999, 10001, 0o440)
    assert owners["grafana_admin_password"] == (472, 472, 0o600)


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, capsys):
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / "db_password").write_text("kept\n")
    assert main(["keys", "init", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "db_password" in err and "overwrite" in err
    assert sorted(p.name for p in directory.iterdir()) == ["db_password"]
    assert (directory / "db_password").read_text() == "kept\n"


def _principal() -> Principal:
    return Principal(account_id=str(uuid.uuid4()), username="so.tttt", name="Sở", role=Role.CITY_DIC,
                     jurisdiction="79")


def _verifier(monkeypatch, directory, *previous):
    from services.reporting.settings import ReportingSettings

    monkeypatch.setenv("KHAIBAO_AUTH_PUBLIC_KEY_FILE", str(directory / "token_public.pem"))
    if previous:
        monkeypatch.setenv("KHAIBAO_AUTH_PREVIOUS_PUBLIC_KEY_FILES", "[" + ",".join(f'"{p}"' for p in previous) + "]")
    else:
        monkeypatch.delenv("KHAIBAO_AUTH_PREVIOUS_PUBLIC_KEY_FILES", raising=False)
    return Runtime(settings=ReportingSettings(), database=None, bus=None).verifier  # type: ignore[arg-type]


def test_a_token_of_the_old_key_verifies_after_rotation_with_the_previous_key(secrets_dir, monkeypatch, capsys):
    old_signer = TokenSigner(load_private_key(secrets_dir / "token_private.pem"), issuer="khaibao-provisioning",
                             audience="khaibao")
    old_token = old_signer.sign(_principal())
    assert main(["keys", "rotate", "token", str(secrets_dir)]) == 0
    out = capsys.readouterr().out
    assert "token_public.previous.pem" in out
    new_token = TokenSigner(load_private_key(secrets_dir / "token_private.pem"), issuer="khaibao-provisioning",
                            audience="khaibao").sign(_principal())
    previous = secrets_dir / "token_public.previous.pem"
    assert stat.S_IMODE(previous.stat().st_mode) == 0o600

    verifier = _verifier(monkeypatch, secrets_dir, previous)
    assert verifier.verify(old_token).username == "so.tttt"
    assert verifier.verify(new_token).username == "so.tttt"

    verifier = _verifier(monkeypatch, secrets_dir)
    assert verifier.verify(new_token).username == "so.tttt"
    with pytest.raises(AuthError):
        verifier.verify(old_token)


def test_rotating_twice_keeps_one_previous_key(secrets_dir, monkeypatch):
    def signer():
        return TokenSigner(load_private_key(secrets_dir / "token_private.pem"), issuer="khaibao-provisioning",
                           audience="khaibao")

    first = signer().sign(_principal())
    assert main(["keys", "rotate", "token", str(secrets_dir)]) == 0
    second = signer().sign(_principal())
    assert main(["keys", "rotate", "token", str(secrets_dir)]) == 0
    third = signer().sign(_principal())
    verifier = _verifier(monkeypatch, secrets_dir, secrets_dir / "token_public.previous.pem")
    assert verifier.verify(third) and verifier.verify(second)
    with pytest.raises(AuthError):
        verifier.verify(first)  # the oldest key is no longer kept
    assert not list(secrets_dir.glob(".*.tmp"))


def test_a_credentials_box_sealed_to_the_old_key_still_opens(secrets_dir, monkeypatch, capsys):
    from services.notification.credentials import open_password
    from services.notification.models import Delivery
    from services.notification.settings import NotificationSettings

    from libs.common.events.provisioning import credentials_context

    account_id, credentials_id = uuid.uuid4(), uuid.uuid4()
    old_public = sealed.raw_public(sealed.load_public(secrets_dir / "credentials_public.pem"))
    old_box = sealed.seal(old_public, b"k7m2p-9qxzr", credentials_context(account_id, credentials_id))
    assert main(["keys", "rotate", "credentials", str(secrets_dir)]) == 0
    out = capsys.readouterr().out
    assert "credentials_private.previous.pem" in out and "credentials_public.previous.pem" in out
    new_public = sealed.raw_public(sealed.load_public(secrets_dir / "credentials_public.pem"))
    assert new_public != old_public
    new_box = sealed.seal(new_public, b"new-password", credentials_context(account_id, credentials_id))

    monkeypatch.setenv("KHAIBAO_ENVIRONMENT", "production")
    monkeypatch.setenv("KHAIBAO_NOTIFICATION_CREDENTIALS_PRIVATE_KEY_FILE",
                       str(secrets_dir / "credentials_private.pem"))
    monkeypatch.setenv("KHAIBAO_SECRET_KEY_FILE", str(secrets_dir / "secret_key"))
    monkeypatch.setenv("KHAIBAO_AUTH_PUBLIC_KEY_FILE", str(secrets_dir / "token_public.pem"))
    monkeypatch.setenv("KHAIBAO_FIELD_KEYS_FILE", str(secrets_dir / "field_keys"))
    monkeypatch.setenv("KHAIBAO_INDEX_KEY_FILE", str(secrets_dir / "index_key"))

    def delivery(box: str) -> Delivery:
        return Delivery(id=uuid.uuid4(), account_id=account_id, credentials_id=credentials_id, sealed=box)

    without = NotificationSettings()
    assert open_password(without, delivery(new_box)) == "new-password"
    from services.notification.credentials import CredentialsRefused

    with pytest.raises(CredentialsRefused):
        open_password(without, delivery(old_box))

    monkeypatch.setenv("KHAIBAO_NOTIFICATION_CREDENTIALS_PREVIOUS_PRIVATE_KEY_FILES",
                       f'["{secrets_dir / "credentials_private.previous.pem"}"]')
    with_previous = NotificationSettings()
    assert open_password(with_previous, delivery(old_box)) == "k7m2p-9qxzr"
    assert open_password(with_previous, delivery(new_box)) == "new-password"


def test_rotate_without_a_pair_refuses(tmp_path, capsys):
    assert main(["keys", "rotate", "pass", str(tmp_path)]) == 1
    assert "keys init" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_rotate_pass_keeps_the_old_public_key(secrets_dir):
    before = (secrets_dir / "pass_public.pem").read_bytes()
    assert main(["keys", "rotate", "pass", str(secrets_dir)]) == 0
    assert (secrets_dir / "pass_public.previous.pem").read_bytes() == before
    assert (secrets_dir / "pass_public.pem").read_bytes() != before
    assert not (secrets_dir / "pass_private.previous.pem").exists()
